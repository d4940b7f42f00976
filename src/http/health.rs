//! Liveness (`/healthz`: the process answers) and readiness (`/readyz`: start-up finished and
//! the database answers).

use std::sync::atomic::Ordering;

use axum::{Router, extract::State, http::StatusCode, response::Response, routing::get};
use sea_orm::ConnectionTrait;
use serde_json::json;

use super::{AppState, Error, Result, error::reply};

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

async fn healthz() -> Response {
    reply(StatusCode::OK, json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> Result<Response> {
    if !state.ready.load(Ordering::Relaxed) {
        return Err(Error::Unavailable("starting or shutting down".into()));
    }
    for db in [&state.db, &state.writer] {
        db.execute_raw(sea_orm::Statement::from_string(db.get_database_backend(), "SELECT 1"))
            .await
            .map_err(|e| Error::Unavailable(format!("database: {e}")))?;
    }
    Ok(reply(StatusCode::OK, json!({"status": "ready", "database": "ok", "bus": "in-process"})))
}
