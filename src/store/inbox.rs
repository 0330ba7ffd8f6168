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

/// Which inboxes an append goes to.
pub(super) enum Targets<'a> {
    /// Every participant of the conversation between these parties.
    Participants(Parties),
    /// Exactly these inboxes.
    Inboxes(&'a [InboxKey]),
}

enum Bound {
    Int(i64),
    Text(String),
}

impl Targets<'_> {
    /// A SQL list of inbox keys (for `inbox_key IN (…)`) and its parameters, `$1` onwards.
    fn key_list(&self) -> (String, Vec<Bound>) {
        match self {
            Targets::Participants((customer_id, company_id, branch_id)) => (
                PARTICIPANT_KEYS.to_owned(),
                vec![
                    Bound::Int(*customer_id),
                    Bound::Int(*company_id),
                    Bound::Int(branch_id.unwrap_or(0)),
                ],
            ),
            Targets::Inboxes(keys) => (
                (1..=keys.len())
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                keys.iter()
                    .map(|k| Bound::Text(k.as_str().to_owned()))
                    .collect(),
            ),
        }
    }
}

fn bind_all<'q>(
    mut query: sqlx::query::QueryAs<'q, sqlx::Any, (String, i64), sqlx::any::AnyArguments<'q>>,
    values: &'q [Bound],
) -> sqlx::query::QueryAs<'q, sqlx::Any, (String, i64), sqlx::any::AnyArguments<'q>> {
    for value in values {
        query = match value {
            Bound::Int(v) => query.bind(*v),
            Bound::Text(v) => query.bind(v.as_str()),
        };
    }
    query
}

/// Append one event of `event_type` with `data` to each target inbox, inside `w`. Returns
/// each inbox with its new event.
pub(super) async fn append(
    w: &mut WriteTx,
    targets: Targets<'_>,
    event_type: &str,
    data: &serde_json::Value,
    now: i64,
) -> StoreResult<Vec<(InboxKey, StoredEvent)>> {
    let (keys, values) = targets.key_list();
    if w.backend == Backend::Postgres {
        let lock = format!("SELECT inbox_key, last_seq FROM inboxes WHERE inbox_key IN ({keys}) ORDER BY inbox_key FOR UPDATE");
        bind_all(sqlx::query_as(&lock), &values)
            .fetch_all(&mut *w.tx)
            .await?;
    }
    let bump = format!("UPDATE inboxes SET last_seq = last_seq + 1 WHERE inbox_key IN ({keys}) RETURNING inbox_key, last_seq");
    let mut bumped: Vec<(String, i64)> = bind_all(sqlx::query_as(&bump), &values)
        .fetch_all(&mut *w.tx)
        .await?;
    if bumped.is_empty() {
        return Err(StoreError::Other(anyhow::anyhow!("no inbox to append to")));
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
