//! `/audit-logs`: the audit trail of every domain event (admins only), read from MongoDB when
//! `mongodb.url` is set and from the outbox table otherwise (see `actors::auditor`).

use axum::{Router, extract::State, http::StatusCode, response::Response, routing::get};
use chrono::{DateTime, Utc};
use mongodb::bson::oid::ObjectId;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    AppState, Error, Result,
    error::{ApiQuery, reply},
    extract::{AdminUser, Page, PageParams, decode_cursor, encode_cursor, paginate},
};
use crate::{
    domain::EventType,
    error::Unavailable,
    store::{entities::outbox, mongo::MongoAuditLog},
};

pub fn router() -> Router<AppState> {
    Router::new().route("/audit-logs", get(list))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this domain event type, e.g. `order.confirmed`.
    #[param(schema_with = event_types)]
    pub event_type: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    pub page: PageParams,
}

/// The domain event types there are: the values `event_type` accepts.
fn event_types() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(EventType::ALL.iter().map(|t| t.as_str())))
        .build()
}

/// The audit log's paging: [`PageParams`], with tokens of its own kind (positions in the log).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // The document's description of the parameters; they parse as `PageParams`.
struct AuditPage {
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    #[param(format = "audit-page-token")]
    next_token: Option<String>,
    #[param(format = "audit-page-token")]
    previous_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditLogView {
    pub event_type: String,
    /// The domain event's payload. Its `eventId`, where it has one, is the *booked* event (a
    /// concert, a workshop), not this record's `event_id`.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// The id of the domain event itself (the message id: CloudEvents `ce_id`), unique per record.
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// When the audit log recorded it: on MongoDB, when the Auditor received it; otherwise the
    /// event was recorded with the change itself, and this equals `occurred_at`.
    pub received_at: DateTime<Utc>,
}

#[utoipa::path(get, path = "/api/v1/audit-logs", tag = "audit", params(AuditQuery, AuditPage),
    responses((status = 200, body = crate::http::extract::Page<AuditLogView>), (status = 403)))]
async fn list(State(state): State<AppState>, _: AdminUser, ApiQuery(q): ApiQuery<AuditQuery>) -> Result<Response> {
    let event_type = q
        .event_type
        .as_deref()
        .map(|t| EventType::parse(t).ok_or_else(|| Error::invalid("event_type", "not a known domain event type")))
        .transpose()?;
    if let Some(log) = &state.audit_log {
        return Ok(reply(StatusCode::OK, mongo_page(log, event_type, &q.page).await?));
    }
    let mut select = outbox::Entity::find();
    if let Some(t) = event_type {
        select = select.filter(outbox::Column::EventType.eq(t.as_str()));
    }
    let page = paginate(&state.db, select, outbox::Column::Id, |row| row.id, &q.page).await?;
    Ok(reply(
        StatusCode::OK,
        page.map(|row| AuditLogView {
            event_type: row.event_type,
            data: serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::Null),
            event_id: row.event_id,
            occurred_at: row.occurred_at,
            received_at: row.occurred_at,
        }),
    ))
}

/// The same keyset pagination as the SQL lists, on MongoDB's `_id` (insertion order).
async fn mongo_page(log: &MongoAuditLog, t: Option<EventType>, params: &PageParams) -> Result<Page<AuditLogView>> {
    let limit = params.checked_limit()?;
    let oid = |token: Option<&str>, field: &str| -> Result<Option<ObjectId>> {
        token.map(|t| decode_cursor::<String>(t, field)).transpose()?.map_or(Ok(None), |hex| {
            ObjectId::parse_str(&hex).map(Some).map_err(|_| Error::invalid(field, "not a token this API issued"))
        })
    };
    let after = oid(params.after(), "next_token")?;
    let before = oid(params.before(), "previous_token")?;
    let mut rows = log
        .page(t.map(EventType::as_str), after, before, limit as i64 + 1)
        .await
        .map_err(|e| Unavailable::because("the audit log", e))?;
    let more = rows.len() as u64 > limit;
    let backwards = before.is_some() && after.is_none();
    if more {
        // The extra row is the one furthest from the cursor.
        if backwards {
            rows.remove(0)
        } else {
            rows.pop().expect("more than limit rows")
        };
    }
    let first = rows.first().map(|r| encode_cursor(r.id.to_hex()));
    let last = rows.last().map(|r| encode_cursor(r.id.to_hex()));
    let (next_token, previous_token) = if backwards {
        (last, if more { first } else { None })
    } else {
        (if more { last } else { None }, if after.is_some() { first } else { None })
    };
    let items = rows
        .into_iter()
        .map(|r| AuditLogView {
            event_type: r.event_type,
            data: r.data,
            event_id: r.event_id,
            occurred_at: r.occurred_at,
            received_at: r.received_at,
        })
        .collect();
    Ok(Page { items, next_token, previous_token })
}
