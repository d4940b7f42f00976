//! `waitlist_entries`: people waiting for seats of a sold-out event, in the order they asked.
//!
//! `seq` is the order within the event (the event's inventory assigns it). `status` is `waiting`,
//! `offered` (seats were set aside for them: `order_id` is the hold or registration) or `left`.
//! One waiting entry per person and event; a person offered seats may ask again (a new entry).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WaitlistEntries::Table)
                    .col(uuid(WaitlistEntries::Id).primary_key())
                    .col(uuid(WaitlistEntries::EventId))
                    .col(uuid(WaitlistEntries::UserId))
                    .col(integer(WaitlistEntries::Quantity))
                    .col(big_integer(WaitlistEntries::Seq))
                    .col(string(WaitlistEntries::Status))
                    .col(uuid_null(WaitlistEntries::OrderId))
                    .col(timestamp_with_time_zone(WaitlistEntries::CreatedAt))
                    .col(timestamp_with_time_zone(WaitlistEntries::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WaitlistEntries::Table, WaitlistEntries::EventId)
                            .to(Events::Table, Events::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_waitlist_entries_event_seq")
                    .table(WaitlistEntries::Table)
                    .col(WaitlistEntries::EventId)
                    .col(WaitlistEntries::Seq)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(WaitlistEntries::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum WaitlistEntries {
    Table,
    Id,
    EventId,
    UserId,
    Quantity,
    Seq,
    Status,
    OrderId,
    CreatedAt,
    UpdatedAt,
}
