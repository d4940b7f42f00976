//! Sessions that end with their user, and logins that resist guessing.
//!
//! - `users.token_generation`: every access token carries the generation it was issued under; a
//!   password change or an account deletion bumps it, which ends every access token issued
//!   before (refresh tokens are revoked in the same transaction). Refresh tokens record it too
//!   (`refresh_tokens.generation`), so one issued by a login that raced the change is refused.
//! - `revoked_tokens`: access tokens ended by a logout before their `exp`, by `jti`. Rows are
//!   useless once `expires_at` has passed and are deleted then.
//! - `login_failures`: one row per login attempt that has not (yet) succeeded, by `subject` (the
//!   account's id, or the login text when no account has it, so that a login for nobody locks
//!   exactly like one for somebody); enough of them within the window lock the subject's logins
//!   for a while, on every node that shares the database.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(ColumnDef::new(Users::TokenGeneration).integer().not_null().default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(RefreshTokens::Table)
                    .add_column(ColumnDef::new(RefreshTokens::Generation).integer().not_null().default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RevokedTokens::Table)
                    .col(uuid(RevokedTokens::Jti).primary_key())
                    .col(uuid(RevokedTokens::UserId))
                    .col(timestamp_with_time_zone(RevokedTokens::ExpiresAt))
                    .col(timestamp_with_time_zone(RevokedTokens::RevokedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_revoked_tokens_revoked_at")
                    .table(RevokedTokens::Table)
                    .col(RevokedTokens::RevokedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LoginFailures::Table)
                    .col(uuid(LoginFailures::Id).primary_key())
                    .col(string(LoginFailures::Subject))
                    .col(timestamp_with_time_zone(LoginFailures::FailedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_login_failures_subject_time")
                    .table(LoginFailures::Table)
                    .col(LoginFailures::Subject)
                    .col(LoginFailures::FailedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(LoginFailures::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(RevokedTokens::Table).to_owned()).await?;
        manager
            .alter_table(Table::alter().table(RefreshTokens::Table).drop_column(RefreshTokens::Generation).to_owned())
            .await?;
        manager.alter_table(Table::alter().table(Users::Table).drop_column(Users::TokenGeneration).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    TokenGeneration,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Generation,
}

#[derive(DeriveIden)]
enum RevokedTokens {
    Table,
    Jti,
    UserId,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum LoginFailures {
    Table,
    Id,
    Subject,
    FailedAt,
}
