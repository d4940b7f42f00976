//! `events.max_per_person`: the seats one person may hold and have bought for an event.
//!
//! `0` means no limit. Events that exist when this runs get `0`, so an event already on sale keeps
//! the rules it was published with; new events take `booking.default_max_per_person` (20) unless
//! their body says otherwise, and an operator sets a limit on an old one with `PUT /events/{id}`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(ColumnDef::new(Events::MaxPerPerson).integer().not_null().default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Events::Table).drop_column(Events::MaxPerPerson).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Events {
    Table,
    MaxPerPerson,
}
