//! `/audit-logs`: the audit trail of every domain event (admins only).

use axum::{Router, extract::State, http::StatusCode, response::Response, routing::get};
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    AppState, Error, Result,
    error::{ApiQuery, reply},
    extract::{AuthUser, PageParams, paginate},
};
use crate::{domain::EventType, store::entities::audit_logs};

pub fn router() -> Router<AppState> {
    Router::new().route("/audit-logs", get(list))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Only this domain event type, e.g. `order.confirmed`.
    pub event_type: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    pub page: PageParams,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditLogView {
    pub event_type: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
}

#[utoipa::path(get, path = "/api/v1/audit-logs", tag = "audit", params(AuditQuery, PageParams),
    responses((status = 200, body = crate::http::extract::Page<AuditLogView>), (status = 403)))]
async fn list(State(state): State<AppState>, user: AuthUser, ApiQuery(q): ApiQuery<AuditQuery>) -> Result<Response> {
    user.require_admin()?;
    let mut select = audit_logs::Entity::find();
    if let Some(t) = q.event_type.as_deref() {
        let t = EventType::parse(t).ok_or_else(|| Error::invalid("event_type", "not a known domain event type"))?;
        select = select.filter(audit_logs::Column::EventType.eq(t.as_str()));
    }
    let page = paginate(&state.db, select, audit_logs::Column::Id, |a| a.id, &q.page).await?;
    Ok(reply(
        StatusCode::OK,
        page.map(|a| AuditLogView {
            event_type: a.event_type,
            data: serde_json::from_str(&a.data).unwrap_or(serde_json::Value::Null),
            event_id: a.event_id,
            occurred_at: a.occurred_at,
            received_at: a.received_at,
        }),
    ))
}
