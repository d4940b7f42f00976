//! `/orders` and `/registrations`: booking. A new order is a hold granted by the event's
//! inventory actor (201 only once it is durable); payment and cancellation go through the
//! order's saga.

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
    routing::{get, post},
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
};
use crate::{
    actors::inventory::{InventoryError, Reservation, ReserveRequest},
    domain::{OrderKind, OrderStatus},
    error::Unavailable,
    store::entities::{orders, tickets, users},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders", get(list).post(create))
        .route("/orders/{id}", get(read))
        .route("/orders/{id}/cancel", post(cancel))
        .route("/registrations", post(register))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrder {
    pub event_id: Uuid,
    /// Seats, 1 to the event's `max_per_order` (at most 100).
    #[schema(minimum = 1, maximum = 100)]
    pub quantity: i64,
    /// Whom the seats are for, when not the caller: staff and administrators only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
}

/// `{event_id}`, or camelCase `{eventId}` as the original clients send it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRegistration {
    #[serde(alias = "eventId")]
    pub event_id: Uuid,
    /// Whom to register, when not the caller: staff and administrators only.
    #[serde(default, alias = "userId", skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TicketView {
    pub id: Uuid,
    pub code: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderView {
    pub id: Uuid,
    pub event_id: Uuid,
    pub user_id: Uuid,
    pub kind: OrderKind,
    pub status: OrderStatus,
    pub quantity: i32,
    pub amount_cents: i64,
    pub currency: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub refund_cents: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tickets: Option<Vec<TicketView>>,
}

impl OrderView {
    fn new(o: orders::Model, tickets: Option<Vec<tickets::Model>>) -> Self {
        Self {
            id: o.id,
            event_id: o.event_id,
            user_id: o.user_id,
            kind: o.kind,
            status: o.status,
            quantity: o.quantity,
            amount_cents: o.amount_cents,
            currency: o.currency,
            expires_at: o.expires_at,
            refund_cents: o.refund_cents,
            created_at: o.created_at,
            updated_at: o.updated_at,
            tickets: tickets.map(|ts| ts.into_iter().map(|t| TicketView { id: t.id, code: t.code }).collect()),
        }
    }

    /// A new order as granted by its inventory: what `GET /orders/{id}` will show for it now.
    fn reserved(r: Reservation, quantity: u32, event_id: Uuid, user_id: Uuid) -> Self {
        Self {
            id: r.order_id,
            event_id,
            user_id,
            kind: r.kind,
            status: r.status,
            quantity: quantity as i32,
            amount_cents: r.amount_cents,
            currency: r.currency,
            expires_at: r.expires_at,
            refund_cents: None,
            created_at: r.created_at,
            updated_at: r.created_at,
            tickets: None,
        }
    }
}

fn reservation_error(e: InventoryError) -> Error {
    match e {
        InventoryError::SoldOut { available } => {
            Error::conflict("sold_out", format!("not enough seats left ({available} available)"))
        }
        InventoryError::TooMany { max } => Error::invalid("quantity", format!("must be between 1 and {max}")),
        InventoryError::PersonLimit { max, has } => Error::conflict(
            "person_limit",
            format!("one person may hold and buy at most {max} seats for this event; you have {has}"),
        ),
        InventoryError::AmountOutOfRange => Error::invalid("quantity", "the order's total is out of range"),
        InventoryError::NotFree => {
            Error::conflict("not_free", "registration is for free events; this one needs an order and a payment")
        }
        InventoryError::AlreadyRegistered => already_registered(),
        InventoryError::QueueRequired => Error::Forbidden {
            code: "queue_required",
            message: "this event admits buyers through its waiting room: join its queue and book once admitted".into(),
        },
        other => Unavailable::because("the event's inventory", other).into(),
    }
}

async fn reserve(
    state: &AppState,
    user_id: Uuid,
    event_id: Uuid,
    quantity: u32,
    registration: bool,
) -> Result<(StatusCode, OrderView)> {
    let req = ReserveRequest { order_id: Uuid::now_v7(), user_id, quantity, registration };
    let reservation = state.inventories.reserve(event_id, req).await?.map_err(reservation_error)?;
    Ok((StatusCode::CREATED, OrderView::reserved(reservation, quantity, event_id, user_id)))
}

/// Whom a booking is for: the caller, or a live account staff or an administrator named.
async fn booked_for(state: &AppState, caller: AuthUser, named: Option<Uuid>) -> Result<Uuid> {
    match named {
        None => Ok(caller.id),
        Some(id) if id == caller.id => Ok(id),
        Some(_) if !caller.may_book_for_others() => {
            Err(Error::forbidden("only staff and administrators may book for someone else"))
        }
        Some(id) => {
            let live = users::Entity::find_by_id(id).filter(users::Column::DeletedAt.is_null()).one(&state.db).await?;
            live.map(|u| u.id).ok_or_else(|| Error::not_found("user"))
        }
    }
}

#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = CreateOrder,
    params(("Idempotency-Key" = Option<String>, Header, description = "replays return the first response", pattern = "^[!-~]{1,255}$")),
    responses((status = 201, body = OrderView), (status = 403, description = "queue_required; or naming someone else without the staff role"),
        (status = 404, description = "no such event or user"), (status = 409, description = "sold_out, person_limit"), (status = 422)))]
