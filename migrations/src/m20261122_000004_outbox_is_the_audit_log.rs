//! Without MongoDB, the audit log is the outbox table: every domain event is already there,
//! written in the transaction of the change it reports and never deleted. The `audit_logs`
//! table held a second copy of each, written after the relay delivered it; it is dropped (its
//! rows are all in the outbox), and the audit view's filter by type gets its index on the outbox.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "idx_outbox_type";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create().name(INDEX).table(Outbox::Table).col(Outbox::EventType).col(Outbox::Id).to_owned(),
            )
            .await?;
        manager.drop_table(Table::drop().table(AuditLogs::Table).to_owned()).await
    }

    /// Brings back the table as migration 1 made it, empty: the events stay in the outbox.
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditLogs::Table)
                    .col(big_pk_auto(AuditLogs::Id))
                    .col(uuid(AuditLogs::EventId).unique_key())
                    .col(string(AuditLogs::EventType))
                    .col(text(AuditLogs::Data))
                    .col(timestamp_with_time_zone(AuditLogs::OccurredAt))
                    .col(timestamp_with_time_zone(AuditLogs::ReceivedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_logs_type")
                    .table(AuditLogs::Table)
                    .col(AuditLogs::EventType)
                    .col(AuditLogs::Id)
                    .to_owned(),
            )
            .await?;
        manager.drop_index(Index::drop().name(INDEX).table(Outbox::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    EventType,
}

#[derive(DeriveIden)]
enum AuditLogs {
    Table,
    Id,
    EventId,
    EventType,
    Data,
    OccurredAt,
    ReceivedAt,
}
