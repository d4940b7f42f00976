//! `/payments`: paying an order (through its saga) and reading payments with their history.

use std::time::Duration;

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
    routing::get,
};
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    AppState, Error, Result,
    error::{ApiJson, ApiPath, ApiQuery, reply},
    extract::{AuthUser, PageParams, idempotent, paginate},
    orders::visible_order,
};
use crate::{
    actors::saga::PayRequest,
    domain::PaymentStatus,
    store::entities::{payment_status_history, payments},
};

pub fn router() -> Router<AppState> {
    Router::new().route("/payments", get(list).post(create)).route("/payments/{id}", get(read))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePayment {
    pub order_id: Uuid,
    /// The order's amount, to the cent.
    #[schema(minimum = 1)]
    pub amount_cents: i64,
    /// A card token from the payment provider. Test cards: `tok_ok`, `tok_declined`, `tok_slow`.
    #[schema(schema_with = crate::http::docs::schema::card_token)]
    pub card_token: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatusChange {
    pub status: PaymentStatus,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentView {
    pub id: Uuid,
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub amount_cents: i64,
    pub currency: String,
    pub status: PaymentStatus,
    pub failure_reason: Option<String>,
    pub provider_ref: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<StatusChange>>,
}

impl PaymentView {
    fn new(p: payments::Model, history: Option<Vec<payment_status_history::Model>>) -> Self {
        Self {
            id: p.id,
            order_id: p.order_id,
            user_id: p.user_id,
            amount_cents: p.amount_cents,
            currency: p.currency,
            status: p.status,
            failure_reason: p.failure_reason,
            provider_ref: p.provider_ref,
            created_at: p.created_at,
            updated_at: p.updated_at,
            history: history.map(|h| {
                h.into_iter().map(|c| StatusChange { status: c.status, detail: c.detail, at: c.at }).collect()
            }),
        }
    }
}

async fn payment_view(state: &AppState, p: payments::Model) -> Result<PaymentView> {
    let history = payment_status_history::Entity::find()
        .filter(payment_status_history::Column::PaymentId.eq(p.id))
        .order_by_asc(payment_status_history::Column::Id)
        .all(&state.db)
        .await?;
    Ok(PaymentView::new(p, Some(history)))
}

#[utoipa::path(post, path = "/api/v1/payments", tag = "payments", request_body = CreatePayment,
    params(("Idempotency-Key" = Option<String>, Header, description = "replays return the first response", pattern = "^[!-~]{1,255}$")),
    responses((status = 201, body = PaymentView, description = "status succeeded or failed"), (status = 403, description = "someone else's order"), (status = 404, description = "no such order"),
              (status = 409, description = "hold_expired, already_paid, payment_in_progress"), (status = 422)))]
async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreatePayment>,
) -> Result<Response> {
    pay(&state, user, &headers, req).await
}

/// Pays an order through its saga: `POST /api/v1/payments`, and every other API's payment.
pub async fn pay(state: &AppState, user: AuthUser, headers: &HeaderMap, req: CreatePayment) -> Result<Response> {
    if req.amount_cents <= 0 {
        return Err(Error::invalid("amount_cents", "must be positive"));
    }
    let token = req.card_token.clone();
    let well_formed = token.strip_prefix("tok_").is_some_and(|rest| {
        (1..=60).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    });
    if !well_formed {
        return Err(Error::invalid("card_token", "must be a card token such as tok_ok"));
    }
    let order = visible_order(state, user, req.order_id).await?;
    if order.user_id != user.id {
        return Err(Error::forbidden("only the customer who placed an order can pay it"));
    }
    idempotent(state, user.id, "payments", headers, &req, || async {
        let pay = PayRequest { payment_id: Uuid::now_v7(), amount_cents: req.amount_cents, card_token: token.clone() };
        // A charge may take as long as the slowest provider answer, plus the usual margin.
        let timeout = Duration::from_millis(state.config.payment.slow_ms) + state.config.actor_timeout() * 2;
        let payment_id = state.orders.pay((order.id, order.event_id), pay.clone(), timeout).await??;
        let p = payments::Entity::find_by_id(payment_id)
            .one(&state.db)
            .await?
            .ok_or_else(|| Error::not_found("payment"))?;
        Ok((StatusCode::CREATED, payment_view(state, p).await?))
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/payments", tag = "payments", params(PageParams),
    responses((status = 200, body = crate::http::extract::Page<PaymentView>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Response> {
    let mut select = payments::Entity::find();
    if !user.is_admin() {
        select = select.filter(payments::Column::UserId.eq(user.id));
    }
    let page = paginate(&state.db, select, payments::Column::Id, |p| p.id, &page).await?;
    Ok(reply(StatusCode::OK, page.map(|p| PaymentView::new(p, None))))
}

#[utoipa::path(get, path = "/api/v1/payments/{id}", params(("id" = Uuid, Path, description = "the payment's id")), tag = "payments", responses((status = 200, body = PaymentView), (status = 404)))]
pub(crate) async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response> {
    let p = payments::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .filter(|p| user.is_admin() || p.user_id == user.id)
        .ok_or_else(|| Error::not_found("payment"))?;
    Ok(reply(StatusCode::OK, payment_view(&state, p).await?))
}
