//! `/auth`: sign-up, log-in, token refresh (rotation with re-use detection) and log-out.
//!
//! Login, sign-up and refresh count against the caller's per-address limit; a login checks the
//! account's lockout before its password, and a login naming no account spends the time of a
//! password check all the same (see [`crate::auth::guard`]).

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
    routing::post,
};
use chrono::Utc;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    AppState, Error, Result,
    error::{ApiJson, reply},
    extract::{AuthAttempt, bearer, optional_text, phone_number, required_text, verified},
    users::UserView,
};
use crate::{
    auth::{new_refresh_token, parse_refresh_token},
    domain::{Email, Password, Role, Username, limits},
    store::{
        self,
        entities::{refresh_tokens, users},
        sessions::{self, NewSession},
    },
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .route("/auth/logout", post(logout))
        // These answers carry tokens: no cache, proxy or browser may keep a copy.
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(schema_with = crate::http::docs::schema::email)]
    pub email: String,
    /// 3 to 32 letters, digits, `_`, `-` or `.`.
    #[schema(schema_with = crate::http::docs::schema::username)]
    pub username: String,
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
    /// `YYYY-MM-DD`, in the past.
    #[serde(default)]
    pub birth_day: Option<chrono::NaiveDate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Username or e-mail.
    #[schema(schema_with = crate::http::docs::schema::login)]
    pub login: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

/// Creates a user and its `user.created` event in one transaction.
pub async fn create_user(state: &AppState, req: RegisterRequest, role: Role) -> Result<users::Model> {
    let email = Email::parse(&req.email).map_err(|m| Error::invalid("email", m))?;
    let username = Username::parse(&req.username).map_err(|m| Error::invalid("username", m))?;
    let password = Password::parse(&req.password, &[username.as_str(), email.as_str()])
        .map_err(|m| Error::invalid("password", m))?;
    let first_name = optional_text("first_name", req.first_name, limits::PERSON_NAME)?;
    let last_name = optional_text("last_name", req.last_name, limits::PERSON_NAME)?;
    let mobile_phone = phone_number(req.mobile_phone)?;
    let birth_day = req.birth_day.map(super::users::checked_birth_day).transpose()?;
    let taken = users::Entity::find()
        .filter(
            Condition::any()
                .add(users::Column::Email.eq(email.as_str()))
                .add(users::Column::Username.eq(username.as_str())),
        )
        .one(&state.db)
        .await?;
    if let Some(u) = taken {
        return Err(if u.email == email.as_str() {
            Error::conflict("email_taken", "an account with this e-mail already exists")
        } else {
            Error::conflict("username_taken", "this username is taken")
        });
    }
    let hash = state.auth.hash_password(password.expose().to_string()).await?;
    let now = Utc::now();
    let user = users::Model {
        id: Uuid::now_v7(),
        email: email.as_str().to_string(),
        username: username.as_str().to_string(),
        password_hash: hash,
        first_name,
        last_name,
        mobile_phone,
        birth_day,
        role,
        created_at: now,
        updated_at: now,
        deleted_at: None,
        token_generation: 0,
    };
    store::accounts::insert_user(&state.db, user.clone()).await.map_err(|e| {
        Error::unless_duplicate(e, "duplicate_user", "an account with this e-mail or username already exists")
    })?;
    Ok(user)
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest, security(()),
    responses((status = 201, body = UserView), (status = 409, description = "duplicate_user"), (status = 422)))]
async fn register(
    State(state): State<AppState>,
    _: AuthAttempt,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<Response> {
    let user = create_user(&state, req, Role::User).await?;
    Ok(reply(StatusCode::CREATED, UserView::from(user)))
}

async fn issue_pair(state: &AppState, user: &users::Model, family: Uuid) -> Result<TokenPair> {
    let access = state.auth.issue_access(user.id, user.role, user.token_generation, family)?;
    let refresh = new_refresh_token();
    let session = NewSession {
        id: refresh.id,
        user_id: user.id,
        generation: user.token_generation,
        family_id: family,
        token_hash: refresh.hash,
        expires_at: Utc::now() + state.auth.refresh_ttl,
    };
    sessions::insert(&state.db, session).await?;
    Ok(TokenPair {
        access_token: access,
        refresh_token: refresh.token,
        token_type: "Bearer",
        expires_in: state.auth.access_ttl.num_seconds(),
    })
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest, security(()),
    responses((status = 200, body = TokenPair), (status = 401, description = "invalid login or password"),
        (status = 429, description = "rate_limited: too many failed logins for the account, or requests from the address")))]
