//! RabbitMQ as the job queue (`AMQP_URL`). The database table stays the transactional outbox:
//! a relay moves each committed job to RabbitMQ and deletes its row only after the broker
//! confirmed it, so a crash between the two re-sends the job (the delivery log makes that
//! harmless) and never loses it. Consumers take jobs with a bounded prefetch and ack after the
//! work is done. Jobs due later (quiet hours, a company's escalation window) wait in a delay
//! queue with a per-message TTL whose dead-letter exchange is the work exchange: no plugin.
//!
//! Everything reconnects with backoff; the topology is declared again on every connection.

use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use lapin::{
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable, LongString, ShortString},
    BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind,
};

use super::worker::Worker;
use crate::{
    shutdown::Shutdown,
    store::{now_millis, JobRow},
};

/// Jobs a consumer holds unacknowledged at most.
const PREFETCH: u16 = 16;
/// Pause when the outbox is empty (a commit also wakes the relay at once).
const RELAY_IDLE: Duration = Duration::from_millis(500);
/// How long a job being relayed is held. Short: a connection lost mid-publish leaves the row
/// behind, and relaying a job twice is harmless (the delivery log makes steps happen once).
const RELAY_LEASE_MS: i64 = 3_000;
/// Attempts before a failing job is given up (logged and counted).
const MAX_ATTEMPTS: i64 = 5;

/// Names of the exchange and queues, under a prefix.
#[derive(Clone)]
struct Topology {
    exchange: String,
    work: String,
    delay: String,
}

impl Topology {
    fn new(prefix: &str) -> Self {
        Topology {
            exchange: format!("{prefix}.jobs"),
            work: format!("{prefix}.jobs.work"),
            delay: format!("{prefix}.jobs.delay"),
        }
    }

