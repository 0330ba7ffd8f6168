//! All configuration in one typed place: command-line flags that mirror environment variables.
//!
//! Values are parsed and checked here, at start-up, so a typo in a URL or a duration is reported
//! as a clear message before anything binds or connects. Secrets never appear in `Debug` output.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

/// The command line: a subcommand (default `serve`) plus the shared configuration.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Create the demo company and operator (if missing) and print the login.
    Demo,
    /// Run only the notification worker (to scale it apart from the web nodes).
    Worker,
    /// Set up companies, branches and operators without crafting HTTP requests.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a company; prints its id.
    CreateCompany {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        city: Option<String>,
        /// IANA time zone, e.g. Asia/Novosibirsk.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// Refuse new conversations (the company opted out of messaging).
        #[arg(long)]
        no_messages: bool,
    },
    /// Create a branch of a company; prints its id.
    CreateBranch {
        #[arg(long)]
        company_id: i64,
        #[arg(long)]
        name: String,
        #[arg(long)]
        city: String,
        #[arg(long)]
        timezone: String,
    },
    /// Create an operator who logs in to the console; prints its id.
    CreateOperator {
        #[arg(long)]
        company_id: i64,
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        /// The password; read from SWITCHBOARD_OPERATOR_PASSWORD when not given.
        #[arg(long, env = "SWITCHBOARD_OPERATOR_PASSWORD", hide_env_values = true)]
        password: String,
        /// Restrict the operator to these branches (comma-separated ids); none = whole company.
        #[arg(long, value_delimiter = ',')]
        branch_ids: Vec<i64>,
    },
    /// List companies with their ids.
    ListCompanies,
}

/// Server configuration. Every field's doc comment is its `--help` text.
#[derive(Clone, Args)]
pub struct Config {
    /// Address to serve on; port 0 picks a free port and logs it.
    #[arg(
        long,
        env = "SWITCHBOARD_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,

