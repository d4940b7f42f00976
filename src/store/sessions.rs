//! Refresh tokens: the stored half of a session. Tokens rotate (each use spends one and issues
//! the next in the same family); a spent token used again revokes its whole family, since only
//! a thief would hold an old one. The secret half is never stored, only its SHA-256.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, sea_query::Expr};
use uuid::Uuid;

use super::entities::refresh_tokens;

/// A refresh token to store.
pub struct NewSession {
    pub id: Uuid,
    pub user_id: Uuid,
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
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Spends a token atomically: of two concurrent uses only one gets `true`.
pub async fn spend(db: &DatabaseConnection, id: Uuid) -> Result<bool, DbErr> {
    let spent = refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::SpentAt, Expr::value(Utc::now()))
        .filter(refresh_tokens::Column::Id.eq(id))
        .filter(refresh_tokens::Column::SpentAt.is_null())
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
