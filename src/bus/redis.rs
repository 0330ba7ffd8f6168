//! Redis pub/sub adapter: one channel per inbox that has local subscribers.
//!
//! Publishing goes through a `ConnectionManager` (it reconnects by itself); a failed publish is
//! retried in the background, since subscribers on other nodes may be parked on that inbox.
//! Subscriptions live on one dedicated pub/sub connection owned by a task: it keeps the set of
//! channels, and after any disconnect it reconnects with backoff, subscribes to the whole set
//! again and sends `Incoming::Resync`, so every waiter re-reads the store from its cursor.

use std::{collections::HashSet, time::Duration};

use futures::StreamExt;
use redis::{aio::ConnectionManager, AsyncCommands};
use tokio::sync::{mpsc, oneshot};

use super::{Incoming, Wake};
use crate::domain::InboxKey;

/// A publish slower than this counts as failed and is retried in the background, so a Redis
/// outage never holds up the request that wrote the message.
const PUBLISH_TIMEOUT: Duration = Duration::from_millis(500);

/// Failed publishes kept for retry; past this the oldest are dropped (subscribers still catch
/// up from the store on their next read or resync).
const RETRY_QUEUE: usize = 10_000;

enum Command {
    Subscribe(InboxKey, oneshot::Sender<()>),
    Unsubscribe(InboxKey),
}

#[derive(Clone)]
pub struct RedisBus {
    publisher: ConnectionManager,
    commands: mpsc::UnboundedSender<Command>,
    retries: mpsc::Sender<(String, Vec<u8>)>,
    prefix: String,
}

impl RedisBus {
    pub async fn connect(
        url: &str,
        prefix: &str,
    ) -> anyhow::Result<(RedisBus, mpsc::UnboundedReceiver<Incoming>)> {
        let client = redis::Client::open(url)?;
        let publisher = tokio::time::timeout(
            Duration::from_secs(5),
            ConnectionManager::new(client.clone()),
        )
        .await
        .map_err(|_| anyhow::anyhow!("timed out connecting to Redis"))??;
        let (incoming, received) = mpsc::unbounded_channel();
        let (commands, command_receiver) = mpsc::unbounded_channel();
        let (retries, retry_receiver) = mpsc::channel(RETRY_QUEUE);
        let prefix = format!("{prefix}:inbox:");
        tokio::spawn(subscriber_task(
            client,
            prefix.clone(),
            command_receiver,
            incoming,
        ));
        tokio::spawn(retry_task(publisher.clone(), retry_receiver));
        Ok((
            RedisBus {
                publisher,
                commands,
                retries,
                prefix,
            },
            received,
        ))
    }

    fn channel(&self, inbox: &InboxKey) -> String {
        format!("{}{}", self.prefix, inbox.as_str())
    }

    pub async fn publish(&self, inbox: &InboxKey, wake: &Wake) {
        let channel = self.channel(inbox);
        let payload = match serde_json::to_vec(wake) {
            Ok(payload) => payload,
            Err(error) => {
                tracing::error!(%error, "cannot encode a wake-up");
                return;
            }
        };
        let mut connection = self.publisher.clone();
        let published = tokio::time::timeout(
            PUBLISH_TIMEOUT,
            connection.publish::<_, _, i64>(&channel, &payload),
        )
        .await;
        if !matches!(published, Ok(Ok(_))) {
            metrics::counter!("bus_publish_failures_total").increment(1);
            tracing::warn!("publishing to Redis failed; will retry");
            if self.retries.try_send((channel, payload)).is_err() {
                metrics::counter!("bus_publish_dropped_total").increment(1);
            }
        }
    }

    pub fn subscribe(&self, inbox: &InboxKey, ack: oneshot::Sender<()>) {
        let _ = self.commands.send(Command::Subscribe(inbox.clone(), ack));
    }

    pub fn unsubscribe(&self, inbox: &InboxKey) {
        let _ = self.commands.send(Command::Unsubscribe(inbox.clone()));
    }
}

