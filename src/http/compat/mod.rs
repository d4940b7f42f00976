//! The routes of the systems Boxoffice replaces (their design documents are in the project's
//! `shared/seeds`), so their clients, scripts and Postman collections keep working while teams
//! move to `/api/v1`. Served when `compat.enabled` (the default), documented under the `compat`
//! tag.
//!
//! One module per replaced system. Each route is a thin mapping of that system's request onto the
//! call `/api/v1` makes (the same auth, per-address and per-person limits, waiting room and
//! `Idempotency-Key`), and of the answer back into the shape its clients read; none of them
//! decides a rule of its own. Where a replaced system's request lacks something Boxoffice needs
//! (an e-mail at sign-up, a card token with a payment), the answer is a 422 naming the field.

mod ecommerce;
mod event_registration;
mod registration_auth;
mod ticketing;
mod users_orders;

use axum::{Router, body::Body, http::StatusCode, response::Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{OpenApi, ToSchema};

use crate::domain::Role;

use super::{
    AppState, Result,
    auth::{LoginRequest, RegisterRequest, TokenPair, create_user, log_in},
    docs::{ErrorResponses, OperationIds},
    error::reply,
    extract::AuthAttempt,
    users::UserView,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(event_registration::router())
        .merge(ecommerce::router())
        .merge(registration_auth::router())
        .merge(ticketing::router())
        .merge(users_orders::router())
}

#[derive(OpenApi)]
#[openapi(
    paths(
        event_registration::register,
        ecommerce::register, ecommerce::login, ecommerce::pay,
        registration_auth::register, registration_auth::login,
        ticketing::login, ticketing::logout, ticketing::register, ticketing::list_users, ticketing::read_user,
        ticketing::update_user, ticketing::list_tickets, ticketing::read_ticket, ticketing::update_ticket,
        ticketing::list_orders, ticketing::place_order, ticketing::read_order, ticketing::list_payments,
        ticketing::pay, ticketing::read_payment,
        users_orders::create_user_route, users_orders::login, users_orders::read_user, users_orders::update_user,
        users_orders::place_order, users_orders::read_order, users_orders::cancel_order,
    ),
    components(schemas(CompatTokens, Credentials)),
    tags((name = "compat", description = "The routes of the systems Boxoffice replaces, mapped onto /api/v1 \
        (README: \"Coming from ...\"). New clients should use /api/v1.")),
    modifiers(&OperationIds, &ErrorResponses),
)]
pub struct CompatDoc;

/// A log-in as the replaced systems sent it: the account under `username` (or `userName`,
/// `user_name`, `login`), or under `email`, and its password. A client that sends both a
/// username and an e-mail logs in with the username.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// Username or e-mail (may be left out when `email` is sent).
    #[serde(default, alias = "userName", alias = "user_name", alias = "login")]
    #[schema(schema_with = crate::http::docs::schema::login, required = true)]
    pub username: Option<String>,
    /// The e-mail, when sent apart from (or instead of) `username`.
    #[serde(default)]
    #[schema(schema_with = crate::http::docs::schema::email)]
    pub email: Option<String>,
    pub password: String,
}

impl Credentials {
    /// The login text: the username if one was sent, else the e-mail.
    fn login(&self) -> Result<String> {
        let given = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        given(&self.username)
            .or_else(|| given(&self.email))
            .ok_or_else(|| super::Error::invalid("username", "is required (a username or an e-mail)"))
    }
}

/// `/api/v1`'s token pair, with the access token also as `token`, where the e-commerce and
/// users/orders clients read it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompatTokens {
    /// The access token (the same as `access_token`).
    pub token: String,
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
}

/// A new account from a replaced system's sign-up, answered as `/api/v1/auth/register` answers
/// (the caller counted the attempt).
async fn sign_up(state: &AppState, req: RegisterRequest) -> Result<Response> {
    let user = create_user(state, req, Role::User).await?;
    Ok(reply(StatusCode::CREATED, UserView::from(user)))
}

/// The card an old client's payment is charged to: its own, or `compat.default_card_token` when
/// it sent none (a migration aid, empty by default: then the payment is a 422 naming the field).
fn card_token(state: &AppState, given: Option<String>) -> Result<String> {
    match given.filter(|t| !t.trim().is_empty()) {
        Some(token) => Ok(token),
        None if !state.config.compat.default_card_token.is_empty() => {
            Ok(state.config.compat.default_card_token.clone())
        }
        None => Err(super::Error::invalid(
            "card_token",
            "is required (this server sets no compat.default_card_token for clients that send none)",
        )),
    }
}

/// The one log-in every compat route makes (the caller counted the attempt).
async fn log_in_as(state: &AppState, attempt: AuthAttempt, c: Credentials) -> Result<Response> {
    let login = c.login()?;
    let TokenPair { access_token, refresh_token, token_type, expires_in } =
        log_in(state, attempt, LoginRequest { login, password: c.password }).await?;
    let tokens = CompatTokens { token: access_token.clone(), access_token, refresh_token, token_type, expires_in };
    Ok(reply(StatusCode::OK, tokens))
}

/// A successful JSON answer of the core, its body rewritten into the shape a replaced system's
/// clients read (errors pass unchanged: they are already `{"error": {...}}`).
async fn reshape(response: Response, f: impl FnOnce(&Value) -> Value) -> Result<Response> {
    if !response.status().is_success() {
        return Ok(response);
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.map_err(anyhow::Error::from)?;
    let value: Value = serde_json::from_slice(&bytes).map_err(anyhow::Error::from)?;
    let reshaped = serde_json::to_vec(&f(&value)).map_err(anyhow::Error::from)?;
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Ok(Response::from_parts(parts, Body::from(reshaped)))
}
