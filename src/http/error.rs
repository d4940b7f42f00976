//! The one HTTP error type. Every failure a handler can meet becomes one of these variants, with
//! a status and a JSON body `{"error": {"code", "message"}}`. Internal causes are logged with
//! their chain and answered as a bare 500 without details; actor timeouts become 503 here.

use axum::{
    Json,
    extract::{
        FromRequest, FromRequestParts, Request,
        rejection::{PathRejection, QueryRejection},
    },
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::json;

use crate::{
    actors::{CallError, saga::SagaError},
    auth::Refused,
    domain::OrderConflict,
    error::{Report, Unavailable},
    store::WriteError,
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    MalformedJson(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the request body is larger than this server accepts (http.body_limit_bytes)")]
    PayloadTooLarge,
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Unauthorized(String),
    /// 403; `code` says which rule (`forbidden` for a plain permission check).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("this route does not accept that method")]
    MethodNotAllowed,
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: std::time::Duration },
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// 503 `overloaded`: the server has all the connections it can take (`http.max_connections`).
    #[error("this server has all the connections it can take; retry shortly")]
    Overloaded,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error's body, as the OpenAPI document describes it (built in [`Error::into_response`]).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // A description for the document; the body itself is built with `json!`.
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// What went wrong, for programs: `validation_failed`, `sold_out`, `queue_required`, ...
    code: String,
    /// What went wrong, for people.
    message: String,
    /// The field at fault (`validation_failed` only).
    field: Option<String>,
}

impl Error {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), message: message.into() }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict { code, message: message.into() }
    }

    /// 403 `forbidden`: the caller may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden { code: "forbidden", message: message.into() }
    }

    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::MalformedJson(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code clients see (`validation_failed`, `sold_out`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) => "malformed_json",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Invalid { .. } => "validation_failed",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden { code, .. } => code,
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict { code, .. } => code,
            Self::TooManyRequests { .. } => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::Overloaded => "overloaded",
            Self::Internal(_) => "internal",
        }
    }
}

impl Error {
    /// What the client is told: the error itself, except that internal causes are logged with
    /// their chain and told as a bare "internal server error", and unavailability as "retry".
    pub fn public_message(&self) -> String {
        match self {
            Self::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                "internal server error".to_string()
            }
            Self::Unavailable(why) => {
                tracing::warn!(reason = %Report(why), "answering 503");
                "the service is temporarily unavailable; retry shortly".to_string()
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let message = self.public_message();
        let mut body = json!({"error": {"code": self.code(), "message": message}});
        if let Self::Invalid { field, .. } = &self {
            body["error"]["field"] = json!(field);
        }
        let mut response = (self.status(), Json(body)).into_response();
        if matches!(self, Self::Unavailable(_) | Self::Overloaded) {
            response.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        if let Self::TooManyRequests { retry_after, .. } = &self {
            // Whole seconds, rounded up: retrying after a shorter wait would be refused again.
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response.headers_mut().insert("retry-after", axum::http::HeaderValue::from(secs.max(1)));
        }
        response
    }
}

impl From<sea_orm::DbErr> for Error {
    fn from(e: sea_orm::DbErr) -> Self {
        if crate::store::is_unavailable(&e) {
            Self::Unavailable(Unavailable::because("the database", e))
        } else {
            Self::Internal(anyhow::Error::new(e))
        }
    }
}

impl Error {
    /// A store write whose duplicate key the client sees as the conflict `code`.
    pub fn unless_duplicate(e: WriteError, code: &'static str, message: &str) -> Self {
        match e {
            WriteError::Duplicate(_) => Self::conflict(code, message),
            WriteError::Db(e) => e.into(),
        }
    }
}

impl From<WriteError> for Error {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Duplicate(e) | WriteError::Db(e) => e.into(),
        }
    }
}

