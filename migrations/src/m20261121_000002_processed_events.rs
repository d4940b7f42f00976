//! `processed_events`: which domain events a consumer has already acted on, so a redelivered
//! event (Kafka's at-least-once delivery, or a relay retry) causes no second side effect, such
//! as a second e-mail.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ProcessedEvents::Table)
                    .col(string(ProcessedEvents::Consumer))
                    .col(uuid(ProcessedEvents::EventId))
                    .col(timestamp_with_time_zone(ProcessedEvents::ProcessedAt))
                    .primary_key(Index::create().col(ProcessedEvents::Consumer).col(ProcessedEvents::EventId))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ProcessedEvents::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum ProcessedEvents {
    Table,
    Consumer,
    EventId,
    ProcessedAt,
}
