//! Boxoffice: a ticket-booking backend built to stay correct and fast during an on-sale rush.
//!
//! How the parts fit:
//! - [`http`]: the REST API (axum). Handlers validate input into domain types and call actors,
//!   always with a timeout.
//! - [`actors`]: one `EventInventory` per event owns its slots (the only writer), supervised and
//!   rebuilt from the database after a failure; an `OrderSaga` per order drives payment and
//!   cancellation; the `PaymentActor` talks to the provider; `Notifier` and `Auditor` consume
//!   domain events.
//! - [`store`]: sea-orm entities and the group committer: every slot change and its outbox row
//!   commit together, many holds per transaction, and nobody is answered before the commit.
//! - [`bridge`]: the outbox relay and the in-process bus that carry domain events to consumers.
//! - [`config`]: typed, layered configuration; [`app`]: start-up and graceful shutdown.
//! - [`error`]: what every boundary's error type shares (`Unavailable`, cause-chain reports).
//! - [`retry`]: the one backoff and the one restart policy every retry loop and supervisor uses.
//! - [`loadtest`]: the load-test harness behind `boxoffice loadtest`.

pub mod actors;
pub mod app;
pub mod auth;
pub mod bridge;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod instruments;
pub mod loadtest;
pub mod retry;
pub mod seed;
pub mod store;
pub mod telemetry;

pub use app::Application;
pub use config::Config;
