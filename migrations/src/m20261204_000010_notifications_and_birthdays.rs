//! `notifications`: every message the notifier sends or tries to send, for
//! `GET /api/v1/notifications` (the caller's own). One row per domain event that calls for a
//! message (its id is the event's), so a redelivered event updates its row instead of adding one.
//! `status` is `pending` (about to be handed to the mail server), `sent` or `failed` (the event
//! is offered again, and a later success makes it `sent`).
//!
//! And `users.birth_day`, a date, as the ticketing system Boxoffice replaces kept it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .col(uuid(Notifications::Id).primary_key())
                    .col(uuid(Notifications::UserId))
                    .col(string(Notifications::Channel))
                    .col(string(Notifications::Subject))
                    .col(string(Notifications::ToAddress))
                    .col(string(Notifications::Status))
                    .col(string_null(Notifications::Error))
                    .col(timestamp_with_time_zone(Notifications::CreatedAt))
                    .col(timestamp_with_time_zone_null(Notifications::SentAt))
                    .to_owned(),
            )
            .await?;
        // A person's list, newest ids last: the page query's index.
        manager
            .create_index(
                Index::create()
                    .name("ix_notifications_user_id")
                    .table(Notifications::Table)
                    .col(Notifications::UserId)
                    .col(Notifications::Id)
                    .to_owned(),
            )
            .await?;
        manager.alter_table(Table::alter().table(Users::Table).add_column(date_null(Users::BirthDay)).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Users::Table).drop_column(Users::BirthDay).to_owned()).await?;
        manager.drop_table(Table::drop().table(Notifications::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    BirthDay,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    UserId,
    Channel,
    Subject,
    ToAddress,
    Status,
    Error,
    CreatedAt,
    SentAt,
}
