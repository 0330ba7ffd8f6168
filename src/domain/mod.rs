//! The chat domain without I/O: who is acting, which side of a conversation they are on, who may
//! see what, input rules, and local time. Everything here is a pure function, tested directly.

mod access;
mod local_time;
pub mod validate;

pub use access::{can_access, OperatorScope};
pub use local_time::{local_time_now, LocalTime};

use serde::Serialize;

/// Who is making a request (from their access token).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Principal {
    Customer { id: i64 },
    Operator { id: i64 },
}

impl Principal {
    pub fn id(self) -> i64 {
        match self {
            Principal::Customer { id } | Principal::Operator { id } => id,
        }
    }

    /// The one-letter tag used inside access tokens.
    pub fn kind_tag(self) -> &'static str {
        match self {
            Principal::Customer { .. } => "c",
            Principal::Operator { .. } => "o",
        }
    }

    pub fn side(self) -> Side {
        match self {
            Principal::Customer { .. } => Side::Customer,
            Principal::Operator { .. } => Side::Company,
        }
    }

    /// The principal's inbox: its ordered event stream.
    pub fn inbox(self) -> InboxKey {
        match self {
            Principal::Customer { id } => InboxKey::customer(id),
            Principal::Operator { id } => InboxKey::operator(id),
        }
    }
}

/// The two sides of every conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Customer,
    Company,
}

impl Side {
    /// How the side is stored in `messages.sender_kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Customer => "customer",
            Side::Company => "company",
        }
    }

    pub fn parse(raw: &str) -> Option<Side> {
        match raw {
            "customer" => Some(Side::Customer),
            "company" => Some(Side::Company),
            _ => None,
        }
    }

    pub fn other(self) -> Side {
        match self {
            Side::Customer => Side::Company,
            Side::Company => Side::Customer,
        }
    }
}

/// The name of one principal's inbox; also the suffix of its bus channel.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InboxKey(String);

impl InboxKey {
    pub fn customer(id: i64) -> Self {
        InboxKey(format!("customer:{id}"))
    }

    pub fn operator(id: i64) -> Self {
        InboxKey(format!("operator:{id}"))
    }

    /// A key as read back from the store (written by the constructors above).
    pub fn from_stored(key: String) -> Self {
        InboxKey(key)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
