//! Reading an inbox from a cursor, waiting when there is nothing new. Every transport is a thin
//! adapter over `Reader`.
//!
//! Register, then read: the reader subscribes to the hub before its first store read, so an
//! event committed at any moment is either in that read or in a later wake-up. Wake-ups that
//! continue the cursor exactly are used as they are; any gap, a lagging channel or a bus
//! reconnect makes the reader read the store again. Result: every event exactly once, in seq
//! order, for as long as the client resends its cursor.

use std::{
    fmt::Write as _,
    sync::{Arc, OnceLock},
};

use bytes::Bytes;
use serde::Serialize;

use super::{
    cursor::{CursorError, CursorParam},
    hub::{Hub, Signal, Subscription},
};
use crate::{
    bus::EphemeralEvent,
    domain::InboxKey,
    store::{Store, StoreError, StoredEvent},
};

/// A stored event as handed to subscribers. Thousands of subscribers of one inbox on a node
/// share one of these per event, so its JSON and its SSE frame are encoded once, not once per
/// connection.
#[derive(Debug)]
pub struct SharedEvent {
    pub event: StoredEvent,
    json: OnceLock<String>,
    sse: OnceLock<Bytes>,
}

impl SharedEvent {
    pub fn new(event: StoredEvent) -> Self {
        SharedEvent {
            event,
            json: OnceLock::new(),
            sse: OnceLock::new(),
        }
    }

    /// `{"seq","type","data","created_at"}`, encoded on first use.
    pub fn json(&self) -> &str {
        self.json.get_or_init(|| {
            serde_json::to_string(&self.event).unwrap_or_else(|_| "null".to_owned())
        })
    }

    /// The complete SSE frame (`id:`, `event:`, `data:`), encoded on first use.
    pub fn sse_frame(&self) -> &Bytes {
        self.sse.get_or_init(|| {
            let mut frame = String::with_capacity(self.json().len() + 64);
            let _ = write!(
                frame,
                "id: {}\nevent: {}\ndata: {}\n\n",
                self.event.seq,
                self.event.event_type,
                self.json()
            );
            Bytes::from(frame)
        })
    }
}

impl Serialize for SharedEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.event.serialize(serializer)
    }
}

/// One item a client receives: a stored event (with seq) or an ephemeral one (without).
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum FeedItem {
    Stored(Arc<SharedEvent>),
    Ephemeral(Arc<EphemeralEvent>),
}

impl FeedItem {
    pub fn seq(&self) -> Option<i64> {
        match self {
            FeedItem::Stored(shared) => Some(shared.event.seq),
            FeedItem::Ephemeral(_) => None,
        }
    }

    pub fn event_type(&self) -> &str {
        match self {
            FeedItem::Stored(shared) => &shared.event.event_type,
            FeedItem::Ephemeral(event) => &event.event_type,
        }
    }

    /// The item's JSON (shared for stored events).
    pub fn json(&self) -> String {
        match self {
            FeedItem::Stored(shared) => shared.json().to_owned(),
            FeedItem::Ephemeral(event) => {
                serde_json::to_string(event).unwrap_or_else(|_| "null".to_owned())
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("bad cursor")]
    Cursor(CursorError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A subscriber of one inbox at a cursor.
pub struct Reader {
    store: Store,
    subscription: Subscription,
    cursor: i64,
    /// A wake-up said the store has something we have not read. Kept across cancellation, so
    /// `next` can be raced against timers without losing a wake-up.
    must_read: bool,
}

impl Reader {
    /// Subscribe to `inbox` and resolve the client's cursor.
    pub async fn open(
        store: &Store,
        hub: &Hub,
        inbox: &InboxKey,
        cursor: CursorParam,
    ) -> Result<Reader, FeedError> {
        let subscription = hub.subscribe(inbox).await;
        let head = store.inbox_head(inbox).await?;
        let cursor = cursor.resolve(head).map_err(FeedError::Cursor)?;
        Ok(Reader {
            store: store.clone(),
            subscription,
            cursor,
            must_read: true,
        })
    }

    /// The last seq handed out.
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// What the store already holds after the cursor (at most `limit`), without waiting.
    pub async fn available(&mut self, limit: usize) -> Result<Vec<FeedItem>, StoreError> {
        if !self.must_read {
            return Ok(Vec::new());
        }
        let events = self
            .store
            .events_after(self.subscription.inbox(), self.cursor, limit as i64)
            .await?;
        // A full page may have more behind it.
        self.must_read = events.len() == limit;
        if let Some(last) = events.last() {
            self.cursor = last.seq;
        }
        Ok(events
            .into_iter()
            .map(|e| FeedItem::Stored(Arc::new(SharedEvent::new(e))))
            .collect())
    }

    /// The next items, at most `limit` stored events; waits until there is at least one.
    /// Cancel-safe: dropping the future loses nothing.
    pub async fn next(&mut self, limit: usize) -> Result<Vec<FeedItem>, StoreError> {
        loop {
            let stored = self.available(limit).await?;
            if !stored.is_empty() {
                return Ok(stored);
            }
            match self.subscription.recv().await {
                Signal::Events(events) => {
                    let fresh: Vec<&Arc<SharedEvent>> = events
                        .iter()
                        .filter(|e| e.event.seq > self.cursor)
                        .collect();
                    let contiguous = fresh
                        .iter()
                        .enumerate()
                        .all(|(i, e)| e.event.seq == self.cursor + 1 + i as i64);
                    if fresh.is_empty() {
                        continue;
                    }
                    if !contiguous || fresh.len() > limit {
                        self.must_read = true;
                        continue;
                    }
                    self.cursor = fresh.last().map_or(self.cursor, |e| e.event.seq);
                    // Commit to hand-over, for live events (backlog reads would only measure
                    // how long the client was away).
                    let now = crate::store::now_millis();
                    for shared in &fresh {
                        let millis = (now - shared.event.created_at).max(0);
                        metrics::histogram!("event_delivery_seconds")
                            .record(millis as f64 / 1000.0);
                    }
                    return Ok(fresh.into_iter().cloned().map(FeedItem::Stored).collect());
                }
                Signal::Ephemeral(event) => return Ok(vec![FeedItem::Ephemeral(event)]),
                Signal::Resync => self.must_read = true,
            }
        }
    }
}
