//! The ticketing system (seed 003: Go gateway, auth, users, events, orders and payments services):
//! `/v1/login`, `/v1/logout`, `/v1/register`, `/v1/users`, `/v1/tickets` (its events),
//! `/v1/orders` (`{"event_id", "number_slot"}`) and `/v1/payments` (`{"order_id", "price"}`), with
//! its `next_token`/`previous_token` paging, which is `/api/v1`'s own.
//!
//! Its payments named no card; Boxoffice charges one, so `card_token` is required (a 422 names
//! it) unless `compat.default_card_token` is set, a migration aid. `price` is the amount in cents,
//! as `amount_cents` elsewhere.

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
    routing::{get, post},
};
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Credentials, log_in_as};
use crate::http::{
    AppState, Result,
    auth::{RegisterRequest, log_out},
    catalog::{self, EventInput, EventSearch},
    error::{ApiFormOrJson, ApiJson, ApiPath, ApiQuery},
    extract::{AccountAccess, AdminUser, AuthAttempt, AuthUser, PageParams},
    orders::{self, CreateOrder, place_order as core_place_order},
    payments::{self, CreatePayment, pay as core_pay},
    users::{self, UpdateUser, UserView},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/login", post(login))
        .route("/v1/logout", post(logout))
        .route("/v1/register", post(register))
        .route("/v1/users", get(list_users))
        .route("/v1/users/{id}", get(read_user).put(update_user))
        .route("/v1/tickets", get(list_tickets))
        .route("/v1/tickets/{id}", get(read_ticket).put(update_ticket))
        .route("/v1/orders", get(list_orders).post(place_order))
        .route("/v1/orders/{id}", get(read_order))
        .route("/v1/payments", get(list_payments).post(pay))
        .route("/v1/payments/{id}", get(read_payment))
}

#[utoipa::path(post, path = "/v1/login", tag = "compat", request_body = Credentials, security(()),
    responses((status = 200, body = super::CompatTokens), (status = 401, description = "invalid login or password")))]
pub(super) async fn login(
    State(state): State<AppState>,
    attempt: AuthAttempt,
    ApiFormOrJson(c): ApiFormOrJson<Credentials>,
) -> Result<Response> {
    log_in_as(&state, attempt, c).await
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketingLogout {
    /// Also ends this refresh token's session.
    pub refresh_token: Option<String>,
}

/// Ends the bearer token, and the session of `refresh_token` when one is sent (its original
/// log-out took no body: none is needed).
#[utoipa::path(post, path = "/v1/logout", tag = "compat", request_body = TicketingLogout, security((), ("bearer" = [])),
    responses((status = 204, description = "the session is ended")))]
pub(super) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiFormOrJson(req): ApiFormOrJson<TicketingLogout>,
) -> Result<StatusCode> {
    log_out(&state, &headers, req.refresh_token.as_deref()).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketingSignUp {
    #[schema(schema_with = crate::http::docs::schema::email)]
    pub email: String,
    /// 3 to 32 letters, digits, `_`, `-` or `.`.
    #[serde(alias = "username")]
    #[schema(schema_with = crate::http::docs::schema::username)]
    pub user_name: String,
    /// 10 to 128 characters, not a common password, not containing the username or e-mail.
    #[schema(schema_with = crate::http::docs::schema::password)]
    pub password: String,
    #[schema(schema_with = crate::http::docs::schema::name_or_null)]
    pub first_name: Option<String>,
    #[schema(schema_with = crate::http::docs::schema::name_or_null)]
    pub last_name: Option<String>,
    /// Digits, spaces and `+ - ( )`.
    #[schema(schema_with = crate::http::docs::schema::phone_or_null)]
    pub mobile_phone: Option<String>,
    /// `YYYY-MM-DD`.
    pub birth_day: Option<NaiveDate>,
}

#[utoipa::path(post, path = "/v1/register", tag = "compat", request_body = TicketingSignUp, security(()),
    responses((status = 201, body = UserView), (status = 409, description = "email_taken, username_taken")))]
