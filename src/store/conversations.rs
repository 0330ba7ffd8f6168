//! Conversations and their messages: opening a chat, posting, read receipts, history.
//!
//! Every write here is one transaction that also appends the matching events to the inbox of
//! every participant, so a committed message is always visible in every inbox and an aborted one
//! in none.

use sqlx::FromRow;

use super::{
    inbox::{self, Parties},
    now_millis, Store, StoreError, StoreResult, StoredEvent, WriteTx,
};
use crate::domain::{InboxKey, OperatorScope, Principal, Side};
use crate::events::{self, EventType};

/// A conversation with what a view of it needs: both parties' names, cities and time zones,
/// read positions and the last message.
#[derive(Clone, Debug, FromRow)]
pub struct ConversationRow {
    pub id: i64,
    pub customer_id: i64,
    pub company_id: i64,
    pub branch_id: Option<i64>,
    pub created_at: i64,
    pub last_message_id: Option<i64>,
    pub last_message_at: Option<i64>,
    pub customer_read_id: i64,
    pub company_read_id: i64,
    pub customer_unread: i64,
    pub company_unread: i64,
    pub awaiting_reply_since: Option<i64>,
    pub customer_name: String,
    pub customer_city: Option<String>,
    pub customer_timezone: Option<String>,
    pub company_name: String,
    pub company_city: Option<String>,
    pub company_timezone: String,
    pub branch_name: Option<String>,
    pub branch_city: Option<String>,
    pub branch_timezone: Option<String>,
    pub last_text: Option<String>,
    pub last_sender_kind: Option<String>,
}

const CONVERSATION_SELECT: &str = "
    SELECT c.id, c.customer_id, c.company_id, c.branch_id, c.created_at,
           lm.id AS last_message_id, c.last_message_at, c.customer_read_id, c.company_read_id,
           c.customer_unread, c.company_unread, c.awaiting_reply_since,
           cu.name AS customer_name, cu.city AS customer_city, cu.timezone AS customer_timezone,
           co.name AS company_name, co.city AS company_city, co.timezone AS company_timezone,
           b.name AS branch_name, b.city AS branch_city, b.timezone AS branch_timezone,
           lm.text AS last_text, lm.sender_kind AS last_sender_kind
    FROM conversations c
    JOIN customers cu ON cu.id = c.customer_id
    JOIN companies co ON co.id = c.company_id
    LEFT JOIN branches b ON b.id = c.branch_id
    LEFT JOIN messages lm
           ON lm.id = (SELECT MAX(m.id) FROM messages m WHERE m.conversation_id = c.id)";

#[derive(Clone, Debug, FromRow)]
pub struct MessageRow {
    pub id: i64,
    pub conversation_id: i64,
    pub sender_kind: String,
    pub sender_id: i64,
    pub sender_name: String,
    pub text: String,
    pub client_msg_id: Option<String>,
    pub created_at: i64,
}

const MESSAGE_COLUMNS: &str =
    "id, conversation_id, sender_kind, sender_id, sender_name, text, client_msg_id, created_at";

/// A validated message to post into an existing conversation.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub conversation_id: i64,
    pub sender_side: Side,
    /// The customer's or the operator's id.
    pub sender_id: i64,
    pub text: String,
    pub client_msg_id: Option<String>,
}

/// The result of posting: the message and the inbox events written with it.
#[derive(Debug)]
pub struct Posted {
    pub message: MessageRow,
    /// True when `client_msg_id` matched an earlier message, which is returned unchanged.
    pub replayed: bool,
    pub events: Vec<(InboxKey, StoredEvent)>,
}

/// A customer starting (or continuing) a chat with a company.
#[derive(Clone, Debug)]
pub struct OpenConversation {
    pub customer_id: i64,
    pub company_id: i64,
    pub branch_id: Option<i64>,
    pub text: String,
    pub client_msg_id: Option<String>,
}

#[derive(Debug)]
pub struct Opened {
    pub conversation: ConversationRow,
    /// False when the customer already had a conversation with this company (and branch).
    pub created: bool,
    pub posted: Posted,
}

#[derive(Clone, Debug)]
pub struct ReadReceipt {
    pub conversation_id: i64,
    pub side: Side,
    pub reader_id: i64,
    pub up_to_message_id: i64,
}

/// Narrows an operator's conversation list.
#[derive(Clone, Debug, Default)]
pub struct ConversationFilter {
    pub branch_id: Option<i64>,
    pub limit: i64,
}