impl From<Refused> for Error {
    fn from(e: Refused) -> Self {
        match e {
            Refused::Revoked | Refused::AccountGone | Refused::BadCredentials => Self::Unauthorized(e.to_string()),
            Refused::Locked { retry_after }
            | Refused::RateLimited { retry_after }
            | Refused::TooManyStreams { retry_after, .. } => {
                Self::TooManyRequests { message: e.to_string(), retry_after }
            }
            Refused::Store(db) => db.into(),
        }
    }
}

impl From<CallError> for Error {
    fn from(e: CallError) -> Self {
        match e {
            CallError::NotFound => Self::not_found("event"),
            CallError::Timeout => Self::Unavailable(Unavailable::new("an actor call timed out")),
            // The owner kept moving while the call was forwarded: the client retries.
            CallError::Elsewhere(_) => Self::Unavailable(Unavailable::new("the event is served by another node")),
            CallError::Unavailable(why) => Self::Unavailable(why),
        }
    }
}

impl From<SagaError> for Error {
    fn from(e: SagaError) -> Self {
        match e {
            SagaError::NotFound => Self::not_found("order"),
            SagaError::Conflict(c) => Self::conflict(conflict_code(c), c.to_string()),
            SagaError::RefundedAfterExpiry => Self::conflict("hold_expired", e.to_string()),
            SagaError::AmountMismatch(_) => Self::invalid("amount_cents", e.to_string()),
            SagaError::Unavailable(why) => Self::Unavailable(why),
        }
    }
}

/// The stable code clients see for each order conflict.
fn conflict_code(c: OrderConflict) -> &'static str {
    match c {
        OrderConflict::PaymentInProgress => "payment_in_progress",
        OrderConflict::AlreadyPaid => "already_paid",
        OrderConflict::HoldExpired => "hold_expired",
        OrderConflict::Cancelled => "order_cancelled",
        OrderConflict::NotCancellable(_) => "order_not_cancellable",
    }
}

/// `Json<T>` whose rejections are ours: malformed JSON is 400, a wrong field is 422 naming it.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(Error::UnsupportedMediaType("expected Content-Type: application/json".into()));
        }
        // The bytes are kept so an error can say which of the sent fields was meant.
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            // Over `DefaultBodyLimit`: axum says 413 and so do we (it is not a JSON problem).
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge
            } else {
                Error::MalformedJson(format!("malformed JSON: {}", e.body_text()))
            }
        })?;
        parse_json(&bytes).map(Self)
    }
}

/// The longest query string any route reads (its parameters are ids, dates, tokens and a short
/// search text): anything longer is refused before it is parsed.
pub const QUERY_LIMIT: usize = 4096;

/// A JSON body read into `T`, with the edge's rules: malformed JSON is 400; a field of the wrong
/// type, missing or unknown is 422 naming it in plain words; a string holding a control character
/// (C0, DEL, C1: no field of this API holds one, and PostgreSQL cannot store a NUL) is 422 naming
/// its field, as the document's patterns say (`docs::NO_CONTROLS`); and an integral number written with a fraction (`25.0`, `2.5e1`) is
/// accepted where an integer is expected, as JSON Schema's `integer` does, while `25.5` is not.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    // A control character can only arrive escaped, as a raw DEL, or as a two-byte C1 character:
    // a body with none of those is read straight into `T`, the hot path's way.
    let may_hold_controls = bytes.iter().any(|b| matches!(b, b'\\' | 0x7f | 0xc2));
    if !may_hold_controls {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        match serde_path_to_error::deserialize(&mut de) {
            Ok(v) => {
                return match de.end() {
                    Ok(()) => Ok(v),
                    Err(e) => Err(Error::MalformedJson(format!("malformed JSON: {e}"))),
                };
            }
            Err(e) if !e.inner().to_string().starts_with("invalid type: floating point") => {
                return Err(body_error(&e, bytes));
            }
            // An integral number written as a float, perhaps: read again below.
            Err(_) => {}
        }
    }
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| Error::MalformedJson(format!("malformed JSON: {e}")))?;
    refuse_controls(&value, &mut String::new())?;
    integral_floats_as_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| body_error(&e, bytes))
}