async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateOrder>,
) -> Result<Response> {
    place_order(&state, user, &headers, req).await
}

/// A hold on seats: `POST /api/v1/orders`, and what every other API's "place an order" maps to.
pub async fn place_order(state: &AppState, user: AuthUser, headers: &HeaderMap, req: CreateOrder) -> Result<Response> {
    let (for_user, quantity) = order_terms(state, user, &req).await?;
    idempotent(state, user.id, "orders", headers, &req, || reserve(state, for_user, req.event_id, quantity, false))
        .await
}

/// [`place_order`] without an `Idempotency-Key` (nothing to replay), answering the view itself:
/// the same checks and the same hold, for an API that builds its own message from it (gRPC)
/// instead of reading it back out of a JSON body.
pub async fn place_order_view(state: &AppState, user: AuthUser, req: CreateOrder) -> Result<OrderView> {
    let (for_user, quantity) = order_terms(state, user, &req).await?;
    Ok(reserve(state, for_user, req.event_id, quantity, false).await?.1)
}

/// Whom an order is for and how many seats, checked.
async fn order_terms(state: &AppState, user: AuthUser, req: &CreateOrder) -> Result<(Uuid, u32)> {
    if !(1..=100).contains(&req.quantity) {
        return Err(Error::invalid("quantity", "must be between 1 and 100"));
    }
    Ok((booked_for(state, user, req.user_id).await?, req.quantity as u32))
}

#[utoipa::path(post, path = "/api/v1/registrations", tag = "orders", request_body = CreateRegistration,
    params(("Idempotency-Key" = Option<String>, Header, description = "replays return the first response", pattern = "^[!-~]{1,255}$")),
    responses((status = 201, body = OrderView), (status = 403, description = "queue_required; or naming someone else without the staff role"),
        (status = 404, description = "no such event or user"), (status = 409, description = "sold out, not free or already registered")))]
async fn register(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateRegistration>,
) -> Result<Response> {
    register_free(&state, user, &headers, req).await
}

/// A free registration: `POST /api/v1/registrations`, and what the other APIs' registrations
/// map to.
pub async fn register_free(
    state: &AppState,
    user: AuthUser,
    headers: &HeaderMap,
    req: CreateRegistration,
) -> Result<Response> {
    let for_user = booked_for(state, user, req.user_id).await?;
    idempotent(state, user.id, "registrations", headers, &req, || async {
        // One registration per person and event: the event's inventory (its one writer, on
        // whichever node owns it) refuses a second one before anything is written, concurrent
        // clicks included, so a duplicate never reaches the unique index
        // `uq_orders_confirmed_registration` (where it would fail a whole group commit, other
        // people's holds too).
        reserve(state, for_user, req.event_id, 1, true).await
    })
    .await
}

fn already_registered() -> Error {
    Error::conflict("already_registered", "you are already registered for this event")
}

#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", params(PageParams),
    responses((status = 200, body = crate::http::extract::Page<OrderView>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Response> {
    let mut select = orders::Entity::find();
    if !user.is_admin() {
        select = select.filter(orders::Column::UserId.eq(user.id));
    }
    let page = paginate(&state.db, select, orders::Column::Id, |o| o.id, &page).await?;
    Ok(reply(StatusCode::OK, page.map(|o| OrderView::new(o, None))))
}

/// The order if the caller may see it; someone else's order is a 404, not a 403, so ids
/// cannot be probed.
pub async fn visible_order(state: &AppState, user: AuthUser, id: Uuid) -> Result<orders::Model> {
    orders::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .filter(|o| user.is_admin() || o.user_id == user.id)
        .ok_or_else(|| Error::not_found("order"))
}

async fn order_view(state: &AppState, o: orders::Model) -> Result<OrderView> {
    let tickets = if o.status == OrderStatus::Confirmed {
        Some(
            tickets::Entity::find()
                .filter(tickets::Column::OrderId.eq(o.id))
                .order_by_asc(tickets::Column::Id)
                .all(&state.db)
                .await?,
        )
    } else {
        None
    };
    Ok(OrderView::new(o, tickets))
}

#[utoipa::path(get, path = "/api/v1/orders/{id}", params(("id" = Uuid, Path, description = "the order's id")), tag = "orders", responses((status = 200, body = OrderView), (status = 404)))]
pub(crate) async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response> {
    let o = visible_order(&state, user, id).await?;
    Ok(reply(StatusCode::OK, order_view(&state, o).await?))
}

#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", params(("id" = Uuid, Path, description = "the order's id")), tag = "orders",
    responses((status = 200, body = OrderView), (status = 409, description = "wrong state")))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response> {
    let o = visible_order(&state, user, id).await?;
    state.orders.cancel((o.id, o.event_id)).await??;
    let o = visible_order(&state, user, id).await?;
    Ok(reply(StatusCode::OK, order_view(&state, o).await?))
}
