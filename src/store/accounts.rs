//! Writes to accounts: each change commits with its `user.*` domain event in one transaction
//! (these do not go through the committer: they change no slots).

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, TransactionTrait,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::{
    WriteError,
    entities::{refresh_tokens, users},
    record_event,
};
use crate::domain::{DomainEvent, Payload};

/// Inserts a new account; a taken e-mail or username is [`WriteError::Duplicate`].
pub async fn insert_user(db: &DatabaseConnection, user: users::Model) -> Result<(), WriteError> {
    let event = DomainEvent::new(Payload::UserCreated(user.facts()));
    let txn = db.begin().await?;
    users::Entity::insert(users::ActiveModel::from(user))
        .exec_without_returning(&txn)
        .await
        .map_err(WriteError::from_db)?;
    record_event(&txn, &event).await?;
    txn.commit().await?;
    Ok(())
}

/// Writes the changed columns of an account; a taken e-mail or username is a duplicate.
///
/// A new password ends every session of the account in the same transaction: its refresh tokens
/// are revoked and its token generation moves on, so access tokens issued before are refused.
pub async fn update_user(db: &DatabaseConnection, mut change: users::ActiveModel) -> Result<users::Model, WriteError> {
    let new_password = change.password_hash.is_set();
    if new_password && let Some(generation) = change.token_generation.try_as_ref().copied() {
        change.token_generation = Set(generation.wrapping_add(1));
    }
    let txn = db.begin().await?;
    let updated = change.update(&txn).await.map_err(WriteError::from_db)?;
    if new_password {
        revoke_refresh_tokens(&txn, updated.id, Utc::now()).await?;
    }
    record_event(&txn, &DomainEvent::new(Payload::UserUpdated(updated.facts()))).await?;
    txn.commit().await?;
    Ok(updated)
}

async fn revoke_refresh_tokens(txn: &DatabaseTransaction, user: Uuid, now: DateTime<Utc>) -> Result<(), DbErr> {
    refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::RevokedAt, Expr::value(now))
        .filter(refresh_tokens::Column::UserId.eq(user))
        .filter(refresh_tokens::Column::RevokedAt.is_null())
        .exec(txn)
        .await?;
    Ok(())
}

/// Deletes an account the way the API means it: the row stays (orders and payments refer to it),
/// it is marked deleted, and every session it has is revoked.
pub async fn delete_user(db: &DatabaseConnection, user: &users::Model, now: DateTime<Utc>) -> Result<(), WriteError> {
    let txn = db.begin().await?;
    users::Entity::update_many()
        .col_expr(users::Column::DeletedAt, Expr::value(now))
        .col_expr(users::Column::UpdatedAt, Expr::value(now))
        .col_expr(users::Column::TokenGeneration, Expr::col(users::Column::TokenGeneration).add(1))
        .filter(users::Column::Id.eq(user.id))
        .exec(&txn)
        .await?;
    revoke_refresh_tokens(&txn, user.id, now).await?;
    record_event(&txn, &DomainEvent::new(Payload::UserDeleted(user.facts()))).await?;
    txn.commit().await?;
    Ok(())
}
