//! Building the application from configuration: connect and migrate the store, load the shared
//! keys, bind the listener; then serve until the shutdown future resolves.

use std::{future::Future, net::SocketAddr, path::Path, sync::Arc};

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::{
    auth::{self, TokenSigner},
    config::{Config, Secret},
    http::{api_router, ApiContext},
    store::Store,
    telemetry,
};

/// A built, bound, not yet serving application.
pub struct Application {
    listener: TcpListener,
    ctx: ApiContext,
}

impl Application {
    /// Connect, migrate and bind. Port 0 picks a free port; `local_addr` tells which.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let ctx = build_context(config).await?;
        let listener = TcpListener::bind(ctx.config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", ctx.config.listen))?;
        Ok(Application { listener, ctx })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn context(&self) -> &ApiContext {
        &self.ctx
    }

    /// Serve until `shutdown` resolves, then finish in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        run(self.listener, self.ctx, shutdown).await
    }
}

/// Serve `ctx` on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    ctx: ApiContext,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = ctx.store.clone();
    let app = api_router(ctx);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("the HTTP server failed")?;
    store.close().await;
    Ok(())
}

/// Everything the handlers share, from configuration.
pub async fn build_context(config: Config) -> anyhow::Result<ApiContext> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let store = connect_store(&config).await?;
    let signing_key = store
        .shared_secret("token_signing_key", || auth::random_secret(32))
        .await
        .context("cannot load the token signing key")?;
    let admin_token = match &config.admin_token {
        Some(token) => token.clone(),
        None => load_or_create_admin_token(&config.data_dir)?,
    };
    let static_dir = config.static_dir.clone();
    Ok(ApiContext {
        config: Arc::new(config),
        store,
        tokens: TokenSigner::new(signing_key.as_bytes()),
        admin_token: Arc::new(admin_token),
        metrics: telemetry::metrics_handle(),
        static_dir: Arc::new(static_dir),
    })
}

/// Connect to the configured database and bring its schema up to date.
pub async fn connect_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database(), config.db_max_connections).await?;
    store.migrate().await?;
    Ok(store)
}

/// The admin token kept in the data directory, created on first start.
fn load_or_create_admin_token(data_dir: &Path) -> anyhow::Result<Secret> {
    let path = data_dir.join("admin-token");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if !existing.is_empty() {
            return Ok(Secret::new(existing));
        }
    }
    let token = auth::random_secret(24);
    std::fs::write(&path, &token).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(Secret::new(token))
}
