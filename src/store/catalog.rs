//! Writes to the catalogue: categories and events, each with its domain event in one
//! transaction. Later changes to an event go through its inventory actor (capacity is its rule).

use sea_orm::{DatabaseConnection, EntityTrait, TransactionTrait};

use super::{
    WriteError,
    entities::{categories, events},
    record_event,
};
use crate::domain::{DomainEvent, Payload};

/// Inserts a category with `category.created`; a taken name is [`WriteError::Duplicate`].
pub async fn insert_category(db: &DatabaseConnection, row: categories::Model) -> Result<(), WriteError> {
    let created = DomainEvent::new(Payload::CategoryCreated(row.facts()));
    let txn = db.begin().await?;
    categories::Entity::insert(categories::ActiveModel::from(row))
        .exec_without_returning(&txn)
        .await
        .map_err(WriteError::from_db)?;
    record_event(&txn, &created).await?;
    txn.commit().await?;
    Ok(())
}

/// Inserts an event with `event.created`.
pub async fn insert_event(db: &DatabaseConnection, event: events::Model) -> Result<(), WriteError> {
    let created = DomainEvent::new(Payload::EventCreated(event.facts()));
    let txn = db.begin().await?;
    events::Entity::insert(events::ActiveModel::from(event)).exec_without_returning(&txn).await?;
    record_event(&txn, &created).await?;
    txn.commit().await?;
    Ok(())
}