/// What went wrong with a body serde could not read into its type, as the error clients see.
fn body_error(e: &serde_path_to_error::Error<serde_json::Error>, bytes: &[u8]) -> Error {
    let inner = e.inner();
    if inner.is_syntax() || inner.is_eof() {
        return Error::MalformedJson(format!("malformed JSON: {inner}"));
    }
    let path = e.path().to_string();
    let detail = inner.to_string();
    let detail = detail.split(" at line ").next().unwrap_or(&detail);
    // serde names an unknown field by itself (with the path to it): the client is told which
    // field it meant, and when that one is missing, that it is required.
    let (field, message) = if path == "." || detail.starts_with("unknown field ") {
        name_the_field(detail)
    } else {
        (path, detail.to_string())
    };
    if let Some(meant) = meant_but_missing(detail, bytes) {
        return Error::Invalid { message: format!("is required{}", misnamed_as(bytes, &meant)), field: meant };
    }
    let mut message = plain_words(&message);
    if message == "is required" {
        message.push_str(&misnamed_as(bytes, &field));
    }
    // serde quotes what was sent (an unknown key, a value): never echo a control character.
    Error::Invalid { field: spelled_out(&field), message: spelled_out(&message) }
}

/// `text` with its control characters spelled out (`\u{1b}`), fit to be echoed in an answer.
fn spelled_out(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars().flat_map(|c| if c.is_control() { c.escape_unicode().collect::<Vec<_>>() } else { vec![c] }).collect()
}

/// Refuses the first string (or object key) holding a control character no field can hold,
/// naming where it is (`lines[0].name`).
fn refuse_controls(value: &serde_json::Value, at: &mut String) -> Result<(), Error> {
    use serde_json::Value;
    let bad = |s: &str| s.chars().any(char::is_control);
    let field = |at: &str| if at.is_empty() { "body".to_owned() } else { at.to_owned() };
    match value {
        Value::String(s) if bad(s) => Err(Error::invalid(&field(at), "must not contain control characters")),
        Value::Array(items) => items.iter().enumerate().try_for_each(|(i, item)| {
            let len = at.len();
            at.push_str(&format!("[{i}]"));
            let checked = refuse_controls(item, at);
            at.truncate(len);
            checked
        }),
        Value::Object(fields) => fields.iter().try_for_each(|(key, item)| {
            let len = at.len();
            if !at.is_empty() {
                at.push('.');
            }
            // A key is named as sent, its own control characters spelled out.
            at.push_str(&spelled_out(key));
            let checked = refuse_controls(item, at);
            at.truncate(len);
            checked
        }),
        _ => Ok(()),
    }
}

/// `25.0` becomes `25`, so that an integer field takes it; `25.5` stays as it is (and is refused
/// there). Only numbers an `f64` holds exactly qualify (up to 2^53).
fn integral_floats_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() <= EXACT
            {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

/// serde's messages in the API's words: no Rust type names (`expected i64`, `expected struct
/// UserChange`), but what a JSON client can act on.
fn plain_words(message: &str) -> String {
    const WORDS: &[(&str, &str)] = &[
        ("i8", "a whole number"),
        ("i16", "a whole number"),
        ("i32", "a whole number"),
        ("i64", "a whole number"),
        ("isize", "a whole number"),
        ("u8", "a whole number, 0 or more"),
        ("u16", "a whole number, 0 or more"),
        ("u32", "a whole number, 0 or more"),
        ("u64", "a whole number, 0 or more"),
        ("usize", "a whole number, 0 or more"),
        ("f32", "a number"),
        ("f64", "a number"),
        ("a sequence", "an array"),
        ("a map", "an object"),
        ("a borrowed string", "a string"),
        ("unit", "null"),
        ("option", "a value or null"),
    ];
    let Some((before, expected)) = message.split_once("expected ") else { return message.to_owned() };
    let before = before
        .replace("invalid type: map", "invalid type: an object")
        .replace("invalid type: sequence", "invalid type: an array")
        .replace("invalid type: unit value", "invalid type: null")
        .replace("floating point", "number")
        .replace("integer", "number");
    let expected = if expected.starts_with("struct ") {
        "an object".to_owned()
    } else if expected.starts_with("enum ") {
        "one of the accepted values".to_owned()
    } else {
        WORDS
            .iter()
            .find(|(rust, _)| *rust == expected)
            .map_or_else(|| expected.to_owned(), |(_, plain)| (*plain).to_owned())
    };
    format!("{before}expected {expected}")
}

/// A body sent as JSON or as an HTML form (`application/x-www-form-urlencoded`, what `curl -d`
/// sends), as the systems Boxoffice replaces took theirs (`http::compat`). A form's missing or
/// wrong field is a 422 naming it, as JSON's is; a request with no body and no content type is
/// an empty form, so it too is told which field it lacks.
pub struct ApiFormOrJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiFormOrJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if is_json(req.headers()) {
            return ApiJson::from_request(req, state).await.map(|j| Self(j.0));
        }
        let essence = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
        if essence.as_deref().is_some_and(|e| e != "application/x-www-form-urlencoded") {
            return Err(Error::UnsupportedMediaType(
                "expected Content-Type: application/json or application/x-www-form-urlencoded".into(),
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge
            } else {
                Error::MalformedJson(format!("unreadable form: {}", e.body_text()))
            }
        })?;
        refuse_controls_in_pairs(&bytes)?;
        serde_urlencoded::from_bytes::<T>(&bytes).map(Self).map_err(|e| {
            let (field, message) = name_the_field(&e.to_string());
            Error::Invalid { field, message: plain_words(&message) }
        })
    }
}

