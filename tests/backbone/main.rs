//! The event backbone on real servers: Kafka, a MongoDB wire-protocol server (FerretDB) and an
//! SMTP server (Mailpit), all started by `scripts/services.sh up` and found through the
//! variables `scripts/services.sh env` prints (`scripts/test.sh` sets them).
//!
//! Each test gets its own topic prefix, consumer groups, MongoDB database and database, so they
//! run in parallel; the outage tests stop and start shared servers, so they take an exclusive
//! lock that the others share.

#[path = "../common/mod.rs"]
#[allow(dead_code)]
mod common;

mod flow;
mod observability;
mod outages;

use std::sync::LazyLock;

use tokio::sync::RwLock;

#[path = "../common/backbone.rs"]
mod shared;
pub use shared::*;

/// Shared by the tests that only use the servers, held exclusively by those that stop them.
pub static SERVERS: LazyLock<RwLock<()>> = LazyLock::new(|| RwLock::new(()));
