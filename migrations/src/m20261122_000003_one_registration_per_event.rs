//! At most one confirmed registration per person and event, enforced by the database.
//!
//! `POST /registrations` checks for an existing registration before it reserves; two clicks at
//! once both passed that check and took two seats. The HTTP layer now lets one registration per
//! person and event run at a time, and this partial unique index is the guarantee behind it (it
//! holds for every writer, including a second node). Cancelled registrations are not covered, so a
//! person who cancelled may register again. The same DDL works on PostgreSQL and SQLite, which
//! both support partial indexes.
//!
//! A database that already holds duplicates (written before this fix) fails this migration with
//! a unique-constraint error naming the index: cancel the extra registrations, then migrate.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "uq_orders_confirmed_registration";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Orders::Table)
                    .col(Orders::UserId)
                    .col(Orders::EventId)
                    .unique()
                    .and_where(Expr::col(Orders::Kind).eq("registration"))
                    .and_where(Expr::col(Orders::Status).eq("confirmed"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name(INDEX).table(Orders::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    UserId,
    EventId,
    Kind,
    Status,
}
