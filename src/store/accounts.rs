//! Writes to accounts: each change commits with its `user.*` domain event in one transaction
//! (these do not go through the committer: they change no slots).

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait, sea_query::Expr,
};

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
pub async fn update_user(db: &DatabaseConnection, change: users::ActiveModel) -> Result<users::Model, WriteError> {
    let txn = db.begin().await?;
    let updated = change.update(&txn).await.map_err(WriteError::from_db)?;
    record_event(&txn, &DomainEvent::new(Payload::UserUpdated(updated.facts()))).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Deletes an account the way the API means it: the row stays (orders and payments refer to it),
/// it is marked deleted, and every session it has is revoked.
pub async fn delete_user(db: &DatabaseConnection, user: &users::Model, now: DateTime<Utc>) -> Result<(), WriteError> {
    let txn = db.begin().await?;
    users::Entity::update_many()
        .col_expr(users::Column::DeletedAt, Expr::value(now))
        .col_expr(users::Column::UpdatedAt, Expr::value(now))
        .filter(users::Column::Id.eq(user.id))
        .exec(&txn)
        .await?;
    refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::RevokedAt, Expr::value(now))
        .filter(refresh_tokens::Column::UserId.eq(user.id))
        .filter(refresh_tokens::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    record_event(&txn, &DomainEvent::new(Payload::UserDeleted(user.facts()))).await?;
    txn.commit().await?;
    Ok(())
}
