//! `/notifications`: the messages Boxoffice sent the caller (or tried to), newest last, paged
//! like every list. The notifier writes them (see `actors::notifier`).

use axum::{Router, extract::State, http::StatusCode, response::Response, routing::get};
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    AppState, Result,
    error::{ApiQuery, reply},
    extract::{AuthUser, PageParams, paginate},
};
use crate::{domain::NotificationStatus, store::entities::notifications};

pub fn router() -> Router<AppState> {
    Router::new().route("/notifications", get(list))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    pub id: Uuid,
    /// `email`.
    pub channel: String,
    pub subject: String,
    pub to: String,
    pub status: NotificationStatus,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl From<notifications::Model> for NotificationView {
    fn from(n: notifications::Model) -> Self {
        Self {
            id: n.id,
            channel: n.channel,
            subject: n.subject,
            to: n.to_address,
            status: n.status,
            created_at: n.created_at,
            sent_at: n.sent_at,
        }
    }
}

/// The caller's own, administrators included: other people's mail is nobody's business here.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "users", params(PageParams),
    responses((status = 200, body = crate::http::extract::Page<NotificationView>)))]
async fn list(State(state): State<AppState>, user: AuthUser, ApiQuery(page): ApiQuery<PageParams>) -> Result<Response> {
    let select = notifications::Entity::find().filter(notifications::Column::UserId.eq(user.id));
    let page = paginate(&state.db, select, notifications::Column::Id, |n| n.id, &page).await?;
    Ok(reply(StatusCode::OK, page.map(NotificationView::from)))
}
