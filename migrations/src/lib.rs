//! Database schema for Boxoffice, shared by PostgreSQL (production) and SQLite (embedded).
//!
//! Every migration is written with sea-query's schema builder so one definition produces the
//! right DDL for both backends. `boxoffice migrate` and `boxoffice serve` apply them.

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_booking_core;
mod m20261121_000002_processed_events;
mod m20261122_000003_one_registration_per_event;
mod m20261122_000004_outbox_is_the_audit_log;
mod m20261202_000005_max_per_person;
mod m20261202_000006_sessions_end_with_their_user;
mod m20261202_000007_event_leases;
mod m20261204_000008_waiting_room;
mod m20261204_000009_waiting_list;
mod m20261204_000010_notifications_and_birthdays;
mod m20261205_000011_outbox_relay_cursor;
mod m20261208_000012_payment_recovery;
mod m20261208_000013_login_failures_by_address;

/// Runs Boxoffice's migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_booking_core::Migration),
            Box::new(m20261121_000002_processed_events::Migration),
            Box::new(m20261122_000003_one_registration_per_event::Migration),
            Box::new(m20261122_000004_outbox_is_the_audit_log::Migration),
            Box::new(m20261202_000005_max_per_person::Migration),
            Box::new(m20261202_000006_sessions_end_with_their_user::Migration),
            Box::new(m20261202_000007_event_leases::Migration),
            Box::new(m20261204_000008_waiting_room::Migration),
            Box::new(m20261204_000009_waiting_list::Migration),
            Box::new(m20261204_000010_notifications_and_birthdays::Migration),
            Box::new(m20261205_000011_outbox_relay_cursor::Migration),
            Box::new(m20261208_000012_payment_recovery::Migration),
            Box::new(m20261208_000013_login_failures_by_address::Migration),
        ]
    }
}
