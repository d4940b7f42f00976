//! The virtual waiting room: `events.waiting_room` and `events.admit_per_second`, and
//! `queue_entries`, one row per person who joined an event's queue, in join order.
//!
//! An entry's state is derived, not stored as a word: `admitted_until` null means waiting, in the
//! future means admitted, in the past means the admission expired. `seq` is the join order within
//! the event, dense from 1 (the event's inventory assigns it), so a waiting person's position is
//! their `seq` minus the last admitted one. A person who rejoins after an expired admission gets a
//! new entry at the back; the old one stays as history. Events that exist when this runs get no
//! waiting room.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(ColumnDef::new(Events::WaitingRoom).boolean().not_null().default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(ColumnDef::new(Events::AdmitPerSecond).integer().not_null().default(10))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(QueueEntries::Table)
                    .col(uuid(QueueEntries::Id).primary_key())
                    .col(uuid(QueueEntries::EventId))
                    .col(uuid(QueueEntries::UserId))
                    .col(big_integer(QueueEntries::Seq))
                    .col(timestamp_with_time_zone(QueueEntries::JoinedAt))
                    .col(timestamp_with_time_zone_null(QueueEntries::AdmittedUntil))
                    .foreign_key(
                        ForeignKey::create()
                            .from(QueueEntries::Table, QueueEntries::EventId)
                            .to(Events::Table, Events::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // Join order within an event, and the recovery scan (an event's entries in order).
        manager
            .create_index(
                Index::create()
                    .name("uq_queue_entries_event_seq")
                    .table(QueueEntries::Table)
                    .col(QueueEntries::EventId)
                    .col(QueueEntries::Seq)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(QueueEntries::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(Events::Table).drop_column(Events::AdmitPerSecond).to_owned()).await?;
        manager.alter_table(Table::alter().table(Events::Table).drop_column(Events::WaitingRoom).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    WaitingRoom,
    AdmitPerSecond,
}

#[derive(DeriveIden)]
enum QueueEntries {
    Table,
    Id,
    EventId,
    UserId,
    Seq,
    JoinedAt,
    AdmittedUntil,
}
