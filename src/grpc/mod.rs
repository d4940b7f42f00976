//! The gRPC API (package `boxoffice.v1`, `proto/boxoffice/v1/*.proto`), served by the same process
//! beside REST when `grpc.addr` is set: `AuthService`, `CatalogService`, `BookingService` and
//! `AvailabilityService`, plus gRPC health checking and server reflection (`grpcurl` needs no
//! `.proto` files).
//!
//! Every call is the REST call it mirrors: the services run the same handlers and core functions
//! (same auth, revocation, per-address and per-person limits, waiting room, `Idempotency-Key`),
//! read their JSON answers into the view types and convert those into messages. The one error
//! type becomes a `Status` here ([`status`]), with the error's code (`sold_out`, ...) in the
//! message and as `google.rpc.ErrorInfo.reason`.

mod auth;
mod booking;
mod catalog;
mod convert;
mod watch;

use std::{net::SocketAddr, time::Instant};

use axum::http::{HeaderMap, StatusCode};
use boxoffice_proto::v1::{
    auth_service_server::AuthServiceServer, availability_service_server::AvailabilityServiceServer,
    booking_service_server::BookingServiceServer, catalog_service_server::CatalogServiceServer,
};
use tokio::net::TcpListener;
use tonic::{Code, Request, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::http::{
    AppState, Error,
    extract::{AuthAttempt, AuthUser},
};

/// The largest message the authentication service reads: a login, a sign-up or a refresh is a
/// few hundred bytes, and its texts are capped far below this (`domain::limits`); anything bigger
/// is refused (`RESOURCE_EXHAUSTED`) before it is decoded, let alone stored.
pub const AUTH_MESSAGE_LIMIT: usize = 16 * 1024;

/// The services, on `listener`, until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    register_metrics();
    let body_limit = state.config.http.body_limit_bytes;
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<AuthServiceServer<auth::Auth>>().await;
    reporter.set_serving::<CatalogServiceServer<catalog::Catalog>>().await;
    reporter.set_serving::<BookingServiceServer<booking::Booking>>().await;
    reporter.set_serving::<AvailabilityServiceServer<watch::Availability>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(boxoffice_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tonic::transport::Server::builder()
        .add_service(health)
        .add_service(reflection)
        // Each service reads messages no larger than REST reads bodies (`http.body_limit_bytes`),
        // the authentication service much less (tonic's own default is 4 MiB).
        .add_service(AuthServiceServer::new(auth::Auth(state.clone())).max_decoding_message_size(AUTH_MESSAGE_LIMIT))
        .add_service(CatalogServiceServer::new(catalog::Catalog(state.clone())).max_decoding_message_size(body_limit))
        .add_service(BookingServiceServer::new(booking::Booking(state.clone())).max_decoding_message_size(body_limit))
        .add_service(AvailabilityServiceServer::new(watch::Availability(state)).max_decoding_message_size(body_limit))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}

/// The gRPC status for an error of the HTTP API, as the table maps them: the error's code
/// in the message and as `ErrorInfo.reason` (domain `boxoffice`), the field at fault and the
/// seconds to wait in its metadata.
pub fn status(e: Error) -> Status {
    let code = match e.status() {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY | StatusCode::PAYLOAD_TOO_LARGE => {
            Code::InvalidArgument
        }
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::PermissionDenied,
        StatusCode::NOT_FOUND => Code::NotFound,
        StatusCode::CONFLICT => Code::FailedPrecondition,
        StatusCode::TOO_MANY_REQUESTS => Code::ResourceExhausted,
        StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
        _ => Code::Internal,
    };
    let reason = e.code();
    let mut metadata = std::collections::HashMap::new();
    if let Error::Invalid { field, .. } = &e {
        metadata.insert("field".to_owned(), field.clone());
    }
    if let Error::TooManyRequests { retry_after, .. } = &e {
        metadata.insert("retry_after_seconds".to_owned(), retry_after.as_secs().max(1).to_string());
    }
    let message = format!("{reason}: {}", e.public_message());
    Status::with_error_details(code, message, ErrorDetails::with_error_info(reason, "boxoffice", metadata))
}

/// The caller, from `authorization: Bearer <access token>` metadata, checked as REST checks it.
async fn caller<T>(state: &AppState, request: &Request<T>) -> Result<AuthUser, Status> {
    let headers = request.metadata().clone().into_headers();
    let token = crate::http::extract::bearer(&headers)
        .map_err(status)?
        .ok_or_else(|| status(Error::Unauthorized("missing bearer token (metadata `authorization`)".into())))?;
    AuthUser::from_token(state, token).await.map_err(status)
}

/// A log-in, sign-up or refresh, counted against the peer address's limit as REST counts it.
fn auth_attempt<T>(state: &AppState, request: &Request<T>) -> Result<AuthAttempt, Status> {
    let client = client_address(state, request);
    state.guard.check_address(client).map_err(|e| status(e.into()))?;
    Ok(AuthAttempt { client })
}

/// The caller's address, as the guard counts it (per-address limits, streams).
fn client_address<T>(state: &AppState, request: &Request<T>) -> std::net::IpAddr {
    let peer = request.remote_addr().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
    state.guard.client_address(peer, None)
}

/// The metadata a core call reads as headers (`idempotency-key`, `authorization`).
fn headers<T>(request: &Request<T>) -> HeaderMap {
    request.metadata().clone().into_headers()
}

/// Every method [`measured`] names: their series are registered at start (a call count of 0 per
/// method, and the latency histogram), so dashboards and `absent()` alerts see them on a fresh
/// server, not only after each method's first call.
pub const METHODS: &[&str] = &[
    "AuthService/Register",
    "AuthService/Login",
    "AuthService/Refresh",
    "AuthService/Logout",
    "CatalogService/ListEvents",
    "CatalogService/GetEvent",
    "BookingService/PlaceOrder",
    "BookingService/RegisterFree",
    "BookingService/GetOrder",
    "BookingService/ListOrders",
    "BookingService/CancelOrder",
    "BookingService/Pay",
    "AvailabilityService/Watch",
];

fn register_metrics() {
    for method in METHODS {
        metrics::counter!(crate::instruments::GRPC_REQUESTS, "method" => *method, "code" => code_name(Code::Ok))
            .increment(0);
        // A handle alone registers the histogram; nothing is recorded.
        let _ = metrics::histogram!(crate::instruments::GRPC_DURATION, "method" => *method);
    }
}

/// Counts and times one call: `boxoffice_grpc_requests_total{method, code}` and
/// `boxoffice_grpc_request_duration_seconds{method}`.
async fn measured<T>(method: &'static str, call: impl Future<Output = Result<T, Status>>) -> Result<T, Status> {
    let started = Instant::now();
    let result = call.await;
    let code = match &result {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    };
    metrics::counter!(crate::instruments::GRPC_REQUESTS, "method" => method, "code" => code_name(code)).increment(1);
    metrics::histogram!(crate::instruments::GRPC_DURATION, "method" => method).record(started.elapsed().as_secs_f64());
    result
}

/// The canonical upper-snake name of a status code, as gRPC documents them.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    /// [`super::METHODS`] lists exactly the methods the services measure.
    #[test]
    fn every_measured_method_is_registered_at_start() {
        let mut measured = Vec::new();
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src/grpc")).unwrap().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            for part in text.split("measured(\"").skip(1) {
                measured.push(part.split('"').next().unwrap().to_owned());
            }
        }
        measured.retain(|m| !m.is_empty() && m.contains('/'));
        measured.sort();
        measured.dedup();
        let mut listed: Vec<String> = super::METHODS.iter().map(|m| (*m).to_owned()).collect();
        listed.sort();
        assert_eq!(measured, listed);
    }
}
