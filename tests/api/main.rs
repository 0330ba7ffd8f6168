//! Integration tests: the real app over HTTP, each test on SQLite and on PostgreSQL.

mod helpers;

mod bad_input;
mod chat_flow;
mod cli;
mod clients;
mod cluster;
mod concurrency;
mod delivery;
mod notifications;
mod ops;
mod push;
mod rabbitmq;
mod realtime;
mod scoping;
mod smtp_sink;