async fn login(
    State(state): State<AppState>,
    attempt: AuthAttempt,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response> {
    Ok(reply(StatusCode::OK, log_in(&state, attempt, req).await?))
}

/// A new session for a username or e-mail and its password: `POST /api/v1/auth/login`, and
/// every other API's login. The caller has counted the attempt ([`AuthAttempt`]).
///
/// Both texts are bounded before anything is stored or hashed: every refused attempt is recorded
/// (`login_failures`, the audit trail), so an unbounded login would let anyone fill the disk.
pub async fn log_in(state: &AppState, attempt: AuthAttempt, req: LoginRequest) -> Result<TokenPair> {
    let login = required_text("login", &req.login, limits::LOGIN)?;
    if req.password.chars().nth(limits::PASSWORD).is_some() {
        return Err(Error::invalid("password", format!("must be at most {} characters", limits::PASSWORD)));
    }
    let user = state.guard.authenticate(&state.auth, &login, attempt.client, req.password).await?;
    issue_pair(state, &user, Uuid::now_v7()).await
}

/// A new pair for an unspent refresh token; the old one is spent, and re-using a spent one
/// revokes its whole family.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest, security(()),
    responses((status = 200, body = TokenPair), (status = 401, description = "invalid, expired, spent or revoked")))]
async fn refresh(
    State(state): State<AppState>,
    _: AuthAttempt,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Response> {
    Ok(reply(StatusCode::OK, refresh_session(&state, &req.refresh_token).await?))
}

/// A new pair for an unspent refresh token (`POST /api/v1/auth/refresh`, and gRPC's `Refresh`);
/// the caller has counted the attempt.
pub async fn refresh_session(state: &AppState, refresh_token: &str) -> Result<TokenPair> {
    let rejected = || Error::Unauthorized("the refresh token is invalid, expired or revoked".into());
    let (id, hash) = parse_refresh_token(refresh_token).ok_or_else(rejected)?;
    let token = refresh_tokens::Entity::find_by_id(id).one(&state.db).await?.ok_or_else(rejected)?;
    if token.token_hash != hash || token.revoked_at.is_some() || token.expires_at <= Utc::now() {
        return Err(rejected());
    }
    if !sessions::spend(&state.db, id).await? {
        tracing::warn!(family = %token.family_id, user = %token.user_id, "refresh token re-used: revoking its family");
        state.guard.revoke_family(token.family_id, token.user_id, state.auth.access_ttl).await?;
        return Err(rejected());
    }
    let user = users::Entity::find_by_id(token.user_id)
        .filter(users::Column::DeletedAt.is_null())
        .one(&state.db)
        .await?
        .ok_or_else(rejected)?;
    // Issued before a password change that raced it (the change revokes only what it sees).
    if token.generation != user.token_generation {
        state.guard.revoke_family(token.family_id, token.user_id, state.auth.access_ttl).await?;
        return Err(rejected());
    }
    issue_pair(state, &user, token.family_id).await
}

/// Ends the session the refresh token belongs to, and the access token sent as bearer (if any)
/// before its `exp`. Unknown tokens are accepted silently: logging out twice is not an error.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest, security((), ("bearer" = [])),
    responses((status = 204, description = "the session is ended")))]
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<StatusCode> {
    log_out(&state, &headers, Some(&req.refresh_token)).await
}

/// Ends the bearer's access token and the refresh token's session, each if given and valid:
/// `POST /api/v1/auth/logout`, and every other API's log-out.
pub async fn log_out(state: &AppState, headers: &HeaderMap, refresh_token: Option<&str>) -> Result<StatusCode> {
    if let Ok(Some(token)) = bearer(headers)
        && let Ok(claims) = verified(state, token)
    {
        state.guard.revoke(&claims).await?;
    }
    if let Some((id, hash)) = refresh_token.and_then(parse_refresh_token)
        && let Some(token) = refresh_tokens::Entity::find_by_id(id).one(&state.db).await?
        && token.token_hash == hash
    {
        state.guard.revoke_family(token.family_id, token.user_id, state.auth.access_ttl).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
