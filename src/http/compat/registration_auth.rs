//! The registration and authentication services (seed 002: .NET over RabbitMQ):
//! `POST /api/registration/register` (`username`, `email`, `password`, `confirmPassword`) and
//! `POST /api/auth/login` (`usernameOrEmail`, `password`, `rememberMe`). Their `user.created`,
//! `user.updated` and `user.deleted` events are Boxoffice's topics of the same names.
//!
//! `rememberMe` is accepted and changes nothing: every login gets the same refresh token, which
//! lasts `auth.refresh_ttl_seconds`.

use axum::{Router, extract::State, response::Response, routing::post};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Credentials, log_in_as};
use crate::http::{
    AppState, Error, Result, auth::RegisterRequest, error::ApiJson, extract::AuthAttempt, users::UserView,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/registration/register", post(register)).route("/api/auth/login", post(login))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = RegistrationServiceSignUp)]
pub struct Registration {
    /// 3 to 32 letters, digits, `_`, `-` or `.`.
    #[schema(schema_with = crate::http::docs::schema::username)]
    pub username: String,
    #[schema(schema_with = crate::http::docs::schema::email)]
    pub email: String,
    /// 10 to 128 characters, not a common password, not containing the username or e-mail.
    #[schema(schema_with = crate::http::docs::schema::password)]
    pub password: String,
    /// The password again; a different one is a 422.
    #[schema(schema_with = crate::http::docs::schema::password)]
    pub confirm_password: String,
}

#[utoipa::path(post, path = "/api/registration/register", tag = "compat", request_body = Registration, security(()),
    responses((status = 201, body = UserView), (status = 409, description = "email_taken, username_taken")))]
pub(super) async fn register(
    State(state): State<AppState>,
    _: AuthAttempt,
    ApiJson(req): ApiJson<Registration>,
) -> Result<Response> {
    if req.confirm_password != req.password {
        return Err(Error::invalid("confirmPassword", "must be the same as password"));
    }
    let sign_up = RegisterRequest {
        email: req.email,
        username: req.username,
        password: req.password,
        first_name: None,
        last_name: None,
        mobile_phone: None,
        birth_day: None,
    };
    super::sign_up(&state, sign_up).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Login {
    /// Username or e-mail.
    #[schema(schema_with = crate::http::docs::schema::login)]
    pub username_or_email: String,
    pub password: String,
    /// Accepted; every session lasts the same.
    #[serde(default)]
    #[allow(dead_code)] // The old clients send it; it decides nothing here.
    pub remember_me: bool,
}

#[utoipa::path(post, path = "/api/auth/login", tag = "compat", request_body = Login, security(()),
    responses((status = 200, body = super::CompatTokens), (status = 401, description = "invalid login or password")))]
pub(super) async fn login(
    State(state): State<AppState>,
    attempt: AuthAttempt,
    ApiJson(req): ApiJson<Login>,
) -> Result<Response> {
    log_in_as(
        &state,
        attempt,
        Credentials { username: Some(req.username_or_email), email: None, password: req.password },
    )
    .await
}