    /// Directory for the SQLite file, generated keys and the e-mail outbox.
    #[arg(
        long,
        env = "SWITCHBOARD_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Directory holding the web client (widget and operator console).
    #[arg(
        long,
        env = "SWITCHBOARD_STATIC_DIR",
        default_value = "static",
        global = true
    )]
    pub static_dir: PathBuf,

    /// `postgres://…` for PostgreSQL; unset means a SQLite file in the data directory.
    #[arg(long, env = "DATABASE_URL", value_parser = parse_database_url, global = true)]
    pub database_url: Option<DatabaseUrl>,

    /// Largest number of pooled database connections.
    #[arg(
        long,
        env = "SWITCHBOARD_DB_MAX_CONNECTIONS",
        default_value_t = 32,
        global = true
    )]
    pub db_max_connections: u32,

    /// `redis://…` for cross-node fan-out and presence; unset means the in-process bus.
    #[arg(long, env = "REDIS_URL", value_parser = parse_redis_url, global = true)]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key and channel, so several deployments can share one Redis.
    #[arg(
        long,
        env = "SWITCHBOARD_REDIS_PREFIX",
        default_value = "switchboard",
        global = true
    )]
    pub redis_prefix: String,

    /// `amqp://…` for RabbitMQ; unset means the database-backed job queue.
    #[arg(long, env = "AMQP_URL", value_parser = parse_amqp_url, global = true)]
    pub amqp_url: Option<String>,

    /// Prefix of the RabbitMQ exchange and queues.
    #[arg(
        long,
        env = "SWITCHBOARD_AMQP_PREFIX",
        default_value = "switchboard",
        global = true
    )]
    pub amqp_prefix: String,

    /// `smtp://host:port` for e-mail; unset means `.eml` files in the data directory.
    #[arg(long, env = "SMTP_URL", value_parser = parse_smtp_url, global = true)]
    pub smtp_url: Option<String>,

    /// Bearer token for `/v1/admin/*`; generated and kept in the data directory when unset.
    #[arg(
        long,
        env = "SWITCHBOARD_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub admin_token: Option<Secret>,

    /// Comma-separated origins allowed to call the API from other sites (CORS).
    #[arg(
        long,
        env = "SWITCHBOARD_CORS_ORIGINS",
        value_delimiter = ',',
        global = true
    )]
    pub cors_origins: Vec<String>,

    /// How long a company may leave a message unanswered before it is e-mailed anyway.
    #[arg(long, env = "SWITCHBOARD_COMPANY_EMAIL_AFTER", default_value = "15m", value_parser = parse_duration, global = true)]
    pub company_email_after: Duration,

    /// At most one notification per conversation and channel within this window; later
    /// messages wait for the next digest.
    #[arg(long, env = "SWITCHBOARD_NOTIFY_WINDOW", default_value = "15m", value_parser = parse_duration, global = true)]
    pub notify_window: Duration,

    /// The address people reach this service at, for links in e-mails (default: the listen
    /// address).
    #[arg(long, env = "SWITCHBOARD_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// Run the notification worker inside `serve` (turn off when workers run apart).
    #[arg(long, env = "SWITCHBOARD_WORKER", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub worker: bool,

    /// Longest message text, in characters.
    #[arg(
        long,
        env = "SWITCHBOARD_MAX_MESSAGE_CHARS",
        default_value_t = 4000,
        global = true
    )]
    pub max_message_chars: usize,

    /// Largest accepted request body, in bytes (larger bodies get 413).
    #[arg(long, env = "SWITCHBOARD_MAX_BODY_BYTES", default_value_t = 64 * 1024, global = true)]
    pub max_body_bytes: usize,

    /// Most companies one "ask several companies" request may address.
    #[arg(
        long,
        env = "SWITCHBOARD_MAX_BATCH_COMPANIES",
        default_value_t = 20,
        global = true
    )]
    pub max_batch_companies: usize,

    /// Open connections the server holds at most (streams, polls and plain requests).
    #[arg(
        long,
        env = "SWITCHBOARD_MAX_CONNECTIONS",
        default_value_t = 50_000,
        global = true
    )]
    pub max_connections: usize,

    /// Live streams and parked polls one customer or operator may hold (tabs, devices).
    #[arg(
        long,
        env = "SWITCHBOARD_MAX_CONNECTIONS_PER_USER",
        default_value_t = 20,
        global = true
    )]
    pub max_connections_per_user: usize,

    /// Time a client has to send its request headers.
    #[arg(long, env = "SWITCHBOARD_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration, global = true)]
    pub header_read_timeout: Duration,

    /// Time open connections get to finish on shutdown.
    #[arg(long, env = "SWITCHBOARD_SHUTDOWN_DRAIN", default_value = "10s", value_parser = parse_duration, global = true)]
    pub shutdown_drain: Duration,

    /// How long inbox events are kept; older cursors get 410 `cursor_expired`.
    #[arg(long, env = "SWITCHBOARD_EVENT_RETENTION", default_value = "30days", value_parser = parse_duration, global = true)]
    pub event_retention: Duration,

    /// Seed the demo company on start when the database has no company yet (embedded mode).
    #[arg(long, env = "SWITCHBOARD_DEMO", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub demo: bool,

    /// Log format: `text` for people, `json` for log collectors.
    #[arg(long, env = "SWITCHBOARD_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"], global = true)]
    pub log_format: String,
}

impl Config {
    /// A configuration with every default, rooted at `data_dir` (used by tests and tools).
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let mut cli = Cli::parse_from(["switchboard"]);
        cli.config.data_dir = data_dir.into();
        cli.config.database_url = None;
        cli.config.admin_token = None;
        cli.config
    }

    /// The base of links in e-mails.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_owned()
    }

    /// The database to use: the configured URL, or the SQLite file in the data directory.
    pub fn database(&self) -> DatabaseUrl {
        self.database_url.clone().unwrap_or_else(|| {
            DatabaseUrl::Sqlite(format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("switchboard.db").display()
            ))
        })
    }
}

