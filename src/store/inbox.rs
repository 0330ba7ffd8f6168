//! Inboxes: one append-only, gap-free event stream per principal.
//!
//! `seq` is taken by bumping `inboxes.last_seq` inside the writer's transaction: the row lock
//! (PostgreSQL) or the single writer (SQLite) orders concurrent appends, and a rolled-back
//! transaction gives its number back, so committed events are always 1, 2, 3, … without gaps.
//! Inboxes are bumped in key order so two transactions touching the same inboxes cannot
//! deadlock.

use serde::Serialize;
use serde_json::value::RawValue;
use sqlx::{Any, FromRow, Transaction};

use super::{Store, StoreError, StoreResult};
use crate::domain::InboxKey;

/// One committed event of an inbox.
#[derive(Clone, Debug, Serialize)]
pub struct StoredEvent {
    pub seq: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The event's JSON, kept as written so it is never re-encoded on the way out.
    pub data: Box<RawValue>,
    pub created_at: i64,
}

/// The newest and oldest-available positions of an inbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromRow)]
pub struct InboxHead {
    pub last_seq: i64,
    /// Events up to and including this seq were trimmed.
    pub retained_after: i64,
}

#[derive(FromRow)]
struct EventRow {
    seq: i64,
    event_type: String,
    data: String,
    created_at: i64,
}

impl TryFrom<EventRow> for StoredEvent {
    type Error = StoreError;

    fn try_from(row: EventRow) -> Result<Self, Self::Error> {
        Ok(StoredEvent {
            seq: row.seq,
            event_type: row.event_type,
            data: RawValue::from_string(row.data)
                .map_err(|e| StoreError::Other(anyhow::anyhow!("stored event is not JSON: {e}")))?,
            created_at: row.created_at,
        })
    }
}

/// Append one event of `event_type` with `data` to each inbox in `inboxes`, inside `tx`.
/// Returns each inbox with the event as stored there.
pub(super) async fn append(
    tx: &mut Transaction<'static, Any>,
    inboxes: &[InboxKey],
    event_type: &str,
    data: &serde_json::Value,
    now: i64,
) -> StoreResult<Vec<(InboxKey, StoredEvent)>> {
    let mut sorted: Vec<&InboxKey> = inboxes.iter().collect();
    sorted.sort();
    sorted.dedup();
    let json = data.to_string();
    let mut appended = Vec::with_capacity(sorted.len());
    for inbox in sorted {
        let seq: i64 = sqlx::query_scalar(
            "UPDATE inboxes SET last_seq = last_seq + 1 WHERE inbox_key = $1 RETURNING last_seq",
        )
        .bind(inbox.as_str())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| {
            StoreError::Other(anyhow::anyhow!("inbox {} does not exist", inbox.as_str()))
        })?;
        sqlx::query(
            "INSERT INTO inbox_events (inbox_key, seq, event_type, data, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(inbox.as_str())
        .bind(seq)
        .bind(event_type)
        .bind(&json)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        let event = StoredEvent {
            seq,
            event_type: event_type.to_owned(),
            data: RawValue::from_string(json.clone()).map_err(|e| StoreError::Other(e.into()))?,
            created_at: now,
        };
        appended.push((inbox.clone(), event));
    }
    Ok(appended)
}

impl Store {
    pub async fn inbox_head(&self, inbox: &InboxKey) -> StoreResult<InboxHead> {
        sqlx::query_as::<_, InboxHead>(
            "SELECT last_seq, retained_after FROM inboxes WHERE inbox_key = $1",
        )
        .bind(inbox.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)
    }

    /// Up to `limit` events of `inbox` with `seq > after`, oldest first.
    pub async fn events_after(
        &self,
        inbox: &InboxKey,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<StoredEvent>> {
        let rows = sqlx::query_as::<_, EventRow>(
            "SELECT seq, event_type, data, created_at FROM inbox_events
             WHERE inbox_key = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(inbox.as_str())
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(StoredEvent::try_from).collect()
    }
}
