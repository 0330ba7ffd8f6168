//! Building the application from configuration: connect and migrate the store, connect the bus
//! and presence, load the shared keys, bind the listener; then serve until shutdown.

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::{
    auth::{self, TokenSigner},
    bus::Bus,
    config::{Config, Secret},
    events::hub::Hub,
    http::{api_router, ApiContext, ConnectionLimits},
    notify::{email::Mailer, push::PushSender, worker::Worker},
    presence::Presence,
    server::{self, ServerLimits},
    shutdown::Shutdown,
    store::{now_millis, Store},
    telemetry,
};

/// How often old inbox events are trimmed.
const TRIM_EVERY: Duration = Duration::from_secs(3600);

/// A built, bound, not yet serving application.
pub struct Application {
    listener: TcpListener,
    ctx: ApiContext,
}

impl Application {
    /// Connect, migrate and bind. Port 0 picks a free port; `local_addr` tells which. The
    /// application stops when `shutdown` fires.
    pub async fn build(config: Config, shutdown: Shutdown) -> anyhow::Result<Application> {
        let ctx = build_context(config, shutdown).await?;
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

    /// Serve until shutdown, then drain within the configured bound.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        run(self.listener, self.ctx).await
    }
}

/// Serve `ctx` on `listener` until its shutdown signal fires.
pub async fn run(listener: TcpListener, ctx: ApiContext) -> anyhow::Result<()> {
    let store = ctx.store.clone();
    let limits = ServerLimits {
        max_connections: ctx.config.max_connections,
        header_read_timeout: ctx.config.header_read_timeout,
        drain: ctx.config.shutdown_drain,
    };
    tokio::spawn(trim_old_events(
        store.clone(),
        ctx.config.event_retention,
        ctx.shutdown.clone(),
    ));
    if ctx.config.worker {
        spawn_worker(&ctx)?;
    }
    let shutdown = ctx.shutdown.clone();
    server::serve(listener, api_router(ctx), shutdown, limits).await;
    store.close().await;
    Ok(())
}

/// Everything the handlers share, from configuration.
pub async fn build_context(config: Config, shutdown: Shutdown) -> anyhow::Result<ApiContext> {
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
    let (bus, incoming, presence) = match &config.redis_url {
        Some(url) => {
            let (bus, incoming) =
                Bus::redis(url, &config.redis_prefix)
                    .await
                    .with_context(|| {
                        format!(
                            "cannot connect to Redis at {}",
                            crate::config::redact_url(url)
                        )
                    })?;
            (
                bus,
                incoming,
                Presence::redis(url, &config.redis_prefix).await?,
            )
        }
        None => {
            let (bus, incoming) = Bus::memory();
            (bus, incoming, Presence::memory())
        }
    };
    let push = PushSender::load(&store)
        .await
        .context("cannot load the Web Push (VAPID) key")?;
    Ok(ApiContext {
        static_dir: Arc::new(config.static_dir.clone()),
        limits: ConnectionLimits::new(config.max_connections_per_user),
        config: Arc::new(config),
        store,
        tokens: TokenSigner::new(signing_key.as_bytes()),
        admin_token: Arc::new(admin_token),
        metrics: telemetry::metrics_handle(),
        hub: Hub::new(bus, incoming),
        presence,
        shutdown,
        notify_wake: Arc::default(),
        push,
    })
}

/// Start the notification worker: on RabbitMQ when `AMQP_URL` is set, otherwise on the
/// database queue. Returns its task.
pub fn spawn_worker(ctx: &ApiContext) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let worker = notification_worker(ctx)?;
    let shutdown = ctx.shutdown.clone();
    Ok(match &ctx.config.amqp_url {
        Some(url) => tokio::spawn(crate::notify::amqp::run(
            url.clone(),
            ctx.config.amqp_prefix.clone(),
            worker,
            shutdown,
        )),
        None => tokio::spawn(worker.run(shutdown)),
    })
}

/// The notification worker over the context's store, hub and presence.
pub fn notification_worker(ctx: &ApiContext) -> anyhow::Result<Worker> {
    Ok(Worker {
        store: ctx.store.clone(),
        hub: ctx.hub.clone(),
        presence: ctx.presence.clone(),
        mailer: match &ctx.config.smtp_url {
            Some(url) => Mailer::smtp(url)?,
            None => Mailer::files(&ctx.config.data_dir)?,
        },
        push: ctx.push.clone(),
        links: ctx.tokens.clone(),
        public_url: ctx.config.public_url(),
        window: ctx.config.notify_window,
        escalation_after: ctx.config.company_email_after,
        wake: ctx.notify_wake.clone(),
    })
}

/// Connect to the configured database and bring its schema up to date.
pub async fn connect_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database(), config.db_max_connections).await?;
    store.migrate().await?;
    Ok(store)
}

/// Drop inbox events older than the retention period, hourly.
async fn trim_old_events(store: Store, retention: Duration, mut shutdown: Shutdown) {
    loop {
        let cutoff = now_millis() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        match store.trim_events(cutoff).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "trimmed old inbox events"),
            Err(error) => tracing::warn!(%error, "trimming old inbox events failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(TRIM_EVERY) => {}
            _ = shutdown.recv() => return,
        }
    }
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
