//! `event_leases`: which node owns each event in cluster mode, until when, and under which epoch.
//!
//! One row per event that has ever had an owner. A node takes an event whose lease is missing or
//! lapsed, and every take bumps the epoch; commits that change the event's slots will check the
//! epoch in the same transaction (the fence), so a node that lost the lease can never commit.
//! Single-node mode does not use the table.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EventLeases::Table)
                    .col(uuid(EventLeases::EventId).primary_key())
                    .col(string(EventLeases::Owner))
                    .col(big_integer(EventLeases::Epoch))
                    .col(timestamp_with_time_zone(EventLeases::ExpiresAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(EventLeases::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum EventLeases {
    Table,
    EventId,
    Owner,
    Epoch,
    ExpiresAt,
}
