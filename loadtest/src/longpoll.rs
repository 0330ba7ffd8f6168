//! `longpoll-cycles`: how many poll cycles per second the server turns around. Each client is a
//! customer polling its inbox with `timeout=0` (authenticate, subscribe, read from the cursor,
//! answer, unsubscribe): the fixed cost every long-poll pays on each reconnect.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::{
    report::{latency_histogram, record, Latency},
    setup::{company_with_operator, customer_in_chat},
};

#[derive(clap::Args)]
pub struct LongPollArgs {
    /// Concurrent polling clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Measured time, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

#[derive(Serialize)]
pub struct LongPollResult {
    scenario: &'static str,
    clients: usize,
    cycles: u64,
    errors: u64,
    cycles_per_s: f64,
    latency: Latency,
}

pub async fn run(
    base: &str,
    admin_token: &str,
    args: LongPollArgs,
) -> anyhow::Result<LongPollResult> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients * 2)
        .build()?;
    let (company_id, _) = company_with_operator(&client, base, admin_token, "longpoll").await?;
    let mut tokens = Vec::new();
    for c in 0..args.clients {
        tokens.push(
            customer_in_chat(&client, base, company_id, &format!("Poller {c}"))
                .await?
                .0,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for token in tokens {
        let (client, url) = (
            client.clone(),
            format!("{base}/v1/events?timeout=0&cursor=2&access_token={token}"),
        );
        tasks.push(tokio::spawn(async move {
            let mut histogram = latency_histogram();
            let (mut cycles, mut errors) = (0u64, 0u64);
            while Instant::now() < deadline {
                let begun = Instant::now();
                match client.get(&url).send().await {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.bytes().await;
                        cycles += 1;
                        record(&mut histogram, begun.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (histogram, cycles, errors)
        }));
    }
    let mut histogram = latency_histogram();
    let (mut cycles, mut errors) = (0, 0);
    for task in tasks {
        let (h, c, e) = task.await?;
        histogram.add(&h)?;
        cycles += c;
        errors += e;
    }
    Ok(LongPollResult {
        scenario: "longpoll-cycles",
        clients: args.clients,
        cycles,
        errors,
        cycles_per_s: (cycles as f64 / args.seconds as f64).round(),
        latency: Latency::from_histogram(&histogram),
    })
}
