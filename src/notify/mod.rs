//! Cascade notifications: deciding how to make sure a message is noticed without spamming.
//!
//! - `policy`: the pure decision for one message and one recipient.

pub mod policy;
