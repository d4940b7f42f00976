//! `/cluster` (admins only): this node's view of the cluster, and which node owns an event.

use axum::{Router, extract::State, http::StatusCode, response::Response, routing::get};
use sea_orm::EntityTrait;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    AppState, Error, Result,
    error::{ApiPath, reply},
    extract::AdminUser,
};
use crate::{
    cluster::ClusterView,
    error::Unavailable,
    store::{entities::events, leases},
};

pub fn router() -> Router<AppState> {
    Router::new().route("/cluster", get(view)).route("/cluster/owner/{event_id}", get(owner))
}

#[utoipa::path(get, path = "/api/v1/cluster", tag = "cluster",
    responses((status = 200, body = ClusterView), (status = 401), (status = 403)))]
pub(super) async fn view(State(state): State<AppState>, _: AdminUser) -> Result<Response> {
    Ok(reply(StatusCode::OK, state.cluster.view()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OwnerView {
    pub event_id: Uuid,
    /// The node that runs the event's inventory.
    pub owner: String,
    /// The lease's epoch (0 in single-node mode, which has no leases).
    pub epoch: i64,
}

/// The event's owner. An event nobody owns yet (or whose owner's lease lapsed) is placed first,
/// as its next request would place it.
#[utoipa::path(get, path = "/api/v1/cluster/owner/{event_id}", tag = "cluster",
    params(("event_id" = Uuid, Path)),
    responses((status = 200, body = OwnerView), (status = 401), (status = 403), (status = 404), (status = 503)))]
pub(super) async fn owner(
    State(state): State<AppState>,
    _: AdminUser,
    ApiPath(event_id): ApiPath<Uuid>,
) -> Result<Response> {
    let exists = events::Entity::find_by_id(event_id)
        .one(&state.db)
        .await
        .map_err(|e| Unavailable::because("the events table", e))?;
    if exists.is_none() {
        return Err(Error::not_found("event"));
    }
    if !state.cluster.enabled() {
        return Ok(reply(StatusCode::OK, OwnerView { event_id, owner: state.cluster.name().to_owned(), epoch: 0 }));
    }
    let live = |l: &leases::Lease| l.expires_at > chrono::Utc::now();
    let mut lease =
        leases::current(&state.db, event_id).await.map_err(|e| Unavailable::because("the event leases", e))?;
    if !lease.as_ref().is_some_and(live) {
        state.inventories.snapshot(event_id).await?;
        lease = leases::current(&state.db, event_id).await.map_err(|e| Unavailable::because("the event leases", e))?;
    }
    let lease = lease.filter(live).ok_or_else(|| Unavailable::new("the event has no owner right now"))?;
    Ok(reply(StatusCode::OK, OwnerView { event_id, owner: lease.owner, epoch: lease.epoch }))
}
