//! Persistence: the only source of truth for companies, conversations, messages and inboxes.
//!
//! One `Store` serves both backends through sqlx's `Any` driver. The SQL is written once, in the
//! subset PostgreSQL and SQLite share (`$n` parameters, `RETURNING`, `ON CONFLICT`, integer
//! times and flags); the schemas differ only in how ids are generated and live in
//! `migrations/postgres` and `migrations/sqlite`. The backend is chosen once, from the URL
//! scheme. SQL sits in the method that runs it, grouped by concern:
//! `directory` (companies, branches, operators, customers), `conversations` (messages, reads,
//! history) and `inbox` (gap-free event streams).

mod conversations;
mod directory;
mod inbox;
mod notifications;

pub use conversations::{
    ConversationFilter, ConversationRow, MessageRow, NewMessage, OpenConversation, Opened, Posted,
    ReadReceipt,
};
pub use directory::{
    BranchRow, CompanyPatch, CompanyRow, CustomerRow, NewBranch, NewCompany, NewCustomer,
    NewOperator, OperatorCredentials, OperatorRow,
};
pub use inbox::{InboxHead, Parties, StoredEvent};
pub use notifications::{JobRow, LogRow, PushSubscriptionRow, SettingsRow, JOB_LEASE_MS};

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use sqlx::{
    any::{AnyPoolOptions, AnyQueryResult},
    AnyPool, Executor, Transaction,
};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::config::DatabaseUrl;

/// What can go wrong in the store, in the terms the HTTP layer needs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// The request names something that does not exist or does not fit (a client error); the
    /// code is stable and safe to show to clients.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// The request clashes with the current state (a duplicate, an opted-out company).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            other => StoreError::Other(other.into()),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Which SQL engine is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A cheap-clone handle to the database.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer at a time and a deferred transaction that later wants to write
    /// can fail with SQLITE_BUSY instead of waiting. Write transactions therefore queue on this
    /// lock (SQLite only), which turns contention into waiting. PostgreSQL needs no such lock.
    write_lock: Option<Arc<Mutex<()>>>,
}

/// A write transaction plus, on SQLite, the writer lock it holds until commit or drop.
pub struct WriteTx {
    pub tx: Transaction<'static, sqlx::Any>,
    pub backend: Backend,
    _writer: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub async fn commit(self) -> StoreResult<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl Store {
    /// Connect to `url`, failing within a few seconds with a clear message when unreachable.
    pub async fn connect(url: &DatabaseUrl, max_connections: u32) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = match url {
            DatabaseUrl::Postgres(_) => Backend::Postgres,
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
        };
        let options = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Postgres => max_connections.max(1),
                // Readers run in parallel under WAL; writers queue on `write_lock` anyway.
                Backend::Sqlite => max_connections.clamp(1, 8),
            })
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            });
        let pool = tokio::time::timeout(Duration::from_secs(10), options.connect(url.as_str()))
            .await
            .map_err(|_| anyhow::anyhow!("timed out"))
            .and_then(|connected| connected.map_err(anyhow::Error::from))
            .with_context(|| format!("cannot connect to the database at {}", url.redacted()))?;
        Ok(Store {
            pool,
            backend,
            write_lock: (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(()))),
        })
    }

    /// Bring the schema up to date. Safe to run on every start and from several nodes at once
    /// (sqlx takes an advisory lock on PostgreSQL).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        };
        migrator
            .run(&self.pool)
            .await
            .context("applying database migrations failed")
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Start a write transaction (queued behind other writers on SQLite).
    pub async fn begin_write(&self) -> StoreResult<WriteTx> {
        let writer = match &self.write_lock {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        };
        let tx = self.pool.begin().await?;
        Ok(WriteTx {
            tx,
            backend: self.backend,
            _writer: writer,
        })
    }

    /// Run one writing statement in its own write transaction (queued behind other writers
    /// on SQLite); returns the rows it affected.
    pub async fn write_one<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> StoreResult<u64> {
        let mut w = self.begin_write().await?;
        let affected = query.execute(&mut *w.tx).await?.rows_affected();
        w.commit().await?;
        Ok(affected)
    }

    /// Is the database answering?
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// A named secret shared by every node (e.g. the token signing key), created by the first
    /// node that asks.
    pub async fn shared_secret(
        &self,
        name: &str,
        generate: impl FnOnce() -> String,
    ) -> StoreResult<String> {
        let _: AnyQueryResult = sqlx::query(
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(generate())
        .execute(&self.pool)
        .await?;
        let value: String = sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(value)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Milliseconds since the Unix epoch: the one time format stored and served.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Is this error a violation of the named unique constraint? Both backends report the
/// constraint differently; PostgreSQL names it, SQLite names the columns.
fn is_unique_violation(error: &sqlx::Error, constraint: &str, sqlite_columns: &str) -> bool {
    match error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            db.constraint() == Some(constraint) || db.message().contains(sqlite_columns)
        }
        _ => false,
    }
}
