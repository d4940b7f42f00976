//! HTTP tests against the real application. They run on SQLite by default and on PostgreSQL
//! when `BOXOFFICE_TEST_POSTGRES_URL` is set (`scripts/test.sh` runs both).

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod catalog;
mod cli;
mod committer;
mod compat;
mod concurrency;
mod docs;
mod edge;
mod errors;
mod grpc;
mod input;
mod leases;
mod metrics;
mod orders;
mod outbox;
mod payments;
mod queues;

mod recovery;
mod sessions;
mod streams;
mod waitlist;
