//! The event model: what goes into an inbox, how each event's JSON looks, and how subscribers
//! read inboxes (`cursor`, `hub`, `feed`).
//!
//! Payloads are built here, once, by the writer inside its transaction; every transport sends
//! the stored JSON as it is.

pub mod cursor;
pub mod feed;
pub mod hub;

use serde_json::{json, Value};

use crate::store::{ConversationRow, MessageRow};
use crate::views::{ConversationView, MessageView};

/// The kinds of stored events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    MessageCreated,
    ConversationCreated,
    ConversationRead,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::MessageCreated => "message.created",
            EventType::ConversationCreated => "conversation.created",
            EventType::ConversationRead => "conversation.read",
        }
    }
}

/// `message.created`: the message exactly as the history endpoint shows it.
pub fn message_payload(message: &MessageRow) -> Value {
    json!({ "message": MessageView::from(message) })
}

/// `conversation.created`: both parties, so each recipient renders its own side.
pub fn conversation_payload(conversation: &ConversationRow) -> Value {
    json!({ "conversation": ConversationView::neutral(conversation, chrono::Utc::now()) })
}