pub(super) async fn register(
    State(state): State<AppState>,
    _: AuthAttempt,
    ApiFormOrJson(req): ApiFormOrJson<TicketingSignUp>,
) -> Result<Response> {
    let sign_up = RegisterRequest {
        email: req.email,
        username: req.user_name,
        password: req.password,
        first_name: req.first_name,
        last_name: req.last_name,
        mobile_phone: req.mobile_phone,
        birth_day: req.birth_day,
    };
    super::sign_up(&state, sign_up).await
}

#[utoipa::path(get, path = "/v1/users", tag = "compat", params(PageParams),
    responses((status = 200, body = crate::http::extract::Page<UserView>), (status = 403, description = "admins only")))]
pub(super) async fn list_users(
    state: State<AppState>,
    admin: AdminUser,
    page: ApiQuery<PageParams>,
) -> Result<Response> {
    users::list(state, admin, page).await
}

#[utoipa::path(get, path = "/v1/users/{id}", tag = "compat", params(("id" = Uuid, Path, description = "the user's id")),
    responses((status = 200, body = UserView), (status = 403, description = "neither that user nor an admin")))]
pub(super) async fn read_user(state: State<AppState>, user: AuthUser, id: ApiPath<Uuid>) -> Result<Response> {
    users::read(state, user, id).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketingProfile {
    /// 3 to 32 letters, digits, `_`, `-` or `.`.
    #[serde(alias = "username")]
    #[schema(schema_with = crate::http::docs::schema::username_or_null)]
    pub user_name: Option<String>,
    #[schema(schema_with = crate::http::docs::schema::name_or_null)]
    pub first_name: Option<String>,
    #[schema(schema_with = crate::http::docs::schema::name_or_null)]
    pub last_name: Option<String>,
    /// `YYYY-MM-DD`.
    pub birth_day: Option<NaiveDate>,
    /// Digits, spaces and `+ - ( )`.
    #[schema(schema_with = crate::http::docs::schema::phone_or_null)]
    pub mobile_phone: Option<String>,
}

#[utoipa::path(put, path = "/v1/users/{id}", tag = "compat", params(("id" = Uuid, Path, description = "the user's id")),
    request_body = TicketingProfile,
    responses((status = 200, body = UserView), (status = 409, description = "duplicate_user")))]
pub(super) async fn update_user(
    state: State<AppState>,
    access: AccountAccess,
    ApiJson(req): ApiJson<TicketingProfile>,
) -> Result<Response> {
    let change = UpdateUser {
        email: None,
        username: req.user_name,
        password: None,
        first_name: req.first_name,
        last_name: req.last_name,
        mobile_phone: req.mobile_phone,
        birth_day: req.birth_day,
        role: None,
    };
    users::update(state, access, ApiJson(change)).await
}

#[utoipa::path(get, path = "/v1/tickets", tag = "compat", params(EventSearch, PageParams), security(()),
    responses((status = 200, body = crate::http::extract::Page<catalog::EventView>)))]
pub(super) async fn list_tickets(state: State<AppState>, search: ApiQuery<EventSearch>) -> Result<Response> {
    catalog::list_events(state, search).await
}

#[utoipa::path(get, path = "/v1/tickets/{id}", tag = "compat", params(("id" = Uuid, Path, description = "the event's id")),
    security(()), responses((status = 200, body = catalog::EventView)))]
pub(super) async fn read_ticket(state: State<AppState>, id: ApiPath<Uuid>) -> Result<Response> {
    catalog::read_event(state, id).await
}

/// Their CMS's update of a ticket (an event): administrators, the body of `PUT /api/v1/events/{id}`.
#[utoipa::path(put, path = "/v1/tickets/{id}", tag = "compat", params(("id" = Uuid, Path, description = "the event's id")),
    request_body = EventInput,
    responses((status = 200, body = catalog::EventView), (status = 409, description = "capacity below held + sold")))]
