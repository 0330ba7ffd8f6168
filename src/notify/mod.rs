//! Cascade notifications: deciding how to make sure a message is noticed without spamming.
//!
//! - `policy`: the pure decision for one message and one recipient.
//! - `worker`: the loop that takes jobs from the queue, observes, decides and acts.
//! - `email`: the digest e-mail and the outbox it is written to.
//!
//! - `amqp`: RabbitMQ as the queue, fed from the outbox by a relay.
//!
//! Jobs are written by the transaction that writes the message (a transactional outbox). Without
//! RabbitMQ that table is also the queue: claimed with a lease, `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL.

pub mod amqp;
pub mod email;
pub mod policy;
pub mod push;
pub mod worker;
