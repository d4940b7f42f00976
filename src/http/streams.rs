//! Live streams of published domain events.
//!
//! - `GET /ws/logs` (WebSocket, administrators): every domain event, one JSON text frame each,
//!   as the outbox relay publishes it. Browsers cannot set headers on a WebSocket, so the access
//!   token may also come as `?access_token=`.
//! - `GET /api/v1/events/{id}/availability/stream` (Server-Sent Events, public like the event
//!   itself): the event's counts now, then again on every change (`inventory.changed`).
//! - `GET /api/v1/availability/stream?events=ID,ID,...` (SSE): the same for up to 100 events on
//!   one connection, for lists (a browser opens at most six HTTP/1.1 connections per server, so
//!   one stream per listed event would starve its other requests).
//!
//! Both read the bus's broadcast. In cluster mode only one node publishes the outbox; it passes
//! what it published to every other node (see [`crate::bridge::bus::Fanout`]), so a stream held
//! on any node shows every node's changes. A listener too slow to keep up misses events: the log stream
//! says how many in a `{"type":"lagged"}` frame, the availability stream re-reads the counts.

use std::{convert::Infallible, time::Duration};

use axum::{
    Router,
    extract::{
        Query, State,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    response::{
        IntoResponse, Response,
        sse::{Event as SseEvent, KeepAlive, Sse},
    },
    routing::get,
};
use futures::{Stream, StreamExt};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::{
    AppState, Error, Result,
    error::ApiPath,
    extract::{AuthUser, StreamSlot, StreamUser},
};
use crate::{
    auth::StreamPermit,
    domain::{DomainEvent, Payload, SlotCounts},
    store::entities::events,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/ws/logs", get(logs))
}

/// Routes under `/api/v1`.
pub fn api_router() -> Router<AppState> {
    Router::new()
        .route("/events/{id}/availability/stream", get(availability))
        .route("/availability/stream", get(availability_of_many))
}

/// Most events one multi-event stream follows (a page of a list).
const MAX_STREAMED_EVENTS: usize = 100;

async fn logs(
    State(state): State<AppState>,
    caller: StreamUser,
    StreamSlot(permit): StreamSlot,
    ws: WebSocketUpgrade,
) -> Result<Response> {
    caller.user.require_admin()?;
    let token = caller.token;
    let live = state.bus.subscribe_live();
    Ok(ws.on_upgrade(move |socket| async move {
        forward_logs(socket, live, state, token).await;
        drop(permit);
    }))
}

/// How often an open log socket checks that its token still opens it (a logout, a deletion or a
/// demotion ends the socket within this long).
const RECHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

async fn forward_logs(
    mut socket: WebSocket,
    mut live: tokio::sync::broadcast::Receiver<DomainEvent>,
    state: AppState,
    token: String,
) {
    let mut recheck = tokio::time::interval(RECHECK_EVERY);
    recheck.tick().await;
    loop {
        tokio::select! {
            _ = recheck.tick() => {
                let still_admin = AuthUser::from_token(&state, &token).await.is_ok_and(|u| u.is_admin());
                if !still_admin {
                    let _ = socket.send(Message::Close(Some(axum::extract::ws::CloseFrame {
                        code: axum::extract::ws::close_code::POLICY,
                        reason: "the token no longer opens this stream".into(),
                    }))).await;
                    return;
                }
            }
            event = live.recv() => {
                // An event is its one-line JSON form (see `DomainEvent`'s `Serialize`).
                let line = match event {
                    Ok(e) => serde_json::to_string(&e).unwrap_or_default(),
                    Err(RecvError::Lagged(n)) => json!({"type": "lagged", "missed": n}).to_string(),
                    Err(RecvError::Closed) => return,
                };
                if socket.send(Message::Text(line.into())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                // The client closed, or went away.
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

#[utoipa::path(get, path = "/api/v1/events/{id}/availability/stream", params(("id" = Uuid, Path, description = "the event's id")), tag = "catalog", security(()),
    responses((status = 200, description = "text/event-stream of `availability` events: \
        {eventId, total, available, held, sold}", content_type = "text/event-stream"), (status = 404)))]
async fn availability(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    StreamSlot(permit): StreamSlot,
) -> Result<Response> {
    events::Entity::find_by_id(id).one(&state.db).await?.ok_or_else(|| Error::not_found("event"))?;
    stream_counts(state, vec![id], permit).await
}

#[derive(Debug, Deserialize)]
struct ManyEvents {
    events: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/availability/stream", tag = "catalog", security(()),
    params(("events" = String, Query, description = "comma-separated event ids, at most 100")),
    responses((status = 200, description = "text/event-stream of `availability` events: \
        {eventId, total, available, held, sold}, first one per event, then on every change",
        content_type = "text/event-stream"), (status = 404), (status = 422)))]
async fn availability_of_many(
    State(state): State<AppState>,
    Query(q): Query<ManyEvents>,
    StreamSlot(permit): StreamSlot,
) -> Result<Response> {
    let raw = q.events.unwrap_or_default();
    let mut ids = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let id = Uuid::parse_str(part).map_err(|_| Error::invalid("events", format!("{part:?} is not an event id")))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
        if ids.len() > MAX_STREAMED_EVENTS {
            break;
        }
    }
    check_followed(&state, &ids, "events").await?;
    stream_counts(state, ids, permit).await
}

/// 1 to [`MAX_STREAMED_EVENTS`] events, all of which exist (gRPC's `Watch` too).
pub async fn check_followed(state: &AppState, ids: &[Uuid], field: &str) -> Result<()> {
    if ids.is_empty() || ids.len() > MAX_STREAMED_EVENTS {
        return Err(Error::invalid(field, format!("give 1 to {MAX_STREAMED_EVENTS} event ids")));
    }
    let known = events::Entity::find().filter(events::Column::Id.is_in(ids.to_vec())).count(&state.db).await?;
    if known != ids.len() as u64 {
        return Err(Error::not_found("event"));
    }
    Ok(())
}

/// The counts of `ids` now, then every change to any of them, for as long as the stream (and
/// with it the caller's `permit`) lives.
async fn stream_counts(state: AppState, ids: Vec<Uuid>, permit: StreamPermit) -> Result<Response> {
    // Subscribe before reading the counts, so no change falls between the two.
    let live = state.bus.subscribe_live();
    let first = counts(&state, &ids).await.into_iter().collect::<Result<Vec<_>>>()?;
    let stream = availability_stream(state, ids, first, live).map(move |m| {
        let _held = &permit;
        m
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}

/// The counts of each event now, asked of the event actors concurrently (a list page follows up
/// to a hundred events; one after another would hold the page for a hundred mailbox round trips).
pub async fn counts(state: &AppState, ids: &[Uuid]) -> Vec<Result<SlotCounts>> {
    futures::future::join_all(ids.iter().map(|id| async move {
        let s = state.inventories.snapshot(*id).await?;
        Ok(SlotCounts { event_id: *id, total: s.total, available: s.available, held: s.held, sold: s.sold })
    }))
    .await
}

/// One `availability` message: the same body as `inventory.changed`.
fn sse(c: &SlotCounts) -> SseEvent {
    SseEvent::default().event("availability").data(Payload::InventoryChanged(*c).to_json())
}

fn availability_stream(
    state: AppState,
    ids: Vec<Uuid>,
    first: Vec<SlotCounts>,
    live: tokio::sync::broadcast::Receiver<DomainEvent>,
) -> impl Stream<Item = std::result::Result<SseEvent, Infallible>> {
    let first = futures::stream::iter(first.iter().map(|v| Ok(sse(v))).collect::<Vec<_>>());
    let changes = futures::stream::unfold((state, live, ids), move |(state, mut live, ids)| async move {
        loop {
            match live.recv().await {
                Ok(DomainEvent { payload: Payload::InventoryChanged(c), .. }) if ids.contains(&c.event_id) => {
                    return Some((futures::stream::iter(vec![Ok(sse(&c))]), (state, live, ids)));
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    // Missed some: the counts now are what matters.
                    let now: Vec<_> = counts(&state, &ids).await.into_iter().flatten().map(|v| Ok(sse(&v))).collect();
                    return Some((futures::stream::iter(now), (state, live, ids)));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    first.chain(changes.flatten())
}