/// `application/json`, or a `+json` type, whatever its parameters.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// For an unknown top-level field that stands for an accepted one the body lacks (`username`
/// for `login`): that accepted field.
fn meant_but_missing(detail: &str, body: &[u8]) -> Option<String> {
    let rest = detail.strip_prefix("unknown field ")?;
    let names: Vec<String> = rest.split('`').skip(1).step_by(2).map(str::to_string).collect();
    let (unknown, expected) = names.split_first()?;
    let meant = did_you_mean(unknown, expected)?;
    let serde_json::Value::Object(sent) = serde_json::from_slice::<serde_json::Value>(body).ok()? else { return None };
    (sent.contains_key(unknown) && !sent.contains_key(meant)).then(|| meant.to_owned())
}

/// For a missing field: the sent key that looks like it was meant to be that field, if any.
fn misnamed_as(body: &[u8], missing: &str) -> String {
    let Ok(serde_json::Value::Object(sent)) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let wanted = [missing.to_string()];
    sent.keys()
        .find(|k| did_you_mean(k, &wanted).is_some())
        .map(|k| format!(" (`{k}` is not accepted: did you mean `{missing}`?)"))
        .unwrap_or_default()
}

/// For an error about the body as a whole, the field it is about: serde says "unknown field `x`,
/// expected `a` or `b`" or "missing field `a`"; the client should not have to read that.
fn name_the_field(detail: &str) -> (String, String) {
    // serde_json appends the position; the field name says more.
    let detail = detail.split(" at line ").next().unwrap_or(detail);
    let quoted = |s: &str| s.split('`').skip(1).step_by(2).map(str::to_string).collect::<Vec<_>>();
    if let Some(rest) = detail.strip_prefix("unknown field ") {
        let names = quoted(rest);
        if let Some((unknown, expected)) = names.split_first() {
            let hint = match did_you_mean(unknown, expected) {
                Some(s) => format!("; did you mean `{s}`?"),
                None if !expected.is_empty() => format!(
                    "; the accepted fields are {}",
                    expected.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ")
                ),
                None => String::new(),
            };
            return (unknown.clone(), format!("`{unknown}` is not accepted here{hint}"));
        }
    }
    if let Some(rest) = detail.strip_prefix("missing field ")
        && let Some(name) = quoted(rest).into_iter().next()
    {
        return (name, "is required".to_string());
    }
    ("body".to_string(), detail.to_string())
}

