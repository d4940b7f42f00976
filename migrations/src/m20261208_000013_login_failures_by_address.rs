//! `login_failures.address`: the client address of each failed login, so that a lockout is kept
//! per account *and* address (one address guessing cannot lock the account's owner out from
//! theirs), beside a looser lock over all addresses (see `auth::guard`). Rows from before have
//! no address (`''`): they count towards the account-wide lock only, and leave the window within
//! `limits.login_failure_window_seconds`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(LoginFailures::Table)
                    .add_column(string(LoginFailures::Address).default(""))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(LoginFailures::Table).drop_column(LoginFailures::Address).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum LoginFailures {
    Table,
    Address,
}
