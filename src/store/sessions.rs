//! Sessions as stored: refresh tokens, revoked access tokens and failed logins.
//!
//! Refresh tokens rotate (each use spends one and issues the next in the same family); a spent
//! token used again revokes its whole family, since only a thief would hold an old one. The
//! secret half is never stored, only its SHA-256. An access token ended early by a logout is kept
//! by `jti` until its `exp`; failed logins are kept for the lockout window (see `auth::guard`).

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    sea_query::{Expr, OnConflict},
};
use uuid::Uuid;

use super::entities::{login_failures, refresh_tokens, revoked_tokens};

/// A refresh token to store.
pub struct NewSession {
    pub id: Uuid,
    pub user_id: Uuid,
    /// The account's token generation it is issued under.
    pub generation: i32,
    pub family_id: Uuid,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(db: &DatabaseConnection, s: NewSession) -> Result<(), DbErr> {
    refresh_tokens::Entity::insert(refresh_tokens::ActiveModel {
        id: Set(s.id),
        user_id: Set(s.user_id),
        family_id: Set(s.family_id),
        token_hash: Set(s.token_hash),
        expires_at: Set(s.expires_at),
        spent_at: Set(None),
        revoked_at: Set(None),
        created_at: Set(Utc::now()),
        generation: Set(s.generation),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Spends a token atomically: of two concurrent uses only one gets `true`, and a token revoked
/// meanwhile (a password change, a logout) is not spent at all.
pub async fn spend(db: &DatabaseConnection, id: Uuid) -> Result<bool, DbErr> {
    let spent = refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::SpentAt, Expr::value(Utc::now()))
        .filter(refresh_tokens::Column::Id.eq(id))
        .filter(refresh_tokens::Column::SpentAt.is_null())
        .filter(refresh_tokens::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(spent.rows_affected == 1)
}

/// Ends every session of a family (logout, or a re-used token).
pub async fn revoke_family(db: &DatabaseConnection, family: Uuid) -> Result<(), DbErr> {
    refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(refresh_tokens::Column::FamilyId.eq(family))
        .filter(refresh_tokens::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Ends one access token before its `exp` (a logout): it stays refused until then.
pub async fn revoke_access(
    db: &DatabaseConnection,
    jti: Uuid,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let row = revoked_tokens::ActiveModel {
        jti: Set(jti),
        user_id: Set(user_id),
        expires_at: Set(expires_at),
        revoked_at: Set(Utc::now()),
    };
    // A second logout with the same token changes nothing.
    let insert = revoked_tokens::Entity::insert(row)
        .on_conflict(OnConflict::column(revoked_tokens::Column::Jti).do_nothing().to_owned())
        .exec_without_returning(db)
        .await;
    match insert {
        Ok(_) | Err(DbErr::RecordNotInserted) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Revocations recorded at or after `since` whose tokens have not expired yet.
pub async fn revoked_since(db: &DatabaseConnection, since: DateTime<Utc>) -> Result<Vec<revoked_tokens::Model>, DbErr> {
    revoked_tokens::Entity::find()
        .filter(revoked_tokens::Column::RevokedAt.gte(since))
        .filter(revoked_tokens::Column::ExpiresAt.gt(Utc::now()))
        .all(db)
        .await
}

/// Forgets revocations of tokens that have expired anyway, and login failures older than `keep`.
pub async fn purge(db: &DatabaseConnection, failures_before: DateTime<Utc>) -> Result<(), DbErr> {
    revoked_tokens::Entity::delete_many().filter(revoked_tokens::Column::ExpiresAt.lte(Utc::now())).exec(db).await?;
    login_failures::Entity::delete_many().filter(login_failures::Column::FailedAt.lt(failures_before)).exec(db).await?;
    Ok(())
}

/// One login attempt for `subject` from `address`, recorded before the password is checked (so
/// that parallel guesses all count); a success clears them.
pub async fn record_login_attempt(db: &DatabaseConnection, subject: &str, address: &str) -> Result<(), DbErr> {
    let row = login_failures::ActiveModel {
        id: Set(Uuid::now_v7()),
        subject: Set(subject.to_string()),
        failed_at: Set(Utc::now()),
        address: Set(address.to_string()),
    };
    login_failures::Entity::insert(row).exec_without_returning(db).await?;
    Ok(())
}

/// A successful login starts the count again.
pub async fn clear_login_failures(db: &DatabaseConnection, subject: &str) -> Result<(), DbErr> {
    login_failures::Entity::delete_many().filter(login_failures::Column::Subject.eq(subject)).exec(db).await?;
    Ok(())
}

/// When `subject`'s unsuccessful logins since `since` happened and from which address, oldest
/// first.
pub async fn login_failures_since(
    db: &DatabaseConnection,
    subject: &str,
    since: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, String)>, DbErr> {
    let rows = login_failures::Entity::find()
        .filter(login_failures::Column::Subject.eq(subject))
        .filter(login_failures::Column::FailedAt.gte(since))
        .order_by_asc(login_failures::Column::FailedAt)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.failed_at, r.address)).collect())
}
