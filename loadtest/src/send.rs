//! `send`: concurrent senders, each a customer in its own conversation, spread over a number of
//! companies (each with one operator, whose inbox hears every message of the company). Every
//! message carries a `client_msg_id`, as the real client sends it.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::report::{latency_histogram, record, Latency};
use crate::setup::{company_with_operator, customer_in_chat};

#[derive(clap::Args)]
pub struct SendArgs {
    /// Concurrent senders.
    #[arg(long, default_value_t = 32)]
    senders: usize,
    /// Companies the senders write to (round robin). 1 puts every message into one operator's
    /// inbox, the most contended case.
    #[arg(long, default_value_t = 8)]
    companies: usize,
    /// How long to send, after a short warm-up.
    #[arg(long, default_value = "10s", value_parser = humantime_secs)]
    duration: Duration,
    /// Characters per message.
    #[arg(long, default_value_t = 80)]
    message_chars: usize,
}

fn humantime_secs(raw: &str) -> Result<Duration, String> {
    let secs: f64 = raw
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("{raw}: expected seconds like 10s"))?;
    Ok(Duration::from_secs_f64(secs))
}

#[derive(Serialize)]
pub struct SendResult {
    scenario: &'static str,
    senders: usize,
    companies: usize,
    duration_s: f64,
    messages: u64,
    errors: u64,
    messages_per_s: f64,
    latency: Latency,
}

pub async fn run(base: &str, admin_token: &str, args: SendArgs) -> anyhow::Result<SendResult> {
    anyhow::ensure!(
        args.senders > 0 && args.companies > 0,
        "--senders and --companies must be positive"
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.senders * 2)
        .build()?;

    let mut companies = Vec::new();
    for c in 0..args.companies {
        let (company_id, _) =
            company_with_operator(&client, base, admin_token, &format!("send {c}")).await?;
        companies.push(company_id);
    }

    let text: String = "x".repeat(args.message_chars.max(1));
    let mut senders = Vec::new();
    for s in 0..args.senders {
        senders.push(
            customer_in_chat(
                &client,
                base,
                companies[s % companies.len()],
                &format!("Sender {s}"),
            )
            .await?,
        );
    }

    let warmup = Duration::from_secs(1);
    let started = Instant::now();
    let measure_from = started + warmup;
    let deadline = measure_from + args.duration;
    let mut tasks = Vec::new();
    for (s, (token, conversation)) in senders.into_iter().enumerate() {
        let (client, text, url) = (
            client.clone(),
            text.clone(),
            format!("{base}/v1/conversations/{conversation}/messages"),
        );
        tasks.push(tokio::spawn(async move {
            let mut histogram = latency_histogram();
            let (mut sent, mut errors) = (0u64, 0u64);
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let begun = Instant::now();
                let result = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"text": text, "client_msg_id": format!("s{s}-{i}")}))
                    .send()
                    .await;
                let ok = matches!(&result, Ok(r) if r.status().as_u16() == 201);
                if let Ok(response) = result {
                    let _ = response.bytes().await;
                }
                if begun >= measure_from {
                    if ok {
                        sent += 1;
                        record(&mut histogram, begun.elapsed());
                    } else {
                        errors += 1;
                    }
                }
            }
            (histogram, sent, errors)
        }));
    }
    let mut histogram = latency_histogram();
    let (mut messages, mut errors) = (0, 0);
    for task in tasks {
        let (h, sent, failed) = task.await?;
        histogram.add(&h)?;
        messages += sent;
        errors += failed;
    }
    let seconds = args.duration.as_secs_f64();
    Ok(SendResult {
        scenario: "send",
        senders: args.senders,
        companies: args.companies,
        duration_s: seconds,
        messages,
        errors,
        messages_per_s: (messages as f64 / seconds * 10.0).round() / 10.0,
        latency: Latency::from_histogram(&histogram),
    })
}
