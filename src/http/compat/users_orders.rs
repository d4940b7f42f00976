//! The users and orders services (seed 004: Node and Express over NATS, a Postman collection):
//! `POST /api/users`, `POST /api/users/login`, `GET`/`PUT /api/users/{id}` (the owner or an
//! admin), `POST /api/orders`, `GET /api/orders/{id}`, and `POST /api/orders/{id}`, which cancels.
//! Bodies are `/api/v1`'s, with the camelCase names a JavaScript client sends also accepted.

use axum::{
    Router,
    extract::State,
    http::HeaderMap,
    response::Response,
    routing::{get, post},
};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Credentials, log_in_as};
use crate::http::{
    AppState, Result,
    auth::RegisterRequest,
    error::{ApiJson, ApiPath},
    extract::{AccountAccess, AuthAttempt, AuthUser},
    orders::{self, CreateOrder, place_order as core_place_order},
    users::{self, UpdateUser, UserView},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/users", post(create_user_route))
        .route("/api/users/login", post(login))
        .route("/api/users/{id}", get(read_user).put(update_user))
        .route("/api/orders", post(place_order))
        .route("/api/orders/{id}", get(read_order).post(cancel_order))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[schema(schema_with = crate::http::docs::schema::email)]
    pub email: String,
    /// 3 to 32 letters, digits, `_`, `-` or `.`.
    #[serde(alias = "userName", alias = "user_name")]
    #[schema(schema_with = crate::http::docs::schema::username)]
    pub username: String,
    /// 10 to 128 characters, not a common password, not containing the username or e-mail.
    #[schema(schema_with = crate::http::docs::schema::password)]
    pub password: String,
    #[serde(alias = "firstName")]
    #[schema(schema_with = crate::http::docs::schema::name_or_null)]
    pub first_name: Option<String>,
    #[serde(alias = "lastName")]
    #[schema(schema_with = crate::http::docs::schema::name_or_null)]
    pub last_name: Option<String>,
    /// Digits, spaces and `+ - ( )`.
    #[serde(alias = "mobilePhone", alias = "phone")]
    #[schema(schema_with = crate::http::docs::schema::phone_or_null)]
    pub mobile_phone: Option<String>,
}

#[utoipa::path(post, path = "/api/users", tag = "compat", request_body = NewUser, security(()),
    responses((status = 201, body = UserView), (status = 409, description = "email_taken, username_taken")))]
pub(super) async fn create_user_route(
    State(state): State<AppState>,
    _: AuthAttempt,
    ApiJson(req): ApiJson<NewUser>,
) -> Result<Response> {
    let sign_up = RegisterRequest {
        email: req.email,
        username: req.username,
        password: req.password,
        first_name: req.first_name,
        last_name: req.last_name,
        mobile_phone: req.mobile_phone,
        birth_day: None,
    };
    super::sign_up(&state, sign_up).await
}

#[utoipa::path(post, path = "/api/users/login", tag = "compat", request_body = Credentials, security(()),
    responses((status = 200, body = super::CompatTokens), (status = 401, description = "invalid login or password")))]
pub(super) async fn login(
    State(state): State<AppState>,
    attempt: AuthAttempt,
    ApiJson(c): ApiJson<Credentials>,
) -> Result<Response> {
    log_in_as(&state, attempt, c).await
}

#[utoipa::path(get, path = "/api/users/{id}", tag = "compat", params(("id" = Uuid, Path, description = "the user's id")),
    responses((status = 200, body = UserView), (status = 403, description = "neither that user nor an admin")))]
pub(super) async fn read_user(state: State<AppState>, user: AuthUser, id: ApiPath<Uuid>) -> Result<Response> {
    users::read(state, user, id).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    #[schema(schema_with = crate::http::docs::schema::email_or_null)]
    pub email: Option<String>,
    /// 3 to 32 letters, digits, `_`, `-` or `.`.
    #[serde(alias = "userName", alias = "user_name")]
    #[schema(schema_with = crate::http::docs::schema::username_or_null)]
    pub username: Option<String>,
    /// 10 to 128 characters, not a common password, not containing the username or e-mail.
    #[schema(schema_with = crate::http::docs::schema::password_or_null)]
    pub password: Option<String>,
    #[serde(alias = "firstName")]
    #[schema(schema_with = crate::http::docs::schema::name_or_null)]
    pub first_name: Option<String>,
    #[serde(alias = "lastName")]
    #[schema(schema_with = crate::http::docs::schema::name_or_null)]
    pub last_name: Option<String>,
    /// Digits, spaces and `+ - ( )`.
    #[serde(alias = "mobilePhone", alias = "phone")]
    #[schema(schema_with = crate::http::docs::schema::phone_or_null)]
    pub mobile_phone: Option<String>,
}

#[utoipa::path(put, path = "/api/users/{id}", tag = "compat", params(("id" = Uuid, Path, description = "the user's id")),
    request_body = UserChange,
    responses((status = 200, body = UserView), (status = 403, description = "neither that user nor an admin"),
        (status = 409, description = "duplicate_user")))]
pub(super) async fn update_user(
    state: State<AppState>,
    access: AccountAccess,
    ApiJson(req): ApiJson<UserChange>,
) -> Result<Response> {
    let change = UpdateUser {
        email: req.email,
        username: req.username,
        password: req.password,
        first_name: req.first_name,
        last_name: req.last_name,
        mobile_phone: req.mobile_phone,
        birth_day: None,
        role: None,
    };
    users::update(state, access, ApiJson(change)).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    #[serde(alias = "eventId")]
    pub event_id: Uuid,
    /// Seats, 1 to the event's `max_per_order` (at most 100); 1 when absent.
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 100)]
    pub quantity: i64,
}

fn one() -> i64 {
    1
}

#[utoipa::path(post, path = "/api/orders", tag = "compat", request_body = NewOrder,
    params(("Idempotency-Key" = Option<String>, Header, description = "replays return the first response", pattern = "^[!-~]{1,255}$")),
    responses((status = 201, body = orders::OrderView), (status = 403, description = "queue_required"),
        (status = 404, description = "no such event"), (status = 409, description = "sold_out, person_limit")))]
pub(super) async fn place_order(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiJson(req): ApiJson<NewOrder>,
) -> Result<Response> {
    core_place_order(
        &state,
        user,
        &headers,
        CreateOrder { event_id: req.event_id, quantity: req.quantity, user_id: None },
    )
    .await
}

#[utoipa::path(get, path = "/api/orders/{id}", tag = "compat", params(("id" = Uuid, Path, description = "the order's id")),
    responses((status = 200, body = orders::OrderView)))]
pub(super) async fn read_order(state: State<AppState>, user: AuthUser, id: ApiPath<Uuid>) -> Result<Response> {
    orders::read(state, user, id).await
}

/// Cancels the order, as its `POST /api/orders/:id` did.
#[utoipa::path(post, path = "/api/orders/{id}", tag = "compat", params(("id" = Uuid, Path, description = "the order's id")),
    responses((status = 200, body = orders::OrderView), (status = 409, description = "order_not_cancellable")))]
pub(super) async fn cancel_order(state: State<AppState>, user: AuthUser, id: ApiPath<Uuid>) -> Result<Response> {
    orders::cancel(state, user, id).await
}
