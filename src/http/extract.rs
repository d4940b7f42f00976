//! Request-side helpers shared by the routers: the authenticated caller, cursor pagination,
//! optional profile text, and the HTTP side of `Idempotency-Key` (its storage is `store::idempotency`).

use std::{fmt::Display, future::Future, str::FromStr};

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, HeaderValue, StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{AppState, Error, Result};
use crate::{
    auth::TokenError,
    domain::{self, Role},
    error::Report,
    store::idempotency::{self, Claim},
};

/// The caller, from a valid `Authorization: Bearer` access token.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    pub id: Uuid,
    pub role: Role,
}

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn require_admin(&self) -> Result<()> {
        if self.is_admin() { Ok(()) } else { Err(Error::forbidden("administrators only")) }
    }

    /// Staff and admins may book for other people (box-office staff selling at the door).
    pub fn may_book_for_others(&self) -> bool {
        matches!(self.role, Role::Staff | Role::Admin)
    }

    /// The user themself or an admin.
    pub fn require_self_or_admin(&self, user_id: Uuid) -> Result<()> {
        if self.is_admin() || self.id == user_id {
            Ok(())
        } else {
            Err(Error::forbidden("you may only access your own account"))
        }
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let token = bearer(&parts.headers)?.ok_or_else(|| Error::Unauthorized("missing bearer token".into()))?;
        Self::from_token(state, token).await
    }
}

/// The caller, who must be an administrator. As an extractor it refuses with 403 before the
/// body is read (a request's parts are extracted before its body), so a customer sending a
/// malformed body to an admin route learns that the route is not theirs, not what its body wants.
#[derive(Debug, Clone, Copy)]
pub struct AdminUser;

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        AuthUser::from_request_parts(parts, state).await?.require_admin()?;
        Ok(Self)
    }
}

/// An account route's caller and the account (`{id}` in the path): the account's owner or an
/// administrator, refused with 403 before the body is read (see [`AdminUser`]).
#[derive(Debug, Clone, Copy)]
pub struct AccountAccess {
    pub user: AuthUser,
    pub id: Uuid,
}

impl FromRequestParts<AppState> for AccountAccess {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        let super::error::ApiPath(id) = super::error::ApiPath::<Uuid>::from_request_parts(parts, state).await?;
        user.require_self_or_admin(id)?;
        Ok(Self { user, id })
    }
}

/// The token of an `Authorization: Bearer` header, if there is one; a malformed header is 401.
pub fn bearer(headers: &axum::http::HeaderMap) -> Result<Option<&str>> {
    let Some(header) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(Some)
        .ok_or_else(|| Error::Unauthorized("the Authorization header must be 'Bearer <token>'".into()))
}

impl AuthUser {
    /// The caller a raw access token names (for clients that cannot set headers: WebSockets):
    /// a valid signature, then the live-account and revocation checks of [`crate::auth::guard`].
    pub async fn from_token(state: &AppState, token: &str) -> Result<Self> {
        let claims = verified(state, token)?;
        let role = state.guard.admit(&claims).await?;
        Ok(Self { id: claims.sub, role })
    }
}

/// The claims of a token whose signature and expiry check out (nothing more is checked).
pub fn verified(state: &AppState, token: &str) -> Result<crate::auth::Claims> {
    state.auth.verify_access(token.trim()).map_err(|e| match e {
        TokenError::Expired => Error::Unauthorized("the access token has expired".into()),
        TokenError::Invalid => Error::Unauthorized("the access token is invalid".into()),
    })
}

/// One login, sign-up or refresh, counted against the caller's per-address limit: extracting it
/// answers 429 when the address is over (see [`crate::auth::guard`]). It carries the client's
/// address, which a login's lockout is kept by.
#[derive(Debug, Clone, Copy)]
pub struct AuthAttempt {
    pub client: std::net::IpAddr,
}

impl FromRequestParts<AppState> for AuthAttempt {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let client = client_address(parts, state)?;
        state.guard.check_address(client)?;
        Ok(Self { client })
    }
}

/// The client's address: the peer's, or the one a trusted proxy names (see [`crate::auth::guard`]).
fn client_address(parts: &Parts, state: &AppState) -> Result<std::net::IpAddr> {
    let axum::extract::ConnectInfo(peer) = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .copied()
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("the server loop gives every request its peer address")))?;
    let forwarded = parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    Ok(state.guard.client_address(peer, forwarded))
}

