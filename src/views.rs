//! The JSON shapes the API serves, built from store rows. One place, so the REST answers and
//! the event payloads can never drift apart.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{local_time_now, LocalTime, Side};
use crate::store::{BranchRow, CompanyRow, ConversationRow, CustomerRow, MessageRow, OperatorRow};

/// Longest excerpt of the last message shown in conversation lists.
const EXCERPT_CHARS: usize = 140;

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    pub id: i64,
    pub conversation_id: i64,
    pub sender: SenderView,
    pub text: String,
    pub client_msg_id: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SenderView {
    /// `customer` or `company` (an operator writing for the company).
    pub side: String,
    pub id: i64,
    pub name: String,
}

impl From<&MessageRow> for MessageView {
    fn from(m: &MessageRow) -> Self {
        MessageView {
            id: m.id,
            conversation_id: m.conversation_id,
            sender: SenderView {
                side: m.sender_kind.clone(),
                id: m.sender_id,
                name: m.sender_name.clone(),
            },
            text: m.text.clone(),
            client_msg_id: m.client_msg_id.clone(),
            created_at: m.created_at,
        }
    }
}

/// One side of a conversation with where it is and its local time now.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartyView {
    pub id: i64,
    pub name: String,
    #[serde(flatten)]
    pub place: LocalTime,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BranchRef {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadPositions {
    /// The last message id the customer has read.
    pub customer: i64,
    /// The last message id any operator of the company has read.
    pub company: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LastMessageView {
    pub id: i64,
    pub side: String,
    pub excerpt: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationView {
    pub id: i64,
    pub customer: PartyView,
    /// The company, located at its branch when the conversation is with a branch.
    pub company: PartyView,
    pub branch: Option<BranchRef>,
    /// The party the viewer talks to (the company for a customer, the customer for an operator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_side: Option<PartyView>,
    /// Messages from the other side the viewer has not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread_count: Option<i64>,
    pub read_up_to: ReadPositions,
    pub last_message: Option<LastMessageView>,
    pub last_message_at: Option<i64>,
    /// When the oldest customer message still without an operator reply was sent.
    pub awaiting_reply_since: Option<i64>,
    pub created_at: i64,
}

impl ConversationView {
    /// The conversation as seen by `viewer`, with local times at `now`.
    pub fn for_side(row: &ConversationRow, viewer: Side, now: DateTime<Utc>) -> Self {
        let mut view = Self::neutral(row, now);
        let (other, unread) = match viewer {
            Side::Customer => (company_party(row, now), row.customer_unread),
            Side::Company => (customer_party(row, now), row.company_unread),
        };
        view.other_side = Some(other);
        view.unread_count = Some(unread);
        view
    }

    /// The conversation without a viewer (event payloads go to both sides).
    pub fn neutral(row: &ConversationRow, now: DateTime<Utc>) -> Self {
        ConversationView {
            id: row.id,
            customer: customer_party(row, now),
            company: company_party(row, now),
            branch: row
                .branch_id
                .zip(row.branch_name.clone())
                .map(|(id, name)| BranchRef { id, name }),
            other_side: None,
            unread_count: None,
            read_up_to: ReadPositions {
                customer: row.customer_read_id,
                company: row.company_read_id,
            },
            last_message: match (row.last_message_id, &row.last_text, &row.last_sender_kind) {
                (Some(id), Some(text), Some(side)) => Some(LastMessageView {
                    id,
                    side: side.clone(),
                    excerpt: excerpt(text),
                }),
                _ => None,
            },
            last_message_at: row.last_message_at,
            awaiting_reply_since: row.awaiting_reply_since,
            created_at: row.created_at,
        }
    }
}

fn customer_party(row: &ConversationRow, now: DateTime<Utc>) -> PartyView {
    PartyView {
        id: row.customer_id,
        name: row.customer_name.clone(),
        place: local_time_now(
            row.customer_city.as_deref(),
            row.customer_timezone.as_deref(),
            now,
        ),
    }
}

fn company_party(row: &ConversationRow, now: DateTime<Utc>) -> PartyView {
    let (city, timezone) = match (&row.branch_city, &row.branch_timezone) {
        (Some(city), Some(tz)) => (Some(city.as_str()), tz.as_str()),
        _ => (row.company_city.as_deref(), row.company_timezone.as_str()),
    };
    PartyView {
        id: row.company_id,
        name: row.company_name.clone(),
        place: local_time_now(city, Some(timezone), now),
    }
}

fn excerpt(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(EXCERPT_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BranchView {
    pub id: i64,
    pub company_id: i64,
    pub name: String,
    #[serde(flatten)]
    pub place: LocalTime,
}

impl BranchView {
    pub fn new(b: &BranchRow, now: DateTime<Utc>) -> Self {
        BranchView {
            id: b.id,
            company_id: b.company_id,
            name: b.name.clone(),
            place: local_time_now(Some(&b.city), Some(&b.timezone), now),
        }
    }
}

/// A company as the public directory shows it (no e-mail address).
#[derive(Debug, Serialize, ToSchema)]
pub struct CompanyView {
    pub id: i64,
    pub name: String,
    pub accepts_messages: bool,
    #[serde(flatten)]
    pub place: LocalTime,
    pub branches: Vec<BranchView>,
}

impl CompanyView {
    pub fn new(c: &CompanyRow, branches: &[BranchRow], now: DateTime<Utc>) -> Self {
        CompanyView {
            id: c.id,
            name: c.name.clone(),
            accepts_messages: c.accepts_messages != 0,
            place: local_time_now(c.city.as_deref(), Some(&c.timezone), now),
            branches: branches.iter().map(|b| BranchView::new(b, now)).collect(),
        }
    }
}

/// A company as its administrators see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompanyAdminView {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub city: Option<String>,
    pub timezone: String,
    pub accepts_messages: bool,
    pub created_at: i64,
}

impl From<&CompanyRow> for CompanyAdminView {
    fn from(c: &CompanyRow) -> Self {
        CompanyAdminView {
            id: c.id,
            name: c.name.clone(),
            email: c.email.clone(),
            city: c.city.clone(),
            timezone: c.timezone.clone(),
            accepts_messages: c.accepts_messages != 0,
            created_at: c.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorView {
    pub id: i64,
    pub company_id: i64,
    pub name: String,
    pub email: String,
    /// Empty: the operator works for the whole company.
    pub branch_ids: Vec<i64>,
}

impl OperatorView {
    pub fn new(o: &OperatorRow, branch_ids: Vec<i64>) -> Self {
        OperatorView {
            id: o.id,
            company_id: o.company_id,
            name: o.name.clone(),
            email: o.email.clone(),
            branch_ids,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    #[serde(flatten)]
    pub place: LocalTime,
}

impl CustomerView {
    pub fn new(c: &CustomerRow, now: DateTime<Utc>) -> Self {
        CustomerView {
            id: c.id,
            name: c.name.clone(),
            email: c.email.clone(),
            place: local_time_now(c.city.as_deref(), c.timezone.as_deref(), now),
        }
    }
}
