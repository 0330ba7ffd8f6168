//! Switchboard: a customer-to-company messaging server that reaches every browser, from IE6
//! to today, and makes sure every message gets read.
//!
//! # Layout
//!
//! - [`config`]: the typed configuration (flags mirrored by environment variables).
//! - [`startup`]: builds the application from configuration and serves it.
//! - [`http`]: the HTTP API, one module per resource, one error type, one context.
//! - [`store`]: persistence on PostgreSQL or SQLite; the only source of truth.
//! - [`events`]: the event model, and reading inboxes: cursors, the local hub, the feed.
//! - [`bus`]: wake-ups between nodes (in-process or Redis pub/sub).
//! - [`presence`]: who is online right now.
//! - [`notify`]: the cascade notification policy.
//! - [`server`]: the accept loop with connection caps, header timeout and bounded drain.
//! - [`domain`]: pure rules: principals, access, validation, local time.
//! - [`views`]: the JSON shapes served, shared by REST answers and events.
//! - [`auth`]: signed access tokens and password hashing.
//! - [`admin`]: the set-up commands behind `switchboard admin …` and the demo company.
//! - [`shutdown`], [`telemetry`]: process plumbing.

pub mod admin;
pub mod auth;
pub mod bus;
pub mod config;
pub mod domain;
pub mod events;
pub mod http;
pub mod notify;
pub mod presence;
pub mod server;
pub mod shutdown;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod views;