/// A slot for one live stream of the caller's address (`limits.streams_per_address`): extracting
/// it answers 429 when the address has its most open; the stream keeps it while it runs.
pub struct StreamSlot(pub crate::auth::StreamPermit);

impl FromRequestParts<AppState> for StreamSlot {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let client = client_address(parts, state)?;
        Ok(Self(state.guard.open_stream(client)?))
    }
}

/// The caller of a stream, with its token: from `Authorization: Bearer`, or from
/// `?access_token=` for clients that cannot set headers (a browser's `EventSource` and
/// `WebSocket`). The same checks as [`AuthUser`].
pub struct StreamUser {
    pub user: AuthUser,
    pub token: String,
}

impl FromRequestParts<AppState> for StreamUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let token = match bearer(&parts.headers)? {
            Some(t) => t.to_owned(),
            None => {
                #[derive(Deserialize)]
                struct TokenQuery {
                    access_token: Option<String>,
                }
                axum::extract::Query::<TokenQuery>::try_from_uri(&parts.uri)
                    .ok()
                    .and_then(|q| q.0.access_token)
                    .ok_or_else(|| Error::Unauthorized("a bearer token or ?access_token= is required".into()))?
            }
        };
        let user = AuthUser::from_token(state, &token).await?;
        Ok(Self { user, token })
    }
}

/// `?limit=&next_token=&previous_token=`: tokens are opaque, and only ones this API issued are
/// accepted. `next_token` asks for the items after the page it came with, `previous_token` for
/// those before; both together, for the items between the two, from the first.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1 to 100, default 20. (A string here so it also parses inside flattened query structs.)
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    #[param(format = "page-token")]
    pub next_token: Option<String>,
    #[param(format = "page-token")]
    pub previous_token: Option<String>,
}

/// One page of a list.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
    pub previous_token: Option<String>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_token: self.next_token,
            previous_token: self.previous_token,
        }
    }
}

impl PageParams {
    /// `next_token`, if one was given: an empty one asks for the first page, as the systems
    /// Boxoffice replaces let their clients do (`?next_token=` on the first request).
    pub fn after(&self) -> Option<&str> {
        self.next_token.as_deref().filter(|t| !t.is_empty())
    }

    /// `previous_token`, if one was given (an empty one: none).
    pub fn before(&self) -> Option<&str> {
        self.previous_token.as_deref().filter(|t| !t.is_empty())
    }

    /// The page size (1 to 100, default 20).
    pub fn checked_limit(&self) -> Result<u64> {
        let limit = match self.limit.as_deref() {
            None => 20,
            Some(l) => l.parse::<u64>().map_err(|_| Error::invalid("limit", "must be a whole number"))?,
        };
        if !(1..=100).contains(&limit) {
            return Err(Error::invalid("limit", "must be between 1 and 100"));
        }
        Ok(limit)
    }
}

pub fn encode_cursor(k: impl Display) -> String {
    URL_SAFE_NO_PAD.encode(k.to_string())
}

pub fn decode_cursor<K: FromStr>(token: &str, field: &str) -> Result<K> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::invalid(field, "not a token this API issued"))
}

/// Keyset pagination on a monotonically increasing key (UUIDv7 ids or sequence ids), so pages
/// stay stable while rows are added.
pub async fn paginate<E, C, K>(
    db: &impl ConnectionTrait,
    select: Select<E>,
    key_col: C,
    key_of: impl Fn(&E::Model) -> K,
    params: &PageParams,
) -> Result<Page<E::Model>>
where
    E: EntityTrait,
    C: ColumnTrait,
    K: Display + FromStr + Into<sea_orm::Value> + Copy,
{
    let limit = params.checked_limit()?;
    let before = params.before().map(|t| decode_cursor::<K>(t, "previous_token")).transpose()?;
    let after = params.after().map(|t| decode_cursor::<K>(t, "next_token")).transpose()?;
    if let (Some(before), None) = (before, after) {
        let mut rows = select.filter(key_col.lt(before)).order_by_desc(key_col).limit(limit + 1).all(db).await?;
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        rows.reverse();
        return Ok(Page {
            previous_token: if more { rows.first().map(|r| encode_cursor(key_of(r))) } else { None },
            next_token: rows.last().map(|r| encode_cursor(key_of(r))),
            items: rows,
        });
    }
    let mut q = select;
    if let Some(after) = after {
        q = q.filter(key_col.gt(after));
    }
    if let Some(before) = before {
        q = q.filter(key_col.lt(before));
    }
    let mut rows = q.order_by_asc(key_col).limit(limit + 1).all(db).await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    Ok(Page {
        next_token: if more { rows.last().map(|r| encode_cursor(key_of(r))) } else { None },
        previous_token: if after.is_some() { rows.first().map(|r| encode_cursor(key_of(r))) } else { None },
        items: rows,
    })
}

