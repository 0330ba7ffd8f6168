//! `fanout`: one inbox with thousands of SSE subscribers (one customer's tabs everywhere), one
//! message at a time; how long until every subscriber has it. Measures the hub's one-broadcast
//! wake-up and the write path to every connection.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;

use crate::{
    report::{latency_histogram, record, Latency},
    setup::{company_with_operator, customer_in_chat, post},
    sse_client,
};

#[derive(clap::Args)]
pub struct FanoutArgs {
    /// SSE subscribers of the one inbox (the server's per-user cap must allow them).
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    /// Messages sent, one after the other.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Source addresses to spread the sockets over (127.0.0.2 …).
    #[arg(long, default_value_t = 8)]
    sources: usize,
}

#[derive(Serialize)]
pub struct FanoutResult {
    scenario: &'static str,
    subscribers: usize,
    rounds: usize,
    connect_seconds: f64,
    /// Per round: milliseconds from sending the message until the last subscriber had it.
    until_last_ms: Vec<f64>,
    /// Over every delivery of every round.
    delivery: Latency,
}

pub async fn run(base: &str, admin_token: &str, args: FanoutArgs) -> anyhow::Result<FanoutResult> {
    let client = reqwest::Client::new();
    let (company_id, operator_token) =
        company_with_operator(&client, base, admin_token, "fanout").await?;
    let (customer_token, conversation) =
        customer_in_chat(&client, base, company_id, "Everywhere").await?;
    let server: SocketAddr = base
        .trim_start_matches("http://")
        .parse()
        .context("--url must be http://IP:PORT")?;

    let started = Instant::now();
    let (received, mut receipts) = mpsc::unbounded_channel::<Instant>();
    let (ready, mut ready_count) = mpsc::unbounded_channel::<bool>();
    let connecting = std::sync::Arc::new(tokio::sync::Semaphore::new(256));
    for i in 0..args.subscribers {
        let (received, ready, token, connecting) = (
            received.clone(),
            ready.clone(),
            customer_token.clone(),
            connecting.clone(),
        );
        let source = sse_client::source_address(i, args.sources);
        tokio::spawn(async move {
            let permit = connecting.acquire_owned().await;
            let connection = sse_client::open(server, source, &token, "").await;
            drop(permit);
            let mut connection = match connection {
                Ok(connection) => connection,
                Err(error) => {
                    eprintln!("subscriber {i}: {error:#}");
                    let _ = ready.send(false);
                    return;
                }
            };
            let _ = ready.send(true);
            while connection.next_event_id().await.is_ok() {
                let _ = received.send(Instant::now());
            }
        });
    }
    let mut connected = 0;
    for _ in 0..args.subscribers {
        if ready_count.recv().await == Some(true) {
            connected += 1;
        }
    }
    anyhow::ensure!(
        connected == args.subscribers,
        "only {connected} of {} subscribers connected",
        args.subscribers
    );
    let connect_seconds = started.elapsed().as_secs_f64();
    // Let the streams settle (first frames read, subscriptions registered).
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut histogram = latency_histogram();
    let mut until_last_ms = Vec::new();
    for round in 0..args.rounds {
        let sent = Instant::now();
        post(
            &client,
            base,
            &operator_token,
            &format!("/v1/conversations/{conversation}/messages"),
            json!({"text": format!("to everyone {round}")}),
        )
        .await?;
        let mut last = sent;
        for _ in 0..args.subscribers {
            let at = tokio::time::timeout(Duration::from_secs(60), receipts.recv())
                .await
                .context("a subscriber never got the message")?
                .context("subscribers gone")?;
            record(&mut histogram, at.saturating_duration_since(sent));
            last = last.max(at);
        }
        until_last_ms.push((last - sent).as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(FanoutResult {
        scenario: "fanout",
        subscribers: args.subscribers,
        rounds: args.rounds,
        connect_seconds,
        until_last_ms,
        delivery: Latency::from_histogram(&histogram),
    })
}
