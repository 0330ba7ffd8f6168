//! `sse-idle`: how many idle SSE connections one server process holds, and what each costs in
//! resident memory. The connections are spread over several client processes (one process may
//! hold ~20 000 files) and several 127.0.0.x source addresses; the customers each hold four.

use std::{
    io::{BufRead, BufReader, Write},
    net::SocketAddr,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use serde::Serialize;

use crate::{
    setup::{company_with_operator, customer_in_chat},
    sse_client,
};

#[derive(clap::Args)]
pub struct IdleArgs {
    /// Connections to open in all.
    #[arg(long, default_value_t = 15_000)]
    connections: usize,
    /// Client processes to spread them over.
    #[arg(long, default_value_t = 2)]
    processes: usize,
    /// Source addresses to spread the sockets over (127.0.0.2 …).
    #[arg(long, default_value_t = 8)]
    sources: usize,
    /// The server's process id, to read its resident memory.
    #[arg(long)]
    server_pid: u32,
    /// How long to hold the connections before measuring again.
    #[arg(long, default_value = "5", value_parser = |s: &str| s.trim_end_matches('s').parse::<u64>().map(Duration::from_secs))]
    hold: Duration,
}

/// Hidden child command: hold connections for the parent.
#[derive(clap::Args)]
pub struct HoldArgs {
    #[arg(long)]
    tokens_file: std::path::PathBuf,
    #[arg(long)]
    first: usize,
    #[arg(long)]
    count: usize,
    #[arg(long)]
    sources: usize,
}

#[derive(Serialize)]
pub struct IdleResult {
    scenario: &'static str,
    connections: usize,
    processes: usize,
    connect_seconds: f64,
    server_rss_before_kib: u64,
    server_rss_after_kib: u64,
    rss_per_connection_bytes: f64,
}

const TABS_PER_CUSTOMER: usize = 4;

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("reading the server's /proc status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

pub async fn run(base: &str, admin_token: &str, args: IdleArgs) -> anyhow::Result<IdleResult> {
    let client = reqwest::Client::new();
    let (company_id, _) = company_with_operator(&client, base, admin_token, "idle").await?;
    let customers = args.connections.div_ceil(TABS_PER_CUSTOMER);
    let mut tokens = Vec::with_capacity(customers);
    let creating = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = Vec::new();
    for c in 0..customers {
        let (client, base, creating) = (client.clone(), base.to_owned(), creating.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = creating.acquire_owned().await;
            customer_in_chat(&client, &base, company_id, &format!("Idle {c}")).await
        }));
    }
    for task in tasks {
        tokens.push(task.await??.0);
    }
    let tokens_file = std::env::temp_dir().join(format!("loadtest-tokens-{}", std::process::id()));
    std::fs::write(&tokens_file, tokens.join("\n"))?;

    let before = rss_kib(args.server_pid)?;
    let started = Instant::now();
    let per_process = args.connections.div_ceil(args.processes);
    let mut children = Vec::new();
    for p in 0..args.processes {
        let first = p * per_process;
        let count = per_process.min(args.connections.saturating_sub(first));
        let child = Command::new(std::env::current_exe()?)
            .args(["--url", base, "hold"])
            .args(["--tokens-file", &tokens_file.to_string_lossy()])
            .args([
                "--first",
                &first.to_string(),
                "--count",
                &count.to_string(),
                "--sources",
                &args.sources.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        children.push(child);
    }
    let mut opened = 0;
    for child in &mut children {
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().context("child stdout")?).read_line(&mut line)?;
        opened += line
            .trim()
            .strip_prefix("ready ")
            .and_then(|n| n.parse::<usize>().ok())
            .context("child did not get ready")?;
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(args.hold).await;
    let after = rss_kib(args.server_pid)?;
    for mut child in children {
        drop(child.stdin.take());
        let _ = child.wait();
    }
    let _ = std::fs::remove_file(&tokens_file);
    anyhow::ensure!(
        opened == args.connections,
        "only {opened} of {} connections opened",
        args.connections
    );
    Ok(IdleResult {
        scenario: "sse-idle",
        connections: opened,
        processes: args.processes,
        connect_seconds,
        server_rss_before_kib: before,
        server_rss_after_kib: after,
        rss_per_connection_bytes: ((after.saturating_sub(before)) * 1024) as f64 / opened as f64,
    })
}

/// The child side: open `count` streams, say `ready N`, hold them until stdin closes.
pub async fn hold(base: &str, args: HoldArgs) -> anyhow::Result<()> {
    let server: SocketAddr = base
        .trim_start_matches("http://")
        .parse()
        .context("--url must be http://IP:PORT")?;
    let tokens: Vec<String> = std::fs::read_to_string(&args.tokens_file)?
        .lines()
        .map(str::to_owned)
        .collect();
    let connecting = std::sync::Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = Vec::new();
    for i in args.first..args.first + args.count {
        let token = tokens[(i / TABS_PER_CUSTOMER) % tokens.len()].clone();
        let source = sse_client::source_address(i, args.sources);
        let connecting = connecting.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = connecting.acquire_owned().await?;
            sse_client::open(server, source, &token, "").await
        }));
    }
    let mut held = Vec::new();
    for task in tasks {
        match task.await? {
            Ok(connection) => held.push(connection),
            Err(error) => eprintln!("{error:#}"),
        }
    }
    println!("ready {}", held.len());
    std::io::stdout().flush()?;
    // Hold until the parent closes our stdin.
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        let _ = std::io::stdin().read_line(&mut sink);
    })
    .await?;
    drop(held);
    Ok(())
}
