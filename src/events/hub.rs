//! The node-local hub: for every inbox with subscribers on this node, one broadcast channel
//! that wakes all of them at once. Thousands of waiters on one inbox cost one bus message and
//! one broadcast per event, never one store query each (a waiter reads the store only when the
//! wake-up does not continue its cursor).
//!
//! Entries are created by the first subscriber of an inbox and removed with the last; only on
//! those transitions does the node subscribe to or leave the bus channel. The maps are sharded
//! by inbox behind std mutexes: nothing awaits under them and each critical section is a map
//! operation.

use std::{
    collections::{hash_map::Entry, HashMap},
    hash::{BuildHasher, RandomState},
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use tokio::sync::{broadcast, mpsc, watch};

use super::feed::SharedEvent;
use crate::{
    bus::{Bus, EphemeralEvent, Incoming, Wake},
    domain::InboxKey,
    store::StoredEvent,
};

/// What the hub hands every local subscriber of an inbox: the bus's wake-up, with stored
/// events wrapped once per node so their encodings are shared by all subscribers.
#[derive(Clone, Debug)]
pub enum Signal {
    Events(Arc<[Arc<SharedEvent>]>),
    Ephemeral(Arc<EphemeralEvent>),
    Resync,
}

impl From<Wake> for Signal {
    fn from(wake: Wake) -> Self {
        match wake {
            Wake::Events(events) => Signal::Events(
                events
                    .into_iter()
                    .map(|e| Arc::new(SharedEvent::new(e)))
                    .collect(),
            ),
            Wake::Ephemeral(event) => Signal::Ephemeral(event),
            Wake::Resync => Signal::Resync,
        }
    }
}

const SHARDS: usize = 32;
/// Wake-ups buffered per inbox; a subscriber that falls further behind is told to re-read
/// the store instead of slowing the others down.
const CHANNEL_CAPACITY: usize = 64;
/// How long a first subscriber waits for the bus to confirm its subscription. Past it the
/// subscriber goes on; the bus sends a resync when it recovers.
const SUBSCRIBE_CONFIRM_TIMEOUT: Duration = Duration::from_secs(2);

struct Slot {
    sender: broadcast::Sender<Signal>,
    /// Live `Subscription`s of this inbox on this node.
    subscribers: usize,
    /// Becomes true once the bus confirmed the channel subscription.
    ready: watch::Receiver<bool>,
}

struct Shared {
    shards: Vec<Mutex<HashMap<InboxKey, Slot>>>,
    hasher: RandomState,
    bus: Bus,
}

/// A cheap-clone handle to the hub.
#[derive(Clone)]
pub struct Hub {
    shared: Arc<Shared>,
}

/// One registered waiter of an inbox. Dropping it unregisters.
pub struct Subscription {
    inbox: InboxKey,
    receiver: broadcast::Receiver<Signal>,
    hub: Hub,
}

impl Hub {
    /// A hub fed by `incoming` from `bus`.
    pub fn new(bus: Bus, incoming: mpsc::UnboundedReceiver<Incoming>) -> Hub {
        let shared = Arc::new(Shared {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            bus,
        });
        tokio::spawn(dispatch(Arc::downgrade(&shared), incoming));
        Hub { shared }
    }

    fn shard(&self, inbox: &InboxKey) -> &Mutex<HashMap<InboxKey, Slot>> {
        let index = self.shared.hasher.hash_one(inbox) as usize % SHARDS;
        &self.shared.shards[index]
    }

    /// Register a waiter for `inbox`. Returns once the bus delivers for it, so a store read
    /// made after this cannot miss an event published in between.
    pub async fn subscribe(&self, inbox: &InboxKey) -> Subscription {
        let (receiver, mut ready) = {
            let mut shard = self.shard(inbox).lock().expect("hub shard poisoned");
            match shard.entry(inbox.clone()) {
                Entry::Occupied(mut slot) => {
                    let slot = slot.get_mut();
                    slot.subscribers += 1;
                    (slot.sender.subscribe(), slot.ready.clone())
                }
                Entry::Vacant(vacant) => {
                    let (sender, receiver) = broadcast::channel(CHANNEL_CAPACITY);
                    let (set_ready, ready) = watch::channel(false);
                    let acked = self.shared.bus.subscribe(inbox);
                    tokio::spawn(async move {
                        let _ = acked.await;
                        let _ = set_ready.send(true);
                    });
                    vacant.insert(Slot {
                        sender,
                        subscribers: 1,
                        ready: ready.clone(),
                    });
                    (receiver, ready)
                }
            }
        };
        let subscription = Subscription {
            inbox: inbox.clone(),
            receiver,
            hub: self.clone(),
        };
        let _ =
            tokio::time::timeout(SUBSCRIBE_CONFIRM_TIMEOUT, ready.wait_for(|ready| *ready)).await;
        subscription
    }

    fn release(&self, inbox: &InboxKey) {
        let mut shard = self.shard(inbox).lock().expect("hub shard poisoned");
        if let Some(slot) = shard.get_mut(inbox) {
            slot.subscribers -= 1;
            if slot.subscribers == 0 {
                shard.remove(inbox);
                drop(shard);
                self.shared.bus.unsubscribe(inbox);
            }
        }
    }

    /// Publish the committed events of one write, grouped by inbox, to every node.
    pub async fn publish_events(&self, events: Vec<(InboxKey, StoredEvent)>) {
        let mut by_inbox: HashMap<InboxKey, Vec<StoredEvent>> = HashMap::new();
        for (inbox, event) in events {
            by_inbox.entry(inbox).or_default().push(event);
        }
        for (inbox, mut events) in by_inbox {
            events.sort_by_key(|e| e.seq);
            self.shared.bus.publish(&inbox, Wake::Events(events)).await;
        }
    }

    /// Publish an ephemeral event (not stored) to these inboxes.
    pub async fn publish_ephemeral(&self, inboxes: &[InboxKey], event: EphemeralEvent) {
        let event = Arc::new(event);
        for inbox in inboxes {
            self.shared
                .bus
                .publish(inbox, Wake::Ephemeral(event.clone()))
                .await;
        }
    }

    /// Local subscribers of `inbox` right now (for tests and metrics).
    pub fn subscribers(&self, inbox: &InboxKey) -> usize {
        let shard = self.shard(inbox).lock().expect("hub shard poisoned");
        shard.get(inbox).map_or(0, |slot| slot.subscribers)
    }
}

/// Move bus deliveries into the local broadcast channels.
async fn dispatch(shared: Weak<Shared>, mut incoming: mpsc::UnboundedReceiver<Incoming>) {
    while let Some(message) = incoming.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let hub = Hub { shared };
        match message {
            Incoming::Wake { inbox, wake } => {
                let shard = hub.shard(&inbox).lock().expect("hub shard poisoned");
                if let Some(slot) = shard.get(&inbox) {
                    let _ = slot.sender.send(Signal::from(wake));
                }
            }
            Incoming::Resync => {
                for shard in &hub.shared.shards {
                    let shard = shard.lock().expect("hub shard poisoned");
                    for slot in shard.values() {
                        let _ = slot.sender.send(Signal::Resync);
                    }
                }
            }
        }
    }
}

impl Subscription {
    /// The next wake-up. A subscriber that fell behind the channel gets `Resync`.
    pub async fn recv(&mut self) -> Signal {
        match self.receiver.recv().await {
            Ok(signal) => signal,
            Err(broadcast::error::RecvError::Lagged(_)) => Signal::Resync,
            // The slot is only removed with its last subscription, which is this one.
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }

    pub fn inbox(&self) -> &InboxKey {
        &self.inbox
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.release(&self.inbox);
    }
}
