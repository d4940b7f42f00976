//! The REST API (`/api/v1`), health probes and API docs, served by axum.
//!
//! One router per resource, merged here; all share [`AppState`]. Errors are [`Error`].

mod audit;
pub(crate) mod auth;
pub(crate) mod catalog;
mod cluster;
mod compat;
mod docs;
pub(crate) mod error;
pub(crate) mod extract;
mod health;
mod notifications;
pub(crate) mod orders;
pub(crate) mod payments;
pub mod postman;
mod queues;
pub mod serve;
pub(crate) mod streams;
pub(crate) mod users;
mod web;

use std::{
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderValue, StatusCode, header},
    response::IntoResponse,
};
use sea_orm::DatabaseConnection;
use tower_http::{
    catch_panic::CatchPanicLayer, set_header::SetResponseHeaderLayer, timeout::TimeoutLayer, trace::TraceLayer,
};

pub use auth::RegisterRequest;
pub use error::{Error, Result};
pub use serve::serve;

use crate::{
    actors::{Inventories, saga::OrderSagas},
    auth::{AuthKeys, Guard},
    bridge::bus::Bus,
    config::Config,
    store::mongo::MongoAuditLog,
};

/// Everything a handler may need. axum clones the state for every request, so it is one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    pub fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

pub struct AppParts {
    pub db: DatabaseConnection,
    /// The committer's own connection (readiness checks it too).
    pub writer: DatabaseConnection,
    pub config: Arc<Config>,
    pub auth: Arc<AuthKeys>,
    /// Who may call: live accounts, revocations, login lockout, per-address limits.
    pub guard: Arc<Guard>,
    pub inventories: Inventories,
    /// Orders' sagas, on the node that owns each order's event.
    pub orders: OrderSagas,
    /// This node's view of the cluster (single-node mode: itself alone).
    pub cluster: crate::cluster::Cluster,
    /// Live domain events, for streams; also tells readiness which transport is in use.
    pub bus: Bus,
    /// The audit log on MongoDB, when configured (else the `audit_logs` table).
    pub audit_log: Option<Arc<MongoAuditLog>>,
    /// False until start-up finished and while shutting down.
    pub ready: Arc<AtomicBool>,
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(auth::router())
        .merge(users::router())
        .merge(notifications::router())
        .merge(catalog::router())
        .merge(orders::router())
        .merge(queues::router())
        .merge(payments::router())
        .merge(audit::router())
        .merge(cluster::router())
        .merge(streams::api_router());
    let timeout = Duration::from_millis(state.config.http.request_timeout_ms);
    let body_limit = state.config.http.body_limit_bytes;
    let compat = state.config.compat.enabled;
    let mut routes = Router::new().nest("/api/v1", api);
    if compat {
        routes = routes.merge(compat::router());
    }
    routes
        .merge(health::router())
        .merge(streams::router())
        .merge(docs::router(compat))
        .merge(postman::router())
        .merge(web::router())
        .fallback(|| async { Error::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        // Only matched routes are measured, labelled by their template, so label values stay few.
        .route_layer(axum::middleware::from_fn(track))
        .layer(DefaultBodyLimit::max(body_limit))
        // No answer may be sniffed into something it is not (an error page into HTML, say).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(CatchPanicLayer::custom(|_| Error::Internal(anyhow::anyhow!("handler panicked")).into_response()))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout))
        .layer(TraceLayer::new_for_http())
        // A connection over `http.max_connections` is served its reserved routes only.
        .layer(axum::middleware::from_fn(serve::refuse_over_cap))
        .with_state(state)
}

/// Counts and times each request by matched route template, method and status.
async fn track(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let started = std::time::Instant::now();
    // Both clones are cheap: the template is an `Arc<str>`, a standard method a plain value.
    let route = req.extensions().get::<axum::extract::MatchedPath>().cloned();
    let method = req.method().clone();
    let response = next.run(req).await;
    let elapsed = started.elapsed().as_secs_f64();
    let route = route.as_ref().map_or("unmatched", |p| p.as_str());
    RouteMetrics::with(route, &method, response.status(), |m| {
        m.requests.increment(1);
        m.duration.record(elapsed);
    });
    response
}

/// One route's metric handles for one method and status.
///
/// Naming a labelled metric (`counter!(name, "route" => ...)`) allocates its label values, builds
/// and hashes its key and looks it up in the recorder's registry: per request, on every request.
/// The handles it returns stay valid, so each thread keeps the ones it has used, by route
/// template, and every request after the first of its kind only finds them. Templates, methods and
/// statuses are few, so the cache stays small.
struct RouteMetrics {
    method: axum::http::Method,
    status: StatusCode,
    requests: metrics::Counter,
    duration: metrics::Histogram,
}

thread_local! {
    static ROUTE_METRICS: std::cell::RefCell<std::collections::HashMap<String, Vec<RouteMetrics>>> =
        std::cell::RefCell::default();
}

impl RouteMetrics {
    fn with(route: &str, method: &axum::http::Method, status: StatusCode, f: impl FnOnce(&RouteMetrics)) {
        ROUTE_METRICS.with_borrow_mut(|routes| {
            // One lookup on every request; a route's first request also inserts.
            let kinds = match routes.get_mut(route) {
                Some(kinds) => kinds,
                None => routes.entry(route.to_owned()).or_default(),
            };
            let at = match kinds.iter().position(|m| m.method == *method && m.status == status) {
                Some(at) => at,
                None => {
                    let (r, m) = (route.to_owned(), method.as_str().to_owned());
                    kinds.push(RouteMetrics {
                        method: method.clone(),
                        status,
                        requests: metrics::counter!(crate::instruments::HTTP_REQUESTS, "route" => r.clone(), "method" => m.clone(), "status" => status.as_u16().to_string()),
                        duration: metrics::histogram!(crate::instruments::HTTP_DURATION, "route" => r, "method" => m),
                    });
                    kinds.len() - 1
                }
            };
            f(&kinds[at]);
        });
    }
}