/// Re-send publishes that failed, in order, until Redis takes them.
async fn retry_task(
    mut publisher: ConnectionManager,
    mut queue: mpsc::Receiver<(String, Vec<u8>)>,
) {
    while let Some((channel, payload)) = queue.recv().await {
        let mut backoff = Duration::from_millis(100);
        loop {
            let sent: redis::RedisResult<i64> = publisher.publish(&channel, &payload).await;
            if sent.is_ok() {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

/// Own the pub/sub connection: apply subscribe/unsubscribe commands, turn messages into
/// `Incoming`, and reconnect (then resubscribe and resync) whenever the connection drops.
async fn subscriber_task(
    client: redis::Client,
    prefix: String,
    mut commands: mpsc::UnboundedReceiver<Command>,
    incoming: mpsc::UnboundedSender<Incoming>,
) {
    let mut channels: HashSet<String> = HashSet::new();
    let mut backoff = Duration::from_millis(50);
    let mut first = true;
    loop {
        let connection =
            tokio::time::timeout(Duration::from_secs(5), client.get_async_pubsub()).await;
        let (mut sink, mut stream) = match connection {
            Ok(Ok(pubsub)) => pubsub.split(),
            Ok(Err(_)) | Err(_) => {
                // While disconnected, keep the channel set current and release waiters: they
                // read the store now and get a resync when the bus is back.
                let deadline = tokio::time::sleep(backoff);
                tokio::pin!(deadline);
                loop {
                    tokio::select! {
                        _ = &mut deadline => break,
                        command = commands.recv() => match command {
                            None => return,
                            Some(command) => apply_offline(&mut channels, &prefix, command),
                        },
                    }
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if !channels.is_empty() {
            let all: Vec<&String> = channels.iter().collect();
            if sink.subscribe(all).await.is_err() {
                continue;
            }
        }
        backoff = Duration::from_millis(50);
        if !first {
            tracing::info!(
                channels = channels.len(),
                "Redis bus reconnected; resyncing subscribers"
            );
            metrics::counter!("bus_reconnects_total").increment(1);
        }
        first = false;
        if incoming.send(Incoming::Resync).is_err() {
            return;
        }
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    None => return,
                    Some(Command::Subscribe(inbox, ack)) => {
                        let channel = format!("{prefix}{}", inbox.as_str());
                        let ok = sink.subscribe(&channel).await.is_ok();
                        channels.insert(channel);
                        let _ = ack.send(());
                        if !ok {
                            break;
                        }
                    }
                    Some(Command::Unsubscribe(inbox)) => {
                        let channel = format!("{prefix}{}", inbox.as_str());
                        channels.remove(&channel);
                        if sink.unsubscribe(&channel).await.is_err() {
                            break;
                        }
                    }
                },
                message = stream.next() => match message {
                    None => break,
                    Some(message) => {
                        let Some(key) = message.get_channel_name().strip_prefix(prefix.as_str()) else { continue };
                        match serde_json::from_slice::<Wake>(message.get_payload_bytes()) {
                            Ok(wake) => {
                                let inbox = InboxKey::from_stored(key.to_owned());
                                if incoming.send(Incoming::Wake { inbox, wake }).is_err() {
                                    return;
                                }
                            }
                            Err(error) => tracing::warn!(%error, "ignoring a malformed bus message"),
                        }
                    }
                },
            }
        }
        tracing::warn!("Redis bus disconnected; reconnecting");
    }
}

fn apply_offline(channels: &mut HashSet<String>, prefix: &str, command: Command) {
    match command {
        Command::Subscribe(inbox, ack) => {
            channels.insert(format!("{prefix}{}", inbox.as_str()));
            let _ = ack.send(());
        }
        Command::Unsubscribe(inbox) => {
            channels.remove(&format!("{prefix}{}", inbox.as_str()));
        }
    }
}
