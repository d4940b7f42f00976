//! The one HTTP error type. Every failure a handler can meet becomes one of these variants, with
//! a status and a JSON body `{"error": {"code", "message"}}`. Internal causes are logged with
//! their chain and answered as a bare 500 without details; actor timeouts become 503 here.

use axum::{
    Json,
    extract::{
        FromRequest, FromRequestParts, Request,
        rejection::{JsonRejection, PathRejection, QueryRejection},
    },
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::json;

use crate::{
    actors::{CallError, saga::SagaError},
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
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("this route does not accept that method")]
    MethodNotAllowed,
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), message: message.into() }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict { code, message: message.into() }
    }

    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::MalformedJson(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) => "malformed_json",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Invalid { .. } => "validation_failed",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict { code, .. } => code,
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let message = match &self {
            Self::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                "internal server error".to_string()
            }
            Self::Unavailable(why) => {
                tracing::warn!(reason = %Report(why), "answering 503");
                "the service is temporarily unavailable; retry shortly".to_string()
            }
            other => other.to_string(),
        };
        let mut body = json!({"error": {"code": self.code(), "message": message}});
        if let Self::Invalid { field, .. } = &self {
            body["error"]["field"] = json!(field);
        }
        let mut response = (self.status(), Json(body)).into_response();
        if matches!(self, Self::Unavailable(_)) {
            response.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("1"));
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

impl From<CallError> for Error {
    fn from(e: CallError) -> Self {
        match e {
            CallError::NotFound => Self::not_found("event"),
            CallError::Timeout => Self::Unavailable(Unavailable::new("an actor call timed out")),
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
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(JsonRejection::JsonDataError(e)) => {
                // serde's message names the path and what was wrong with it.
                let detail = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_else(|| e.body_text());
                let (field, message) = match detail.split_once(": ") {
                    Some((f, m)) if !f.contains(' ') => (f.to_string(), m.to_string()),
                    _ => ("body".to_string(), detail),
                };
                Err(Error::Invalid { field, message })
            }
            Err(JsonRejection::MissingJsonContentType(_)) => {
                Err(Error::UnsupportedMediaType("expected Content-Type: application/json".into()))
            }
            Err(e) => Err(Error::MalformedJson(format!("malformed JSON: {}", e.body_text()))),
        }
    }
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
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e: QueryRejection| Error::invalid("query", e.body_text()))
    }
}

/// A body answered with a status; the shape handlers return.
pub fn reply<T: Serialize>(status: StatusCode, body: T) -> Response {
    (status, Json(body)).into_response()
}