pub(super) async fn update_ticket(
    state: State<AppState>,
    admin: AdminUser,
    id: ApiPath<Uuid>,
    body: ApiJson<EventInput>,
) -> Result<Response> {
    catalog::update_event(state, admin, id, body).await
}

#[utoipa::path(get, path = "/v1/orders", tag = "compat", params(PageParams),
    responses((status = 200, body = crate::http::extract::Page<orders::OrderView>)))]
pub(super) async fn list_orders(
    state: State<AppState>,
    user: AuthUser,
    page: ApiQuery<PageParams>,
) -> Result<Response> {
    orders::list(state, user, page).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketingOrder {
    pub event_id: Uuid,
    /// Seats, 1 to the event's `max_per_order` (at most 100).
    #[schema(minimum = 1, maximum = 100)]
    pub number_slot: i64,
}

#[utoipa::path(post, path = "/v1/orders", tag = "compat", request_body = TicketingOrder,
    params(("Idempotency-Key" = Option<String>, Header, description = "replays return the first response", pattern = "^[!-~]{1,255}$")),
    responses((status = 201, body = orders::OrderView), (status = 403, description = "queue_required"),
        (status = 404, description = "no such event"), (status = 409, description = "sold_out, person_limit")))]
pub(super) async fn place_order(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiJson(req): ApiJson<TicketingOrder>,
) -> Result<Response> {
    let order = CreateOrder { event_id: req.event_id, quantity: req.number_slot, user_id: None };
    core_place_order(&state, user, &headers, order).await
}

#[utoipa::path(get, path = "/v1/orders/{id}", tag = "compat", params(("id" = Uuid, Path, description = "the order's id")),
    responses((status = 200, body = orders::OrderView)))]
pub(super) async fn read_order(state: State<AppState>, user: AuthUser, id: ApiPath<Uuid>) -> Result<Response> {
    orders::read(state, user, id).await
}

#[utoipa::path(get, path = "/v1/payments", tag = "compat", params(PageParams),
    responses((status = 200, body = crate::http::extract::Page<payments::PaymentView>)))]
pub(super) async fn list_payments(
    state: State<AppState>,
    user: AuthUser,
    page: ApiQuery<PageParams>,
) -> Result<Response> {
    payments::list(state, user, page).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketingPayment {
    pub order_id: Uuid,
    /// The order's amount in cents.
    #[schema(minimum = 1)]
    pub price: i64,
    /// Required unless the server sets `compat.default_card_token` (the original named no card).
    /// Test cards: `tok_ok`, `tok_declined`, `tok_slow`.
    #[serde(default)]
    #[schema(schema_with = crate::http::docs::schema::card_token, required = true)]
    pub card_token: Option<String>,
}

#[utoipa::path(post, path = "/v1/payments", tag = "compat", request_body = TicketingPayment,
    params(("Idempotency-Key" = Option<String>, Header, description = "replays return the first response", pattern = "^[!-~]{1,255}$")),
    responses((status = 201, body = payments::PaymentView), (status = 404, description = "no such order"),
        (status = 409, description = "hold_expired, already_paid, payment_in_progress")))]
pub(super) async fn pay(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiJson(req): ApiJson<TicketingPayment>,
) -> Result<Response> {
    let card_token = super::card_token(&state, req.card_token)?;
    let payment = CreatePayment { order_id: req.order_id, amount_cents: req.price, card_token };
    core_pay(&state, user, &headers, payment).await
}

#[utoipa::path(get, path = "/v1/payments/{id}", tag = "compat", params(("id" = Uuid, Path, description = "the payment's id")),
    responses((status = 200, body = payments::PaymentView)))]
pub(super) async fn read_payment(state: State<AppState>, user: AuthUser, id: ApiPath<Uuid>) -> Result<Response> {
    payments::read(state, user, id).await
}
