//! Load generator for Switchboard. Each scenario sets up what it needs through the public API
//! (companies, operators, customers), drives load for a fixed time, and prints one JSON line of
//! results; `--out` also writes it to a file.
//!
//! Scenarios:
//! - `send`: N concurrent senders posting messages as fast as the server answers; reports
//!   messages per second and latency percentiles.
//! - `fanout`: one inbox with thousands of SSE subscribers; time until the last has a message.
//! - `sse-idle`: idle SSE connections held by the server and resident memory per connection.
//! - `longpoll-cycles`: poll cycles per second.
//! - `notify-jobs`: notification jobs per second through the worker (database queue).

mod fanout;
mod idle;
mod longpoll;
mod notify_jobs;
mod report;
mod send;
mod setup;
mod sse_client;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "loadtest", about = "Load generator for Switchboard")]
struct Cli {
    /// Base URL of the server under test (loopback only).
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    url: String,

    /// The server's admin token (used to create the test companies).
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_ADMIN_TOKEN",
        hide_env_values = true,
        default_value = ""
    )]
    admin_token: String,

    /// Also write the JSON result to this file.
    #[arg(long, global = true)]
    out: Option<std::path::PathBuf>,

    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Message send throughput and latency with concurrent senders.
    Send(send::SendArgs),
    /// One message to thousands of SSE subscribers of one inbox.
    Fanout(fanout::FanoutArgs),
    /// Idle SSE connections and server memory per connection.
    SseIdle(idle::IdleArgs),
    /// Long-poll request cycles per second.
    LongpollCycles(longpoll::LongPollArgs),
    /// Notification jobs per second through the worker.
    NotifyJobs(notify_jobs::NotifyJobsArgs),
    /// (Used by `sse-idle`) hold connections in a child process.
    #[command(hide = true)]
    Hold(idle::HoldArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    check_loopback(&cli.url)?;
    let line = match cli.scenario {
        Scenario::Send(args) => {
            serde_json::to_string(&send::run(&cli.url, &cli.admin_token, args).await?)?
        }
        Scenario::Fanout(args) => {
            serde_json::to_string(&fanout::run(&cli.url, &cli.admin_token, args).await?)?
        }
        Scenario::SseIdle(args) => {
            serde_json::to_string(&idle::run(&cli.url, &cli.admin_token, args).await?)?
        }
        Scenario::LongpollCycles(args) => {
            serde_json::to_string(&longpoll::run(&cli.url, &cli.admin_token, args).await?)?
        }
        Scenario::NotifyJobs(args) => serde_json::to_string(&notify_jobs::run(args).await?)?,
        Scenario::Hold(args) => return idle::hold(&cli.url, args).await,
    };
    println!("{line}");
    if let Some(path) = cli.out {
        std::fs::write(path, format!("{line}\n"))?;
    }
    Ok(())
}

/// Load is only ever aimed at this machine.
fn check_loopback(url: &str) -> anyhow::Result<()> {
    let host = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', ':']).next())
        .unwrap_or_default();
    let loopback = host == "localhost" || host.starts_with("127.") || host == "[";
    anyhow::ensure!(
        loopback,
        "refusing to load {url}: only loopback addresses (127.0.0.0/8, localhost) are allowed"
    );
    Ok(())
}