/// The accepted field a client most likely meant: a known alias of it, or a near spelling.
fn did_you_mean<'a>(unknown: &str, expected: &'a [String]) -> Option<&'a str> {
    const ALIASES: &[(&str, &str)] =
        &[("username", "login"), ("email", "login"), ("user", "login"), ("pass", "password"), ("qty", "quantity")];
    let lower = unknown.to_ascii_lowercase();
    if let Some((_, to)) = ALIASES.iter().find(|(from, to)| *from == lower && expected.iter().any(|e| e == to)) {
        return expected.iter().find(|e| e == to).map(String::as_str);
    }
    // camelCase or kebab-case for our snake_case, or a typo of a letter or two.
    let plain = |s: &str| s.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase();
    expected
        .iter()
        .map(|e| (e, edit_distance(&plain(unknown), &plain(e))))
        .filter(|(e, d)| *d <= 2.max(e.len() / 4))
        .min_by_key(|(_, d)| *d)
        .map(|(e, _)| e.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(row[j]).min(row[j + 1]) };
            prev = cur;
        }
    }
    row[b.len()]
}

/// `Path<T>`: an id that cannot be parsed names nothing that exists, so it is a 404.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|_: PathRejection| Error::NotFound("no such resource: the id is not a valid UUID".into()))
    }
}

/// `Query<T>` with 422 naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        if query.len() > QUERY_LIMIT {
            return Err(Error::invalid("query", format!("must be at most {QUERY_LIMIT} bytes")));
        }
        refuse_controls_in_pairs(query.as_bytes())?;
        axum::extract::Query::<T>::from_request_parts(parts, state).await.map(|q| Self(q.0)).map_err(
            |e: QueryRejection| {
                let detail = e.body_text();
                let detail = detail.strip_prefix("Failed to deserialize query string: ").unwrap_or(&detail);
                let (field, message) = name_the_field(detail);
                let field = if field == "body" { "query".to_owned() } else { field };
                Error::Invalid { field, message: plain_words(&message) }
            },
        )
    }
}

/// Refuses a form or query string whose decoded values hold a control character (the rule of
/// [`parse_json`]), naming the parameter.
fn refuse_controls_in_pairs(encoded: &[u8]) -> Result<(), Error> {
    for (name, value) in form_urlencoded::parse(encoded) {
        if value.chars().any(char::is_control) {
            return Err(Error::invalid(&spelled_out(&name), "must not contain control characters"));
        }
    }
    Ok(())
}

/// A body answered with a status; the shape handlers return.
pub fn reply<T: Serialize>(status: StatusCode, body: T) -> Response {
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::name_the_field;

    #[test]
    fn an_unknown_field_is_named_with_what_was_meant() {
        let (field, message) =
            name_the_field("unknown field `username`, expected `login` or `password` at line 1 column 11");
        assert_eq!(field, "username");
        assert_eq!(message, "`username` is not accepted here; did you mean `login`?");
        let (field, message) = name_the_field("unknown field `quantitty`, expected `event_id` or `quantity`");
        assert_eq!(
            (field.as_str(), message.as_str()),
            ("quantitty", "`quantitty` is not accepted here; did you mean `quantity`?")
        );
        let (_, message) = name_the_field("unknown field `eventID`, expected `event_id` or `quantity`");
        assert!(message.ends_with("did you mean `event_id`?"), "{message}");
        let (_, message) = name_the_field("unknown field `colour`, expected one of `name`, `kind`");
        assert!(message.ends_with("the accepted fields are `name`, `kind`"), "{message}");
    }

    #[test]
    fn a_missing_field_is_named_with_the_sent_key_that_meant_it() {
        assert_eq!(
            super::misnamed_as(br#"{"username": "ann", "password": "x"}"#, "login"),
            " (`username` is not accepted: did you mean `login`?)"
        );
        assert_eq!(super::misnamed_as(br#"{"password": "x"}"#, "login"), "");
    }

    #[test]
    fn a_missing_field_is_named() {
        assert_eq!(name_the_field("missing field `login` at line 1 column 2"), ("login".into(), "is required".into()));
        assert_eq!(name_the_field("trailing characters").0, "body");
    }
}
