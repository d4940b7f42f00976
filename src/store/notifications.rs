//! The `notifications` rows: what the notifier sent or tried to send, and how it went. Each change
//! is one statement, written through the committer (or, on PostgreSQL, in the notifier's locked
//! transaction that records the send), so the record and the send never disagree for longer
//! than one COMMIT.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, DbBackend, EntityTrait, QueryFilter, QueryTrait, Statement,
    sea_query::{Expr, OnConflict},
};
use uuid::Uuid;

use super::entities::notifications;
use crate::domain::NotificationStatus;

/// One change to a notification's row.
#[derive(Debug, Clone)]
pub enum NotificationChange {
    /// About to send: the row, unless a try before this one wrote it already.
    Pending(notifications::Model),
    /// The mail server took it.
    Sent { id: Uuid, at: DateTime<Utc> },
    /// It failed, unless an earlier try had sent it.
    Failed { id: Uuid, error: String },
}

impl NotificationChange {
    pub fn statement(&self, backend: DbBackend) -> Statement {
        match self {
            Self::Pending(row) => notifications::Entity::insert(notifications::ActiveModel::from(row.clone()))
                .on_conflict(OnConflict::column(notifications::Column::Id).do_nothing().to_owned())
                .build(backend),
            Self::Sent { id, at } => notifications::Entity::update_many()
                .col_expr(notifications::Column::Status, Expr::value(NotificationStatus::Sent.as_str()))
                .col_expr(notifications::Column::SentAt, Expr::value(*at))
                .col_expr(notifications::Column::Error, Expr::value(Option::<String>::None))
                .filter(notifications::Column::Id.eq(*id))
                .build(backend),
            Self::Failed { id, error } => notifications::Entity::update_many()
                .col_expr(notifications::Column::Status, Expr::value(NotificationStatus::Failed.as_str()))
                .col_expr(notifications::Column::Error, Expr::value(error.clone()))
                .filter(notifications::Column::Id.eq(*id))
                .filter(notifications::Column::Status.ne(NotificationStatus::Sent.as_str()))
                .build(backend),
        }
    }
}
