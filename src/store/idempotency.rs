//! The `Idempotency-Key` protocol's storage: one row per `(user, route, key)` claims the key
//! for the first request, remembers the request's hash, and later its answer.
//!
//! Failures are not remembered ([`Claimed::release`]), so a request that failed (a 503, say) may be
//! retried with the same key. A key whose first request never stored its answer (the process
//! died in between, or the request timed out) is abandoned once it is older than
//! `abandoned_after`: no request runs longer than that, so the next one with the same key and
//! body takes it over. The HTTP edge (`http::extract::idempotent`) turns the outcomes into
//! responses.

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, DeleteMany, EntityTrait, QueryFilter, sea_query::Expr,
};
use uuid::Uuid;

use super::{entities::idempotency_keys, is_unique_violation};

/// What a request finds when it presents its key.
#[derive(Debug)]
pub enum Claim {
    /// The key is this request's: run it, then [`Claimed::complete`] or [`Claimed::release`].
    Fresh(Claimed),
    /// A request with this key and body was answered: the same answer again.
    Replay { status: u16, body: String },
    /// The key was used with another body.
    OtherBody,
    /// The first request with this key is still running.
    InProgress,
    /// The first request failed and gave the key back between our insert and our read.
    JustReleased,
}

/// A key this request holds.
#[derive(Debug)]
pub struct Claimed {
    user: Uuid,
    route: String,
    key: String,
}

/// Claims `key` for a request with body hash `hash`.
pub async fn claim(
    db: &DatabaseConnection,
    user: Uuid,
    route: &str,
    key: &str,
    hash: &str,
    abandoned_after: chrono::Duration,
) -> Result<Claim, DbErr> {
    let row = idempotency_keys::ActiveModel {
        user_id: Set(user),
        route: Set(route.to_string()),
        key: Set(key.to_string()),
        request_hash: Set(hash.to_string()),
        status_code: Set(None),
        response_body: Set(None),
        created_at: Set(Utc::now()),
    };
    let claimed = Claimed { user, route: route.to_string(), key: key.to_string() };
    let mut took_over = false;
    loop {
        match idempotency_keys::Entity::insert(row.clone()).exec_without_returning(db).await {
            Ok(_) => return Ok(Claim::Fresh(claimed)),
            Err(e) if is_unique_violation(&e) => {}
            Err(e) => return Err(e),
        }
        let seen = idempotency_keys::Entity::find_by_id((user, route.to_string(), key.to_string())).one(db).await?;
        let Some(seen) = seen else { return Ok(Claim::JustReleased) };
        if seen.request_hash != hash {
            return Ok(Claim::OtherBody);
        }
        if let (Some(status), Some(body)) = (seen.status_code, seen.response_body) {
            return Ok(Claim::Replay { status: status as u16, body });
        }
        let cutoff = Utc::now() - abandoned_after;
        if !took_over && seen.created_at < cutoff {
            // Delete only if still unanswered and old; of two retries racing here one deletes, and
            // of their inserts one wins: the other sees a fresh row and is told it is in progress.
            let gone = claimed
                .rows()
                .filter(idempotency_keys::Column::StatusCode.is_null())
                .filter(idempotency_keys::Column::CreatedAt.lt(cutoff))
                .exec(db)
                .await?;
            if gone.rows_affected == 1 {
                tracing::warn!(route, key, since = %seen.created_at, "taking over an abandoned idempotency key");
                took_over = true;
                continue;
            }
        }
        return Ok(Claim::InProgress);
    }
}

impl Claimed {
    fn rows(&self) -> DeleteMany<idempotency_keys::Entity> {
        idempotency_keys::Entity::delete_many()
            .filter(idempotency_keys::Column::UserId.eq(self.user))
            .filter(idempotency_keys::Column::Route.eq(self.route.as_str()))
            .filter(idempotency_keys::Column::Key.eq(self.key.as_str()))
    }

    /// Remembers the answer, for replays.
    pub async fn complete(self, db: &DatabaseConnection, status: u16, body: String) -> Result<(), DbErr> {
        idempotency_keys::Entity::update_many()
            .col_expr(idempotency_keys::Column::StatusCode, Expr::value(i32::from(status)))
            .col_expr(idempotency_keys::Column::ResponseBody, Expr::value(body))
            .filter(idempotency_keys::Column::UserId.eq(self.user))
            .filter(idempotency_keys::Column::Route.eq(self.route.as_str()))
            .filter(idempotency_keys::Column::Key.eq(self.key.as_str()))
            .exec(db)
            .await?;
        Ok(())
    }

    /// Gives the key back after a failure, so the request may be retried with it.
    pub async fn release(self, db: &DatabaseConnection) -> Result<(), DbErr> {
        self.rows().exec(db).await.map(|_| ())
    }
}
