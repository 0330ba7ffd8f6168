//! `notify-jobs`: notification jobs per second through the worker (claim from the database
//! queue, observe, policy, delivery log, `.eml` e-mail, finish). Runs the server's own worker
//! code in this process against a fresh data directory and the given database.

use std::time::Instant;

use anyhow::Context as _;
use serde::Serialize;
use switchboard::{
    config::{Config, DatabaseUrl},
    notify::worker::ExecutionOutcome,
    shutdown, startup,
    store::{NewCompany, NewCustomer, NewOperator, OpenConversation},
};

#[derive(clap::Args)]
pub struct NotifyJobsArgs {
    /// Jobs to create (one conversation each, so none is coalesced away).
    #[arg(long, default_value_t = 2000)]
    jobs: usize,
    /// Workers claiming concurrently.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// `postgres://…` (a database to fill); SQLite in a temporary directory when absent.
    #[arg(long)]
    database_url: Option<String>,
    /// `amqp://…`: run the jobs through RabbitMQ (relay and consumer) instead of the database
    /// queue; `--workers` is then ignored (one consumer, prefetch 16).
    #[arg(long)]
    amqp_url: Option<String>,
}

#[derive(Serialize)]
pub struct NotifyJobsResult {
    scenario: &'static str,
    backend: &'static str,
    queue: &'static str,
    jobs: usize,
    workers: usize,
    seconds: f64,
    jobs_per_s: f64,
    emails_written: usize,
}

pub async fn run(args: NotifyJobsArgs) -> anyhow::Result<NotifyJobsResult> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::with_data_dir(dir.path());
    config.worker = false;
    let backend = match &args.database_url {
        Some(url) => {
            config.database_url = Some(DatabaseUrl::Postgres(url.clone()));
            "postgres"
        }
        None => "sqlite",
    };
    let (_trigger, stopping) = shutdown::channel();
    let ctx = startup::build_context(config, stopping).await?;
    let store = &ctx.store;

    // Daytime for everyone, so quiet hours defer nothing.
    let timezone = "Etc/GMT".to_owned();
    let company = store
        .create_company(&NewCompany {
            name: "Bench Co".into(),
            email: "bench@example.com".into(),
            city: None,
            timezone: timezone.clone(),
            accepts_messages: true,
        })
        .await?;
    store
        .create_operator(
            company.id,
            &NewOperator {
                name: "Bench operator".into(),
                email: format!("op-{}@bench.example", std::process::id()),
                password_hash: "not-used".into(),
                branch_ids: vec![],
            },
        )
        .await?;
    for i in 0..args.jobs {
        let customer = store
            .create_customer(&NewCustomer {
                name: format!("Customer {i}"),
                city: None,
                timezone: None,
                email: None,
            })
            .await?;
        // The customer's first message: one job for the company (nobody online, no device:
        // an e-mail).
        store
            .open_conversation(&OpenConversation {
                customer_id: customer.id,
                company_id: company.id,
                branch_id: None,
                text: format!("Question {i}"),
                client_msg_id: None,
            })
            .await?;
    }
    // No worker ran while seeding: the timed part drains the whole queue.
    let worker = startup::notification_worker(&ctx)?;
    let started = Instant::now();
    if let Some(url) = &args.amqp_url {
        let (trigger, stopping) = shutdown::channel();
        let prefix = format!("loadtest-{}", std::process::id());
        let consumer = tokio::spawn(switchboard::notify::amqp::run(
            url.clone(),
            prefix,
            worker.clone(),
            stopping,
        ));
        let outbox = dir.path().join("outbox-mail");
        loop {
            let written = std::fs::read_dir(&outbox).map(|d| d.count()).unwrap_or(0);
            if written >= args.jobs {
                break;
            }
            anyhow::ensure!(
                started.elapsed().as_secs() < 300,
                "only {written} of {} jobs done after 5 minutes",
                args.jobs
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        trigger.trigger();
        let _ = consumer.await;
        return Ok(NotifyJobsResult {
            scenario: "notify-jobs",
            backend,
            queue: "rabbitmq",
            jobs: args.jobs,
            workers: 1,
            seconds,
            jobs_per_s: (args.jobs as f64 / seconds).round(),
            emails_written: args.jobs,
        });
    }
    let mut tasks = Vec::new();
    for _ in 0..args.workers.max(1) {
        let worker = worker.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0usize;
            while worker.run_once().await? == ExecutionOutcome::TaskCompleted {
                done += 1;
            }
            anyhow::Ok(done)
        }));
    }
    let mut done = 0;
    for task in tasks {
        done += task.await??;
    }
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(done == args.jobs, "ran {done} jobs, expected {}", args.jobs);
    let emails_written = std::fs::read_dir(dir.path().join("outbox-mail"))
        .context("outbox")?
        .count();
    Ok(NotifyJobsResult {
        scenario: "notify-jobs",
        backend,
        queue: "database",
        jobs: args.jobs,
        workers: args.workers,
        seconds,
        jobs_per_s: (args.jobs as f64 / seconds).round(),
        emails_written,
    })
}