    async fn declare(&self, channel: &Channel) -> lapin::Result<()> {
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .exchange_declare(
                ShortString::from(self.exchange.as_str()),
                ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_declare(
                ShortString::from(self.work.as_str()),
                durable,
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_bind(
                ShortString::from(self.work.as_str()),
                ShortString::from(self.exchange.as_str()),
                ShortString::from("job"),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        // Expired messages of the delay queue go to the work exchange.
        let mut arguments = FieldTable::default();
        arguments.insert(
            ShortString::from("x-dead-letter-exchange"),
            AMQPValue::LongString(LongString::from(self.exchange.as_str())),
        );
        arguments.insert(
            ShortString::from("x-dead-letter-routing-key"),
            AMQPValue::LongString(LongString::from("job")),
        );
        channel
            .queue_declare(ShortString::from(self.delay.as_str()), durable, arguments)
            .await?;
        Ok(())
    }
}

/// Run the relay and a consumer against RabbitMQ until shutdown, reconnecting as needed.
pub async fn run(url: String, prefix: String, worker: Worker, mut shutdown: Shutdown) {
    let topology = Topology::new(&prefix);
    let mut backoff = Duration::from_millis(100);
    loop {
        let session = tokio::select! {
            session = session(&url, &topology, &worker, shutdown.clone()) => session,
            _ = shutdown.recv() => return,
        };
        match session {
            Ok(()) => return,
            Err(error) => {
                metrics::counter!("amqp_reconnects_total").increment(1);
                tracing::warn!(
                    error = format!("{error:#}"),
                    "RabbitMQ session ended; reconnecting"
                );
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.recv() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One connection's life: declare, then relay and consume until something breaks.
async fn session(
    url: &str,
    topology: &Topology,
    worker: &Worker,
    mut shutdown: Shutdown,
) -> anyhow::Result<()> {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .context("connecting to RabbitMQ")?;
    let publishing = connection.create_channel().await?;
    publishing
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    topology.declare(&publishing).await?;
    let consuming = connection.create_channel().await?;
    consuming
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await?;
    let mut deliveries = consuming
        .basic_consume(
            ShortString::from(topology.work.as_str()),
            ShortString::from(""),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!("RabbitMQ queue ready");

    // The relay runs as a task of its own: it must keep moving (and never be paused holding
    // the SQLite writer lock) while this loop works on a delivery.
    let relay = tokio::spawn({
        let (topology, worker) = (topology.clone(), worker.clone());
        async move { relay(&publishing, &topology, &worker).await }
    });
    let _abort_relay = AbortOnDrop(relay.abort_handle());
    let mut relay = relay;
    loop {
        tokio::select! {
            delivery = deliveries.next() => {
                let delivery = delivery.context("the consumer was cancelled")??;
                let job: JobRow = match serde_json::from_slice::<JobMessage>(&delivery.data) {
                    Ok(message) => message.into(),
                    Err(error) => {
                        tracing::error!(%error, "dropping a malformed job message");
                        delivery.ack(BasicAckOptions::default()).await?;
                        continue;
                    }
                };
                tracing::debug!(job = job.id, stage = %job.stage, "consuming a job");
                let follow_up = match worker.handle(&job).await {
                    Ok(follow_up) => follow_up,
                    Err(error) if job.attempts < MAX_ATTEMPTS => {
                        tracing::warn!(error = format!("{error:#}"), "notification job failed; retrying later");
                        let backoff = 1000 * (1 << job.attempts.clamp(0, 6));
                        Some((now_millis() + backoff, if job.stage == "escalation" { "escalation" } else { "first" }))
                    }
                    Err(error) => {
                        metrics::counter!("notification_jobs_given_up_total").increment(1);
                        tracing::error!(error = format!("{error:#}"), job = job.id, "notification job given up");
                        None
                    }
                };
                // Follow-ups go through the outbox like every job; only then is this one done.
                worker.store.finish_job(&job, follow_up).await?;
                delivery.ack(BasicAckOptions::default()).await?;
            }
            relayed = &mut relay => return relayed.context("the relay task failed")?,
            _ = shutdown.recv() => return Ok(()),
        }
    }
}

/// Move committed jobs from the outbox table to RabbitMQ, each deleted only once confirmed.
async fn relay(channel: &Channel, topology: &Topology, worker: &Worker) -> anyhow::Result<()> {
    loop {
        let Some(job) = worker
            .store
            .claim_outbox(now_millis(), RELAY_LEASE_MS)
            .await?
        else {
            tokio::select! {
                _ = tokio::time::sleep(RELAY_IDLE) => {}
                _ = worker.wake.notified() => {}
            }
            continue;
        };
        let payload = serde_json::to_vec(&JobMessage::from(&job))?;
        tracing::debug!(job = job.id, stage = %job.stage, run_at = job.run_at, "relaying a job");
        let delay = job.run_at - now_millis();
        let persistent = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(ShortString::from("application/json"));
        let (exchange, routing_key, properties) = if delay > 0 {
            // Published straight to the delay queue; it dead-letters to the work queue when
            // the TTL runs out.
            (
                String::new(),
                topology.delay.clone(),
                persistent.with_expiration(ShortString::from(delay.to_string())),
            )
        } else {
            (topology.exchange.clone(), "job".to_owned(), persistent)
        };
        let confirm = channel
            .basic_publish(
                ShortString::from(exchange),
                ShortString::from(routing_key),
                BasicPublishOptions::default(),
                &payload,
                properties,
            )
            .await?
            .await?;
        anyhow::ensure!(confirm.is_ack(), "RabbitMQ refused a job");
        worker.store.delete_job(job.id).await?;
        metrics::counter!("notification_jobs_relayed_total").increment(1);
    }
}

/// Aborts a task when dropped (the session ended, one way or another).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A job on the wire.
#[derive(serde::Serialize, serde::Deserialize)]
struct JobMessage {
    id: i64,
    conversation_id: i64,
    message_id: i64,
    recipient_kind: String,
    recipient_id: i64,
    stage: String,
    run_at: i64,
    attempts: i64,
}

impl From<&JobRow> for JobMessage {
    fn from(job: &JobRow) -> Self {
        JobMessage {
            id: job.id,
            conversation_id: job.conversation_id,
            message_id: job.message_id,
            recipient_kind: job.recipient_kind.clone(),
            recipient_id: job.recipient_id,
            stage: job.stage.clone(),
            run_at: job.run_at,
            attempts: job.attempts,
        }
    }
}

impl From<JobMessage> for JobRow {
    fn from(m: JobMessage) -> Self {
        JobRow {
            id: m.id,
            conversation_id: m.conversation_id,
            message_id: m.message_id,
            recipient_kind: m.recipient_kind,
            recipient_id: m.recipient_id,
            stage: m.stage,
            run_at: m.run_at,
            attempts: m.attempts,
        }
    }
}