impl Store {
    /// Open the customer's conversation with a company (creating it on first contact) and post
    /// the first message, in one transaction.
    #[tracing::instrument(skip_all, fields(company_id = open.company_id))]
    pub async fn open_conversation(&self, open: &OpenConversation) -> StoreResult<Opened> {
        self.check_open_allowed(open).await?;
        let now = now_millis();
        let mut w = self.begin_write().await?;
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO conversations (customer_id, company_id, branch_id, branch_key, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (customer_id, company_id, branch_key) DO NOTHING
             RETURNING id",
        )
        .bind(open.customer_id)
        .bind(open.company_id)
        .bind(open.branch_id)
        .bind(open.branch_id.unwrap_or(0))
        .bind(now)
        .fetch_optional(&mut *w.tx)
        .await?;
        let created = inserted.is_some();
        let conversation_id = match inserted {
            Some(id) => id,
            None => {
                sqlx::query_scalar(
                    "SELECT id FROM conversations
                     WHERE customer_id = $1 AND company_id = $2 AND branch_key = $3",
                )
                .bind(open.customer_id)
                .bind(open.company_id)
                .bind(open.branch_id.unwrap_or(0))
                .fetch_one(&mut *w.tx)
                .await?
            }
        };
        let mut events = Vec::new();
        if created {
            let conversation = conversation_in(&mut w, conversation_id).await?;
            let data = events::conversation_payload(&conversation);
            events = inbox::append(
                &mut w,
                inbox::Targets::Participants(conversation.parties()),
                EventType::ConversationCreated.as_str(),
                &data,
                now,
            )
            .await?;
        }
        let new = NewMessage {
            conversation_id,
            sender_side: Side::Customer,
            sender_id: open.customer_id,
            text: open.text.clone(),
            client_msg_id: open.client_msg_id.clone(),
        };
        let posted = match post_in(&mut w, &new, now, &|_| true).await? {
            Some(mut posted) => {
                w.commit().await?;
                events.append(&mut posted.events);
                posted.events = events;
                posted
            }
            None => {
                drop(w);
                self.replayed(&new).await?
            }
        };
        let conversation = self.conversation(conversation_id).await?;
        Ok(Opened {
            conversation,
            created,
            posted,
        })
    }

