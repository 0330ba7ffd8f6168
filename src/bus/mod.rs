//! The bus carries wake-ups between nodes: after a commit, the writer publishes the new events
//! of each affected inbox; every node with subscribers of that inbox hears them.
//!
//! Two adapters behind one enum: in-process (embedded mode: one node, so publishing is local
//! delivery) and Redis pub/sub (a cluster). The bus is never the source of truth: anything it
//! loses is found again in the store, because every subscriber re-reads the store on a gap or
//! after `Incoming::Resync`.

mod redis;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::{domain::InboxKey, store::StoredEvent};

pub use self::redis::RedisBus;

/// What a node learns about one inbox.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wake {
    /// Newly committed events of the inbox, oldest first.
    Events(Vec<StoredEvent>),
    /// An event that is not stored and has no seq (typing).
    Ephemeral(Arc<EphemeralEvent>),
    /// Something may have been missed: re-read the store from your cursor.
    Resync,
}

/// A fire-and-forget event, such as "operator is typing".
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EphemeralEvent {
    #[serde(rename = "type")]
    pub event_type: String,
    pub data: serde_json::Value,
}

/// What the bus hands to the local hub.
#[derive(Debug)]
pub enum Incoming {
    Wake {
        inbox: InboxKey,
        wake: Wake,
    },
    /// The bus reconnected: every waiter must re-read the store.
    Resync,
}

/// One of the two bus adapters.
#[derive(Clone)]
pub enum Bus {
    Memory(mpsc::UnboundedSender<Incoming>),
    Redis(RedisBus),
}

impl Bus {
    /// The in-process bus, and the receiving end for the hub.
    pub fn memory() -> (Bus, mpsc::UnboundedReceiver<Incoming>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Bus::Memory(sender), receiver)
    }

    /// The Redis bus; channels are named `<prefix>:inbox:<inbox key>`.
    pub async fn redis(
        url: &str,
        prefix: &str,
    ) -> anyhow::Result<(Bus, mpsc::UnboundedReceiver<Incoming>)> {
        let (bus, receiver) = RedisBus::connect(url, prefix).await?;
        Ok((Bus::Redis(bus), receiver))
    }

    /// Tell every node with subscribers of `inbox`.
    pub async fn publish(&self, inbox: &InboxKey, wake: Wake) {
        match self {
            Bus::Memory(sender) => {
                let _ = sender.send(Incoming::Wake {
                    inbox: inbox.clone(),
                    wake,
                });
            }
            Bus::Redis(redis) => redis.publish(inbox, &wake).await,
        }
    }

    /// Start hearing `inbox`; the answer arrives once the subscription is active, so a
    /// subscriber that reads the store afterwards cannot miss an event in between.
    pub fn subscribe(&self, inbox: &InboxKey) -> oneshot::Receiver<()> {
        let (ack, acked) = oneshot::channel();
        match self {
            Bus::Memory(_) => {
                let _ = ack.send(());
            }
            Bus::Redis(redis) => redis.subscribe(inbox, ack),
        }
        acked
    }

    /// Stop hearing `inbox` (its last local subscriber left).
    pub fn unsubscribe(&self, inbox: &InboxKey) {
        if let Bus::Redis(redis) = self {
            redis.unsubscribe(inbox);
        }
    }
}
