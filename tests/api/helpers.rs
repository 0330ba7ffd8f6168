//! `spawn_app`: the real application on a random port against a fresh database (a new SQLite
//! file, or a new PostgreSQL database), plus helpers that read like a client session.

use std::sync::Once;

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use switchboard::{
    config::{Config, DatabaseUrl, Secret},
    domain::InboxKey,
    http::ApiContext,
    shutdown::{self, ShutdownTrigger},
    startup::Application,
    store::{Store, StoredEvent},
    telemetry,
};
use tempfile::TempDir;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

#[derive(Clone, Copy, Debug)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

/// Generate one `#[tokio::test]` per backend for each listed `async fn name(TestBackend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::TestBackend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::TestBackend::Postgres).await
                }
            )*
        }
    };
}

fn services_required() -> bool {
    std::env::var("SWITCHBOARD_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// The PostgreSQL server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub ctx: ApiContext,
    pub config: Config,
    trigger: ShutdownTrigger,
    server: Option<tokio::task::JoinHandle<()>>,
    _data_dir: TempDir,
    postgres_database: Option<String>,
}

fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            telemetry::init_subscriber(telemetry::get_subscriber("debug", false, std::io::stdout));
        } else {
            telemetry::init_subscriber(telemetry::get_subscriber("error", false, std::io::sink));
        }
    });
}

/// A configuration for a test app on `backend`, or `None` when PostgreSQL is not reachable and
/// not required. Creates the PostgreSQL database.
pub async fn test_config(
    backend: TestBackend,
    data_dir: &TempDir,
) -> Option<(Config, Option<String>)> {
    let mut config = Config::with_data_dir(data_dir.path());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.admin_token = Some(Secret::new(ADMIN_TOKEN));
    config.db_max_connections = 16;
    // Notification events would interleave with what transport tests count; the tests of
    // notifications switch the worker on.
    config.worker = false;
    config.static_dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static");
    let mut database = None;
    if let TestBackend::Postgres = backend {
        let name = format!("sbtest_{}", uuid::Uuid::new_v4().simple());
        let admin_url = postgres_admin_url();
        match create_postgres_database(&admin_url, &name).await {
            Ok(()) => {}
            Err(error) if !services_required() => {
                eprintln!("skipping: PostgreSQL at {admin_url} is not available ({error})");
                return None;
            }
            Err(error) => {
                panic!("PostgreSQL is required (SWITCHBOARD_REQUIRE_SERVICES=1): {error}")
            }
        }
        let mut url = url::Url::parse(&admin_url).unwrap();
        url.set_path(&name);
        config.database_url = Some(DatabaseUrl::Postgres(url.to_string()));
        database = Some(name);
    }
    Some((config, database))
}

async fn create_postgres_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut conn = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        sqlx::PgConnection::connect(admin_url),
    )
    .await
    .map_err(|_| anyhow::anyhow!("connect timed out"))??;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    Ok(())
}

fn drop_postgres_database(name: String) {
    // Drop runs inside the test's runtime, which cannot block on itself: use a helper thread.
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            use sqlx::Connection;
            if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
            }
        });
    })
    .join();
}

/// Start the app on `backend`; `None` means "skip this test" (PostgreSQL absent, not required).
pub async fn spawn_app(backend: TestBackend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// Like `spawn_app`, with a chance to adjust the configuration first.
pub async fn spawn_app_with(
    backend: TestBackend,
    adjust: impl FnOnce(&mut Config),
) -> Option<TestApp> {
    init_logs();
    let data_dir = tempfile::tempdir().unwrap();
    let (mut config, postgres_database) = test_config(backend, &data_dir).await?;
    adjust(&mut config);
    start(config, data_dir, postgres_database).await
}

async fn start(
    config: Config,
    data_dir: TempDir,
    postgres_database: Option<String>,
) -> Option<TestApp> {
    let (trigger, stopping) = shutdown::channel();
    let app = Application::build(config.clone(), stopping)
        .await
        .expect("the app builds");
    let address = format!("http://{}", app.local_addr());
    let ctx = app.context().clone();
    let server = tokio::spawn(async move {
        app.run_until_stopped().await.expect("server runs");
    });
    Some(TestApp {
        address,
        // A bounded client: a server that hangs fails the test instead of stalling the run.
        client: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .unwrap(),
        store: ctx.store.clone(),
        ctx,
        config,
        trigger,
        server: Some(server),
        _data_dir: data_dir,
        postgres_database,
    })
}

/// The Redis server tests use.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Point `config` at Redis with a prefix of its own; `false` (skip) when Redis is not there
/// and not required.
pub async fn use_redis(config: &mut Config, url: &str) -> bool {
    let reachable = async {
        let client = redis::Client::open(url).ok()?;
        let mut connection = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            client.get_multiplexed_async_connection(),
        )
        .await
        .ok()?
        .ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .ok()
    }
    .await
    .is_some();
    if !reachable {
        assert!(
            !services_required(),
            "Redis is required (SWITCHBOARD_REQUIRE_SERVICES=1) at {url}"
        );
        eprintln!("skipping: Redis at {url} is not available");
        return false;
    }
    config.redis_url = Some(url.to_owned());
    config.redis_prefix = format!("sbtest-{}", uuid::Uuid::new_v4().simple());
    true
}