    /// The company exists, takes messages, and has the branch asked for.
    async fn check_open_allowed(&self, open: &OpenConversation) -> StoreResult<()> {
        let company = match self.company(open.company_id).await {
            Err(StoreError::NotFound) => {
                return Err(StoreError::Invalid {
                    code: "unknown_company",
                    message: format!("company_id: there is no company {}", open.company_id),
                })
            }
            other => other?,
        };
        if company.accepts_messages == 0 {
            return Err(StoreError::Conflict {
                code: "messaging_disabled",
                message: format!("{} does not accept messages", company.name),
            });
        }
        if let Some(branch_id) = open.branch_id {
            match self.branch(branch_id).await {
                Ok(branch) if branch.company_id == open.company_id => {}
                Ok(_) | Err(StoreError::NotFound) => {
                    return Err(StoreError::Invalid {
                        code: "unknown_branch",
                        message: format!(
                            "branch_id: company {} has no branch {branch_id}",
                            open.company_id
                        ),
                    })
                }
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }

    /// Post a message into an existing conversation, if `may_post` allows it for the
    /// conversation's parties (otherwise `NotFound`, as for a missing one). The check runs on
    /// the locked conversation row inside the writing transaction, which saves a round trip
    /// and leaves no window between check and write. A repeated `client_msg_id` from the same
    /// sender returns the original message and writes nothing.
    #[tracing::instrument(skip_all, fields(conversation_id = new.conversation_id))]
    pub async fn post_message(
        &self,
        new: &NewMessage,
        may_post: &(dyn Fn(Parties) -> bool + Sync),
    ) -> StoreResult<Posted> {
        let mut w = self.begin_write().await?;
        match post_in(&mut w, new, now_millis(), may_post).await? {
            Some(posted) => {
                w.commit().await?;
                Ok(posted)
            }
            None => {
                drop(w);
                self.replayed(new).await
            }
        }
    }

    /// The message an earlier send with the same `client_msg_id` created.
    async fn replayed(&self, new: &NewMessage) -> StoreResult<Posted> {
        let original = sqlx::query_as::<_, MessageRow>(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages
             WHERE conversation_id = $1 AND sender_kind = $2 AND sender_id = $3 AND client_msg_id = $4"
        ))
        .bind(new.conversation_id)
        .bind(new.sender_side.as_str())
        .bind(new.sender_id)
        .bind(&new.client_msg_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(Posted {
            message: original,
            replayed: true,
            events: Vec::new(),
        })
    }

    /// Record that one side has read up to a message. Moving backwards is ignored; returns the
    /// `conversation.read` events written (none when nothing changed).
    #[tracing::instrument(skip_all, fields(conversation_id = receipt.conversation_id))]
    pub async fn mark_read(
        &self,
        receipt: &ReadReceipt,
    ) -> StoreResult<Vec<(InboxKey, StoredEvent)>> {
        let belongs: Option<i64> =
            sqlx::query_scalar("SELECT id FROM messages WHERE id = $1 AND conversation_id = $2")
                .bind(receipt.up_to_message_id)
                .bind(receipt.conversation_id)
                .fetch_optional(&self.pool)
                .await?;
        if belongs.is_none() {
            return Err(StoreError::Invalid {
                code: "unknown_message",
                message: format!(
                    "up_to_message_id: message {} is not in this conversation",
                    receipt.up_to_message_id
                ),
            });
        }
        // Unread counts only the other side's messages, so the reader's own never count.
        let (read_col, unread_col, other) = match receipt.side {
            Side::Customer => ("customer_read_id", "customer_unread", Side::Company),
            Side::Company => ("company_read_id", "company_unread", Side::Customer),
        };
        let now = now_millis();
        let mut w = self.begin_write().await?;
        let updated: Option<(i64, i64, i64, Option<i64>)> = sqlx::query_as(&format!(
            "UPDATE conversations SET {read_col} = $2,
                 {unread_col} = (SELECT COUNT(*) FROM messages m
                                 WHERE m.conversation_id = $1 AND m.sender_kind = $3 AND m.id > $2)
             WHERE id = $1 AND {read_col} < $2
             RETURNING {unread_col}, customer_id, company_id, branch_id"
        ))
        .bind(receipt.conversation_id)
        .bind(receipt.up_to_message_id)
        .bind(other.as_str())
        .fetch_optional(&mut *w.tx)
        .await?;
        let Some((unread, customer_id, company_id, branch_id)) = updated else {
            return Ok(Vec::new());
        };
        let data = serde_json::json!({
            "conversation_id": receipt.conversation_id,
            "side": receipt.side,
            "reader_id": receipt.reader_id,
            "up_to_message_id": receipt.up_to_message_id,
            "unread_count": unread,
        });
        let appended = inbox::append(
            &mut w,
            inbox::Targets::Participants((customer_id, company_id, branch_id)),
            EventType::ConversationRead.as_str(),
            &data,
            now,
        )
        .await?;
        w.commit().await?;
        Ok(appended)
    }

    pub async fn conversation(&self, id: i64) -> StoreResult<ConversationRow> {
        sqlx::query_as::<_, ConversationRow>(&format!("{CONVERSATION_SELECT} WHERE c.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// The conversations a principal can see: a customer's own, newest first; an operator's
    /// company's (within their branches), those waiting longest for a reply first.
    #[tracing::instrument(skip_all)]
    pub async fn conversations_for(
        &self,
        principal: Principal,
        scope: Option<&OperatorScope>,
        filter: &ConversationFilter,
    ) -> StoreResult<Vec<ConversationRow>> {
        let rows = match (principal, scope) {
            (Principal::Customer { id }, _) => {
                sqlx::query_as::<_, ConversationRow>(&format!(
                    "{CONVERSATION_SELECT} WHERE c.customer_id = $1
                     ORDER BY COALESCE(c.last_message_at, c.created_at) DESC, c.id DESC LIMIT $2"
                ))
                .bind(id)
                .bind(filter.limit)
                .fetch_all(&self.pool)
                .await?
            }
            (Principal::Operator { id }, Some(scope)) => {
                let branch_filter = if filter.branch_id.is_some() {
                    "AND c.branch_id = $4"
                } else {
                    ""
                };
                sqlx::query_as::<_, ConversationRow>(&format!(
                    "{CONVERSATION_SELECT} WHERE c.company_id = $1
                       AND (NOT EXISTS (SELECT 1 FROM operator_branches ob WHERE ob.operator_id = $2)
                            OR c.branch_id IN (SELECT ob.branch_id FROM operator_branches ob
                                               WHERE ob.operator_id = $2))
                       {branch_filter}
                     ORDER BY CASE WHEN c.awaiting_reply_since IS NULL THEN 1 ELSE 0 END,
                              c.awaiting_reply_since,
                              COALESCE(c.last_message_at, c.created_at) DESC, c.id DESC
                     LIMIT $3"
                ))
                .bind(scope.company_id)
                .bind(id)
                .bind(filter.limit)
                .bind(filter.branch_id)
                .fetch_all(&self.pool)
                .await?
            }
            (Principal::Operator { .. }, None) => Vec::new(),
        };
        Ok(rows)
    }

    /// Up to `limit` messages older than `before` (a message id), newest first.
    pub async fn history(
        &self,
        conversation_id: i64,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<MessageRow>> {
        Ok(sqlx::query_as::<_, MessageRow>(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages
             WHERE conversation_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        ))
        .bind(conversation_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}

async fn conversation_in(w: &mut WriteTx, id: i64) -> StoreResult<ConversationRow> {
    sqlx::query_as::<_, ConversationRow>(&format!("{CONVERSATION_SELECT} WHERE c.id = $1"))
        .bind(id)
        .fetch_optional(&mut *w.tx)
        .await?
        .ok_or(StoreError::NotFound)
}

impl ConversationRow {
    pub fn parties(&self) -> Parties {
        (self.customer_id, self.company_id, self.branch_id)
    }
}

/// Insert the message, update the conversation and append `message.created` to every
/// participant's inbox, inside `w`. `None` means `client_msg_id` was seen before: the caller
/// rolls back (the conversation row was already touched) and answers with the original.
async fn post_in(
    w: &mut WriteTx,
    new: &NewMessage,
    now: i64,
    may_post: &(dyn Fn(Parties) -> bool + Sync),
) -> StoreResult<Option<Posted>> {
    // Updating the conversation first locks it, so messages of one conversation commit one at
    // a time and their ids and seqs rise together. A customer's message waits for a reply (and
    // is unread for the company) until an operator answers, and the other way round.
    let update = match new.sender_side {
        Side::Customer => {
            "UPDATE conversations SET last_message_at = $2,
                 company_unread = company_unread + 1,
                 awaiting_reply_since = COALESCE(awaiting_reply_since, $2)
             WHERE id = $1 RETURNING customer_id, company_id, branch_id"
        }
        Side::Company => {
            "UPDATE conversations SET last_message_at = $2,
                 customer_unread = customer_unread + 1,
                 awaiting_reply_since = NULL
             WHERE id = $1 RETURNING customer_id, company_id, branch_id"
        }
    };
    let parties: Parties = sqlx::query_as(update)
        .bind(new.conversation_id)
        .bind(now)
        .fetch_optional(&mut *w.tx)
        .await?
        .ok_or(StoreError::NotFound)?;
    if !may_post(parties) {
        return Err(StoreError::NotFound);
    }
    // The sender's display name is copied into the message (history shows the name it was
    // sent under) by a sub-select, which saves a round trip.
    let sender_table = match new.sender_side {
        Side::Customer => "customers",
        Side::Company => "operators",
    };
    let inserted = sqlx::query_as::<_, MessageRow>(&format!(
        "INSERT INTO messages (conversation_id, sender_kind, sender_id, sender_name, text, client_msg_id, created_at)
         VALUES ($1, $2, $3, (SELECT name FROM {sender_table} WHERE id = $3), $4, $5, $6)
         ON CONFLICT (conversation_id, sender_kind, sender_id, client_msg_id) DO NOTHING
         RETURNING {MESSAGE_COLUMNS}"
    ))
    .bind(new.conversation_id)
    .bind(new.sender_side.as_str())
    .bind(new.sender_id)
    .bind(&new.text)
    .bind(&new.client_msg_id)
    .bind(now)
    .fetch_optional(&mut *w.tx)
    .await?;
    let Some(message) = inserted else {
        return Ok(None);
    };
    // The outbox: the notification worker picks this up once the transaction commits.
    let (recipient_kind, recipient_id) = match new.sender_side {
        Side::Customer => ("company", parties.1),
        Side::Company => ("customer", parties.0),
    };
    sqlx::query(
        "INSERT INTO notification_jobs (conversation_id, message_id, recipient_kind, recipient_id, stage, run_at, created_at)
         VALUES ($1, $2, $3, $4, 'first', $5, $5)",
    )
    .bind(new.conversation_id)
    .bind(message.id)
    .bind(recipient_kind)
    .bind(recipient_id)
    .bind(now)
    .execute(&mut *w.tx)
    .await?;
    let data = events::message_payload(&message);
    let events = inbox::append(
        w,
        inbox::Targets::Participants(parties),
        EventType::MessageCreated.as_str(),
        &data,
        now,
    )
    .await?;
    Ok(Some(Posted {
        message,
        replayed: false,
        events,
    }))
}