impl fmt::Debug for Config {
    // Hand-written so that passwords inside URLs and the admin token never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database", &self.database().redacted())
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("amqp_url", &self.amqp_url.as_deref().map(redact_url))
            .field("smtp_url", &self.smtp_url.as_deref().map(redact_url))
            .field("admin_token", &self.admin_token)
            .field("cors_origins", &self.cors_origins)
            .field("company_email_after", &self.company_email_after)
            .field("max_message_chars", &self.max_message_chars)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

/// Which SQL backend a URL names. The scheme decides, once, at the edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(String),
    Sqlite(String),
}

impl DatabaseUrl {
    pub fn as_str(&self) -> &str {
        match self {
            DatabaseUrl::Postgres(url) | DatabaseUrl::Sqlite(url) => url,
        }
    }

    /// The URL with any password replaced, for messages and logs.
    pub fn redacted(&self) -> String {
        redact_url(self.as_str())
    }
}

/// A secret string whose `Debug` output is redacted.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() < 16 {
            return Err("the admin token must be at least 16 characters long".into());
        }
        Ok(Secret(s.to_owned()))
    }
}

/// Replace the password of a URL with `***`; leave anything unparsable as a placeholder.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "<unparsable url>".to_owned(),
    }
}

fn parse_url_with_schemes(raw: &str, schemes: &[&str]) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("not a valid URL ({e})"))?;
    if !schemes.contains(&url.scheme()) {
        return Err(format!(
            "unsupported scheme `{}`; expected one of: {}",
            url.scheme(),
            schemes.join(", ")
        ));
    }
    Ok(url)
}

fn parse_database_url(raw: &str) -> Result<DatabaseUrl, String> {
    let url = parse_url_with_schemes(raw, &["postgres", "postgresql", "sqlite"])?;
    Ok(match url.scheme() {
        "sqlite" => DatabaseUrl::Sqlite(raw.to_owned()),
        _ => DatabaseUrl::Postgres(raw.to_owned()),
    })
}

fn parse_redis_url(raw: &str) -> Result<String, String> {
    parse_url_with_schemes(raw, &["redis", "rediss"]).map(|_| raw.to_owned())
}

fn parse_amqp_url(raw: &str) -> Result<String, String> {
    parse_url_with_schemes(raw, &["amqp", "amqps"]).map(|_| raw.to_owned())
}

fn parse_smtp_url(raw: &str) -> Result<String, String> {
    parse_url_with_schemes(raw, &["smtp"]).map(|_| raw.to_owned())
}

fn parse_duration(raw: &str) -> Result<Duration, String> {
    humantime::parse_duration(raw).map_err(|e| format!("{e} (examples: 30s, 15m, 1h)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_scheme_picks_the_backend() {
        assert!(matches!(
            parse_database_url("postgres://u@h/db"),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert!(matches!(
            parse_database_url("sqlite://x.db"),
            Ok(DatabaseUrl::Sqlite(_))
        ));
        assert!(parse_database_url("mysql://h/db")
            .unwrap_err()
            .contains("unsupported scheme"));
        assert!(parse_database_url("not a url").is_err());
    }

    #[test]
    fn urls_are_redacted_in_debug_output() {
        assert_eq!(
            redact_url("postgres://user:hunter2@db:5432/app"),
            "postgres://user:***@db:5432/app"
        );
        let mut config = Config::with_data_dir("/tmp/x");
        config.database_url = Some(DatabaseUrl::Postgres("postgres://u:hunter2@h/db".into()));
        config.admin_token = Some(Secret::new("very-secret-admin-token"));
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2"));
        assert!(!printed.contains("very-secret-admin-token"));
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert!(parse_duration("soon").is_err());
    }
}