impl TestApp {
    /// Another node of the same cluster: same database and bus, its own port.
    pub async fn spawn_node(&self) -> TestApp {
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = self.config.clone();
        config.data_dir = data_dir.path().to_owned();
        start(config, data_dir, None)
            .await
            .expect("a second node starts")
    }

    /// Stop this node and start it again with `config`, on the same database.
    pub async fn restart_with(mut self, config: Config) -> TestApp {
        self.trigger.trigger();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = config;
        config.data_dir = data_dir.path().to_owned();
        let database = self.postgres_database.take();
        start(config, data_dir, database)
            .await
            .expect("the node restarts")
    }

    /// Shut down gracefully; returns how long it took.
    pub async fn stop(mut self) -> std::time::Duration {
        let started = std::time::Instant::now();
        self.trigger.trigger();
        if let Some(server) = self.server.take() {
            server.await.expect("the server task ends cleanly");
        }
        started.elapsed()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.trigger.trigger();
        if let Some(server) = self.server.take() {
            server.abort();
        }
        if let Some(name) = self.postgres_database.take() {
            drop_postgres_database(name);
        }
    }
}

/// A logged-in customer or operator.
#[derive(Clone, Debug)]
pub struct User {
    pub id: i64,
    pub token: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, token: &str, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// GET and parse the JSON answer.
    pub async fn get_json(&self, token: &str, path: &str) -> Value {
        self.get(token, path).await.json().await.unwrap()
    }

    /// GET without a token and parse the JSON answer.
    pub async fn public_json(&self, path: &str) -> Value {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Read receipt: `user` has read `conversation` up to `message_id`.
    pub async fn mark_read(&self, user: &User, conversation: i64, message_id: i64) -> Response {
        self.post(
            &user.token,
            &format!("/v1/conversations/{conversation}/read"),
            json!({"up_to_message_id": message_id}),
        )
        .await
    }

    pub async fn patch(&self, token: &str, path: &str, body: Value) -> Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// POST as admin and return the created object's id.
    pub async fn admin_create(&self, path: &str, body: Value) -> i64 {
        let response = self.post(ADMIN_TOKEN, path, body).await;
        assert_eq!(response.status(), StatusCode::CREATED, "POST {path}");
        response.json::<Value>().await.unwrap()["id"]
            .as_i64()
            .unwrap()
    }

    pub async fn create_company(&self, name: &str, city: &str, timezone: &str) -> i64 {
        let email = format!("{}@example.com", name.to_lowercase().replace(' ', "-"));
        self.admin_create(
            "/v1/admin/companies",
            json!({"name": name, "email": email, "city": city, "timezone": timezone}),
        )
        .await
    }

    pub async fn create_branch(
        &self,
        company_id: i64,
        name: &str,
        city: &str,
        timezone: &str,
    ) -> i64 {
        self.admin_create(
            &format!("/v1/admin/companies/{company_id}/branches"),
            json!({"name": name, "city": city, "timezone": timezone}),
        )
        .await
    }

    /// Create an operator and log them in.
    pub async fn create_operator(&self, company_id: i64, email: &str, branch_ids: &[i64]) -> User {
        self.admin_create(
            &format!("/v1/admin/companies/{company_id}/operators"),
            json!({"name": format!("Operator {email}"), "email": email, "password": "operator-password", "branch_ids": branch_ids}),
        )
        .await;
        let response = self
            .client
            .post(self.url("/v1/operators/login"))
            .json(&json!({"email": email, "password": "operator-password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        User {
            id: body["id"].as_i64().unwrap(),
            token: body["token"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn create_customer(&self, name: &str, city: &str, timezone: &str) -> User {
        let response = self
            .client
            .post(self.url("/v1/customers"))
            .json(&json!({"name": name, "city": city, "timezone": timezone}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        User {
            id: body["id"].as_i64().unwrap(),
            token: body["token"].as_str().unwrap().to_owned(),
        }
    }

    /// Open a conversation; returns the conversation id.
    pub async fn open_conversation(
        &self,
        customer: &User,
        company_id: i64,
        branch_id: Option<i64>,
        text: &str,
    ) -> i64 {
        let response = self
            .post(
                &customer.token,
                "/v1/conversations",
                json!({"company_id": company_id, "branch_id": branch_id, "text": text}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json::<Value>().await.unwrap()["conversation"]["id"]
            .as_i64()
            .unwrap()
    }

    pub async fn post_message(
        &self,
        user: &User,
        conversation_id: i64,
        text: &str,
        client_msg_id: Option<&str>,
    ) -> Response {
        self.post(
            &user.token,
            &format!("/v1/conversations/{conversation_id}/messages"),
            json!({"text": text, "client_msg_id": client_msg_id}),
        )
        .await
    }

    /// Every event in an inbox, oldest first.
    pub async fn inbox_events(&self, inbox: &InboxKey) -> Vec<StoredEvent> {
        let mut all = Vec::new();
        loop {
            let after = all.last().map_or(0, |e: &StoredEvent| e.seq);
            let page = self.store.events_after(inbox, after, 500).await.unwrap();
            if page.is_empty() {
                return all;
            }
            all.extend(page);
        }
    }
}

/// Read a JSON error body and return its code.
pub async fn error_code(response: Response) -> String {
    let body: Value = response.json().await.expect("error bodies are JSON");
    body["error"]["code"]
        .as_str()
        .expect("error.code is a string")
        .to_owned()
}
