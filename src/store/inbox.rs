//! Inboxes: one append-only, gap-free event stream per principal.
//!
//! `seq` is taken by bumping `inboxes.last_seq` inside the writer's transaction: the row lock
//! (PostgreSQL) or the single writer (SQLite) orders concurrent appends, and a rolled-back
//! transaction gives its number back, so committed events are always 1, 2, 3, … without gaps.
//! On PostgreSQL the inbox rows are locked in key order first, so two transactions appending
//! to overlapping sets of inboxes (two chats of one company) queue instead of deadlocking.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sqlx::FromRow;

use super::{Backend, Store, StoreError, StoreResult, WriteTx};
use crate::domain::InboxKey;

/// One committed event of an inbox.
#[derive(Clone, Debug, Serialize, Deserialize)]
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

/// Who a conversation is between: customer id, company id, branch id.
pub type Parties = (i64, i64, Option<i64>);

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

/// The inbox keys of everyone who hears about a conversation between `$1` (customer id), `$2`
/// (company id) and `$3` (branch id, or 0): the customer, and every operator of the company
/// whose branches (none = all) include the conversation's.
const PARTICIPANT_KEYS: &str = "
    SELECT 'customer:' || $1
    UNION ALL
    SELECT 'operator:' || o.id FROM operators o
    WHERE o.company_id = $2
      AND (NOT EXISTS (SELECT 1 FROM operator_branches ob WHERE ob.operator_id = o.id)
           OR EXISTS (SELECT 1 FROM operator_branches ob
                      WHERE ob.operator_id = o.id AND ob.branch_id = $3))";

/// Append one event of `event_type` with `data` to the inbox of every participant of the
/// conversation between `parties`, inside `w`. Returns each inbox with its new event.
pub(super) async fn append_to_participants(
    w: &mut WriteTx,
    (customer_id, company_id, branch_id): Parties,
    event_type: &str,
    data: &serde_json::Value,
    now: i64,
) -> StoreResult<Vec<(InboxKey, StoredEvent)>> {
    if w.backend == Backend::Postgres {
        sqlx::query(&format!(
            "SELECT inbox_key FROM inboxes WHERE inbox_key IN ({PARTICIPANT_KEYS})
             ORDER BY inbox_key FOR UPDATE"
        ))
        .bind(customer_id)
        .bind(company_id)
        .bind(branch_id.unwrap_or(0))
        .execute(&mut *w.tx)
        .await?;
    }
    let mut bumped: Vec<(String, i64)> = sqlx::query_as(&format!(
        "UPDATE inboxes SET last_seq = last_seq + 1 WHERE inbox_key IN ({PARTICIPANT_KEYS})
         RETURNING inbox_key, last_seq"
    ))
    .bind(customer_id)
    .bind(company_id)
    .bind(branch_id.unwrap_or(0))
    .fetch_all(&mut *w.tx)
    .await?;
    if bumped.is_empty() {
        return Err(StoreError::Other(anyhow::anyhow!(
            "conversation has no inboxes"
        )));
    }
    bumped.sort();

    let json = data.to_string();
    // One statement for all inboxes: $1..$3 are shared, then a key and seq per row.
    let rows: Vec<String> = (0..bumped.len())
        .map(|i| format!("($1, $2, $3, ${}, ${})", 4 + 2 * i, 5 + 2 * i))
        .collect();
    let insert = format!(
        "INSERT INTO inbox_events (event_type, data, created_at, inbox_key, seq) VALUES {}",
        rows.join(", ")
    );
    let mut query = sqlx::query(&insert).bind(event_type).bind(&json).bind(now);
    for (key, seq) in &bumped {
        query = query.bind(key).bind(seq);
    }
    query.execute(&mut *w.tx).await?;

    bumped
        .into_iter()
        .map(|(key, seq)| {
            let event = StoredEvent {
                seq,
                event_type: event_type.to_owned(),
                data: RawValue::from_string(json.clone())
                    .map_err(|e| StoreError::Other(e.into()))?,
                created_at: now,
            };
            Ok((InboxKey::from_stored(key), event))
        })
        .collect()
}

impl Store {
    /// The inboxes that hear about a conversation between `parties`.
    pub async fn participant_inboxes(
        &self,
        (customer_id, company_id, branch_id): Parties,
    ) -> StoreResult<Vec<InboxKey>> {
        let keys: Vec<String> = sqlx::query_scalar(PARTICIPANT_KEYS)
            .bind(customer_id)
            .bind(company_id)
            .bind(branch_id.unwrap_or(0))
            .fetch_all(&self.pool)
            .await?;
        Ok(keys.into_iter().map(InboxKey::from_stored).collect())
    }

    /// Forget events older than `cutoff` (ms since the epoch), moving each inbox's retention
    /// horizon; cursors below it then get `cursor_expired`. Returns the events removed.
    pub async fn trim_events(&self, cutoff: i64) -> StoreResult<u64> {
        let mut w = self.begin_write().await?;
        sqlx::query(
            "UPDATE inboxes SET retained_after = (
                 SELECT MAX(e.seq) FROM inbox_events e
                 WHERE e.inbox_key = inboxes.inbox_key AND e.created_at < $1)
             WHERE EXISTS (SELECT 1 FROM inbox_events e
                           WHERE e.inbox_key = inboxes.inbox_key AND e.created_at < $1)",
        )
        .bind(cutoff)
        .execute(&mut *w.tx)
        .await?;
        let removed = sqlx::query(
            "DELETE FROM inbox_events WHERE seq <= (
                 SELECT i.retained_after FROM inboxes i WHERE i.inbox_key = inbox_events.inbox_key)",
        )
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(removed)
    }

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