/// Optional free-text profile fields: trimmed, at most `max` characters, no control characters
/// ([`domain::one_line`]); empty means absent.
pub fn optional_text(field: &str, value: Option<String>, max: usize) -> Result<Option<String>> {
    let Some(value) = value else { return Ok(None) };
    let text = domain::one_line(&value, max).map_err(|e| Error::invalid(field, e.to_string()))?;
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// A required one-line text (a name): trimmed, 1 to `max` characters, no control characters.
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String> {
    match domain::one_line(value, max) {
        Ok("") => Err(Error::invalid(field, format!("must be 1 to {max} characters"))),
        Ok(text) => Ok(text.to_owned()),
        Err(e) => Err(Error::invalid(field, e.to_string())),
    }
}

/// An optional phone number: [`optional_text`] of digits, spaces and `+ - ( )`, at most 32.
pub fn phone_number(value: Option<String>) -> Result<Option<String>> {
    let phone = optional_text("mobile_phone", value, 32)?;
    if let Some(p) = &phone
        && !p.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c))
    {
        return Err(Error::invalid("mobile_phone", "may contain only digits, spaces and + - ( )"));
    }
    Ok(phone)
}

/// The request header (gRPC: metadata) that makes a write replayable.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Runs `work` at most once per `(user, route, Idempotency-Key)`: a repeat with the same body
/// gets the first response again, a repeat with another body is 422, and one that arrives
/// while the first is still running is 409. Without the header, `work` just runs. The keys'
/// storage and its rules (failures forgotten, abandoned keys taken over) are
/// [`crate::store::idempotency`]'s.
pub async fn idempotent<F, Fut, B>(
    state: &AppState,
    user: Uuid,
    route: &str,
    headers: &HeaderMap,
    body: &impl Serialize,
    work: F,
) -> Result<Response>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(StatusCode, B)>>,
    // The answer's own type, serialized once, straight into the response (or the stored replay).
    B: Serialize,
{
    let Some(key) = headers.get(IDEMPOTENCY_KEY) else {
        let (status, body) = work().await?;
        return Ok((status, axum::Json(body)).into_response());
    };
    let key = key
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| Error::invalid("Idempotency-Key", "must be 1 to 255 visible ASCII characters, no spaces"))?;
    let hash = crate::auth::sha256_hex(&serde_json::to_string(body).map_err(anyhow::Error::from)?);
    let abandoned_after = chrono::Duration::milliseconds(state.config.http.request_timeout_ms as i64);
    let claimed = match idempotency::claim(&state.db, user, route, key, &hash, abandoned_after).await? {
        Claim::Fresh(claimed) => claimed,
        Claim::Replay { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let body: Value = serde_json::from_str(&body).map_err(anyhow::Error::from)?;
            let mut response = (status, axum::Json(body)).into_response();
            response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            return Ok(response);
        }
        Claim::OtherBody => {
            return Err(Error::invalid("Idempotency-Key", "this key was already used with a different request body"));
        }
        Claim::InProgress => {
            return Err(Error::conflict("request_in_progress", "a request with this Idempotency-Key is still running"));
        }
        Claim::JustReleased => {
            return Err(Error::conflict("request_in_progress", "retry: the first request with this key just finished"));
        }
    };
    match work().await {
        Ok((status, body)) => {
            let text = serde_json::to_string(&body).map_err(anyhow::Error::from)?;
            claimed.complete(&state.db, status.as_u16(), text.clone()).await?;
            let json = HeaderValue::from_static("application/json");
            Ok((status, [(axum::http::header::CONTENT_TYPE, json)], text).into_response())
        }
        Err(e) => {
            if let Err(cleanup) = claimed.release(&state.db).await {
                tracing::warn!(error = %Report(&cleanup), "could not clear a failed idempotency key");
            }
            Err(e)
        }
    }
}
