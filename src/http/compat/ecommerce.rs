//! The e-commerce demo (seed 001: Go users and payments services over Kafka): form-encoded
//! `POST /register` and `POST /login` (`username`, `password`), and `POST /pay`.
//!
//! Its sign-up took no e-mail; Boxoffice sends tickets and receipts by e-mail, so `email` is
//! required and a form without it gets a 422 naming it. Its `/pay` took nothing at all; here it
//! pays an order like `POST /api/v1/payments` (`order_id`, `amount_cents`, `card_token`, as a
//! form or JSON), for the order's customer.

use axum::{Router, extract::State, http::HeaderMap, response::Response, routing::post};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Credentials, log_in_as};
use crate::http::{
    AppState, Result,
    auth::RegisterRequest,
    error::ApiFormOrJson,
    extract::{AuthAttempt, AuthUser},
    payments::{CreatePayment, pay as core_pay},
    users::UserView,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/register", post(register)).route("/login", post(login)).route("/pay", post(pay))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShopSignUp {
    /// 3 to 32 letters, digits, `_`, `-` or `.`.
    #[schema(schema_with = crate::http::docs::schema::username)]
    pub username: String,
    /// 10 to 128 characters, not a common password, not containing the username or e-mail.
    #[schema(schema_with = crate::http::docs::schema::password)]
    pub password: String,
    /// Required here (the original took none): tickets and receipts go there.
    #[schema(schema_with = crate::http::docs::schema::email)]
    pub email: String,
}

#[utoipa::path(post, path = "/register", tag = "compat", security(()),
    request_body(content = ShopSignUp, content_type = "application/x-www-form-urlencoded"),
    responses((status = 201, body = UserView), (status = 409, description = "email_taken, username_taken")))]
pub(super) async fn register(
    State(state): State<AppState>,
    _: AuthAttempt,
    ApiFormOrJson(req): ApiFormOrJson<ShopSignUp>,
) -> Result<Response> {
    let account = RegisterRequest {
        email: req.email,
        username: req.username,
        password: req.password,
        first_name: None,
        last_name: None,
        mobile_phone: None,
        birth_day: None,
    };
    super::sign_up(&state, account).await
}

#[utoipa::path(post, path = "/login", tag = "compat", security(()),
    request_body(content = Credentials, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = super::CompatTokens), (status = 401, description = "invalid login or password")))]
pub(super) async fn login(
    State(state): State<AppState>,
    attempt: AuthAttempt,
    ApiFormOrJson(c): ApiFormOrJson<Credentials>,
) -> Result<Response> {
    log_in_as(&state, attempt, c).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShopPayment {
    pub order_id: uuid::Uuid,
    /// The order's amount, to the cent.
    #[schema(minimum = 1)]
    pub amount_cents: i64,
    /// Test cards: `tok_ok`, `tok_declined`, `tok_slow`. Required unless the server sets
    /// `compat.default_card_token`.
    #[serde(default)]
    #[schema(schema_with = crate::http::docs::schema::card_token, required = true)]
    pub card_token: Option<String>,
}

#[utoipa::path(post, path = "/pay", tag = "compat",
    request_body(content = ShopPayment, content_type = "application/x-www-form-urlencoded"),
    params(("Idempotency-Key" = Option<String>, Header, description = "replays return the first response", pattern = "^[!-~]{1,255}$")),
    responses((status = 201, body = crate::http::payments::PaymentView), (status = 404, description = "no such order"),
        (status = 409, description = "hold_expired, already_paid, payment_in_progress")))]
pub(super) async fn pay(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiFormOrJson(req): ApiFormOrJson<ShopPayment>,
) -> Result<Response> {
    let card_token = super::card_token(&state, req.card_token)?;
    let payment = CreatePayment { order_id: req.order_id, amount_cents: req.amount_cents, card_token };
    core_pay(&state, user, &headers, payment).await
}
