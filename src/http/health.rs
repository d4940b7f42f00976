//! Liveness (`/healthz`: the process answers) and readiness (`/readyz`: start-up finished, the
//! database answers, and with Kafka configured, the broker has been reached and the topics exist).
//!
//! A Kafka or MongoDB outage after that does not make the instance unready (a load balancer must
//! not drain every node for it): booking goes on, the outbox holds the events until the broker is
//! back, and audit documents wait. `/readyz` says `degraded` for them meanwhile: both are probed
//! every two seconds, so it says so within seconds of an outage even while idle, and `ok` within
//! seconds of the return.

use std::sync::atomic::Ordering;

use axum::{
    Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use sea_orm::ConnectionTrait;
use serde::Serialize;
use utoipa::ToSchema;

use super::{AppState, Error, Result, error::reply};
use crate::{bridge::bus::Transport, error::Unavailable};

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/metrics", get(metrics))
}

/// Prometheus text exposition: open when `http.metrics_token` is empty (scrape it from a private
/// network only), else for that bearer token alone.
async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Result<Response> {
    let expected = state.config.http.metrics_token.expose();
    if !expected.is_empty() {
        let given = super::extract::bearer(&headers)?.unwrap_or_default();
        // Constant-time: the comparison must not tell a guesser how much of the token was right.
        if !crate::auth::same_secret(given.trim(), expected) {
            return Err(Error::Unauthorized("GET /metrics needs the bearer token in http.metrics_token".into()));
        }
    }
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], crate::instruments::render())
        .into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthView {
    /// Always `ok`.
    pub status: &'static str,
}

/// What `/readyz` says about each dependency.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyView {
    /// Always `ready` (otherwise the answer is a 503 error).
    pub status: &'static str,
    pub database: &'static str,
    /// `ok`, `degraded: ...` (events wait in the outbox) or `not configured (in-process bus)`.
    pub kafka: &'static str,
    /// Where the audit log lives: `mongodb`, `mongodb: degraded ...` (unreachable), or `database`
    /// (the outbox table).
    pub audit_log: &'static str,
}

#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, body = HealthView, description = "the process answers")))]
async fn healthz() -> Response {
    reply(StatusCode::OK, HealthView { status: "ok" })
}

#[utoipa::path(get, path = "/readyz", tag = "health", security(()),
    responses((status = 200, body = ReadyView, description = "ready: database, and Kafka when configured"),
        (status = 503, description = "starting, shutting down, or a dependency is unreachable")))]
async fn readyz(State(state): State<AppState>) -> Result<Response> {
    if !state.ready.load(Ordering::Relaxed) {
        return Err(Error::Unavailable(Unavailable::new("starting or shutting down")));
    }
    for db in [&state.db, &state.writer] {
        db.execute_raw(sea_orm::Statement::from_string(db.get_database_backend(), "SELECT 1"))
            .await
            .map_err(|e| Unavailable::because("the database", e))?;
    }
    let kafka = match state.bus.transport() {
        Transport::InProcess(_) => "not configured (in-process bus)",
        Transport::Kafka(k) if !k.topics_ready() => {
            return Err(Error::Unavailable(Unavailable::new("kafka: broker not reached yet (topics not ensured)")));
        }
        Transport::Kafka(k) if k.healthy() => "ok",
        Transport::Kafka(_) => "degraded: publishing fails, events wait in the outbox",
    };
    let audit = match &state.audit_log {
        Some(log) if log.reachable() => "mongodb",
        Some(_) => "mongodb: degraded (unreachable; audit documents wait and are written on its return)",
        None => "database",
    };
    Ok(reply(StatusCode::OK, ReadyView { status: "ready", database: "ok", kafka, audit_log: audit }))
}
