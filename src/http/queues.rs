//! The queues of an event for the rush, both kept by the event's inventory (see
//! `actors::inventory::queue` and `::waitlist`).
//!
//! The virtual waiting room:
//! - `POST /api/v1/events/{id}/queue`: take a place (`201`), or see the one already held (`200`).
//! - `GET /api/v1/events/{id}/queue/me`: the caller's place.
//! - `GET /api/v1/events/{id}/queue/me/stream` (SSE): the place now, then on every change (the
//!   token may come as `?access_token=`, since a browser's `EventSource` cannot set headers).
//!
//! The waiting list of a sold-out event:
//! - `POST /api/v1/events/{id}/waitlist` `{"quantity": n}`: ask for seats (`201`), or see the
//!   entry already held (`200`); `409 seats_available` while the event can serve `n` now.
//! - `GET` and `DELETE /api/v1/events/{id}/waitlist/me`: the caller's entry; leave the list.
//!
//! The stream does not ask the inventory on every change (fifty thousand people waiting would
//! mean fifty thousand questions per admission). It follows the published `queue.admitted`
//! events instead: people go through in join order, so a waiting person's position is their
//! place number minus that of the last person admitted. It asks again only when it missed events.

use std::{convert::Infallible, time::Duration};

use axum::{
    Router,
    extract::State,
    http::StatusCode,
    response::{
        IntoResponse, Response,
        sse::{Event as SseEvent, KeepAlive, Sse},
    },
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use sea_orm::EntityTrait;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::{Receiver, error::RecvError};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    AppState, Error, Result,
    error::{ApiJson, ApiPath, reply},
    extract::{AuthUser, StreamUser},
};
use crate::{
    actors::inventory::{InventoryError, LineAnswer, LineOp, ListStatus, ListView, QueueStatus, QueueView},
    domain::{DomainEvent, Payload},
    error::Unavailable,
    store::entities::events,
};

/// Routes under `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/events/{id}/queue", post(join))
        .route("/events/{id}/queue/me", get(mine))
        .route("/events/{id}/queue/me/stream", get(mine_live))
        .route("/events/{id}/waitlist", post(join_list))
        .route("/events/{id}/waitlist/me", get(my_entry).delete(leave_list))
}

/// A person's entry on an event's waiting list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct ListEntry {
    /// Waiting people ahead plus one; `null` once offered.
    pub position: Option<u64>,
    pub status: ListStatus,
    pub quantity: u32,
}

impl From<ListView> for ListEntry {
    fn from(v: ListView) -> Self {
        Self { position: v.position, status: v.status, quantity: v.quantity }
    }
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinList {
    /// Seats wanted: 1 to the event's `max_per_order` (always 1 for a free event).
    #[schema(minimum = 1, maximum = 100)]
    pub quantity: i64,
}

#[utoipa::path(post, path = "/api/v1/events/{id}/waitlist", params(("id" = Uuid, Path, description = "the event's id")),
    tag = "queues", request_body = JoinList,
    responses((status = 201, body = ListEntry, description = "a new entry at the back"),
        (status = 200, body = ListEntry, description = "the entry already held"),
        (status = 404), (status = 409, description = "`seats_available`: book them instead"), (status = 422)))]
async fn join_list(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<JoinList>,
) -> Result<Response> {
    let event = events::Entity::find_by_id(id).one(&state.db).await?.ok_or_else(|| Error::not_found("event"))?;
    let max = if event.price_cents == 0 { 1 } else { i64::from(event.max_per_order) };
    if !(1..=max).contains(&req.quantity) {
        return Err(Error::invalid("quantity", format!("must be between 1 and {max}")));
    }
    let op = LineOp::JoinList { user_id: user.id, quantity: req.quantity as u32 };
    let (view, created) = list(&state, id, op).await?;
    let view = view.ok_or_else(|| anyhow::anyhow!("a waiting-list join answered without an entry"))?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(reply(status, ListEntry::from(view)))
}

#[utoipa::path(get, path = "/api/v1/events/{id}/waitlist/me", params(("id" = Uuid, Path, description = "the event's id")),
    tag = "queues",
    responses((status = 200, body = ListEntry), (status = 404, description = "no such event, or not listed")))]
async fn my_entry(State(state): State<AppState>, user: AuthUser, ApiPath(id): ApiPath<Uuid>) -> Result<Response> {
    exists(&state, id).await?;
    let view = list(&state, id, LineOp::ListOf { user_id: user.id }).await?.0;
    Ok(reply(StatusCode::OK, ListEntry::from(view.ok_or_else(|| Error::not_found("waiting-list entry"))?)))
}

#[utoipa::path(delete, path = "/api/v1/events/{id}/waitlist/me", params(("id" = Uuid, Path, description = "the event's id")),
    tag = "queues",
    responses((status = 204, description = "left the list"), (status = 404, description = "no such event, or not listed")))]
async fn leave_list(State(state): State<AppState>, user: AuthUser, ApiPath(id): ApiPath<Uuid>) -> Result<StatusCode> {
    exists(&state, id).await?;
    match list(&state, id, LineOp::LeaveList { user_id: user.id }).await?.0 {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(Error::not_found("waiting-list entry")),
    }
}

/// A person's place in an event's waiting room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct QueuePlace {
    /// People ahead plus one (1: next to be admitted); `null` once admitted.
    pub position: Option<u64>,
    pub status: QueueStatus,
    /// Until when the admission lets its holder book; `null` while waiting.
    pub admitted_until: Option<DateTime<Utc>>,
}

impl From<QueueView> for QueuePlace {
    fn from(v: QueueView) -> Self {
        Self { position: v.position, status: v.status, admitted_until: v.admitted_until }
    }
}

#[utoipa::path(post, path = "/api/v1/events/{id}/queue", params(("id" = Uuid, Path, description = "the event's id")),
    tag = "queues",
    responses((status = 201, body = QueuePlace, description = "a new place at the back"),
        (status = 200, body = QueuePlace, description = "the place already held (waiting or admitted)"),
        (status = 404), (status = 409, description = "`no_waiting_room`: the event has none")))]
async fn join(State(state): State<AppState>, user: AuthUser, ApiPath(id): ApiPath<Uuid>) -> Result<Response> {
    exists(&state, id).await?;
    let (view, created) = ask(&state, id, LineOp::JoinQueue { user_id: user.id }).await?;
    let view = view.ok_or_else(|| anyhow::anyhow!("a join answered without a place"))?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(reply(status, QueuePlace::from(view)))
}

#[utoipa::path(get, path = "/api/v1/events/{id}/queue/me", params(("id" = Uuid, Path, description = "the event's id")),
    tag = "queues",
    responses((status = 200, body = QueuePlace), (status = 404, description = "no such event, or never joined")))]
async fn mine(State(state): State<AppState>, user: AuthUser, ApiPath(id): ApiPath<Uuid>) -> Result<Response> {
    exists(&state, id).await?;
    let view = place_of(&state, id, user.id).await?;
    Ok(reply(StatusCode::OK, QueuePlace::from(view)))
}

#[utoipa::path(get, path = "/api/v1/events/{id}/queue/me/stream", params(("id" = Uuid, Path, description = "the event's id")),
    tag = "queues",
    responses((status = 200, content_type = "text/event-stream",
        description = "`queue` events, each a QueuePlace: the place now, then on every change"),
        (status = 404, description = "no such event, or never joined")))]
async fn mine_live(State(state): State<AppState>, caller: StreamUser, ApiPath(id): ApiPath<Uuid>) -> Result<Response> {
    let user = caller.user;
    exists(&state, id).await?;
    // Subscribe before reading the place, so no admission falls between the two.
    let live = state.bus.subscribe_live();
    let first = place_of(&state, id, user.id).await?;
    let follow = Follow { state, event: id, user: user.id, view: first, live };
    Ok(Sse::new(follow.stream()).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}

async fn exists(state: &AppState, id: Uuid) -> Result<()> {
    events::Entity::find_by_id(id).one(&state.db).await?.ok_or_else(|| Error::not_found("event"))?;
    Ok(())
}

/// The caller's place, or 404 if they never joined.
async fn place_of(state: &AppState, event: Uuid, user: Uuid) -> Result<QueueView> {
    ask(state, event, LineOp::QueueOf { user_id: user }).await?.0.ok_or_else(|| Error::not_found("queue place"))
}

async fn ask(state: &AppState, event: Uuid, op: LineOp) -> Result<(Option<QueueView>, bool)> {
    match line(state, event, op).await? {
        LineAnswer::Queue { view, created } => Ok((view, created)),
        other => Err(anyhow::anyhow!("a waiting-room question answered {other:?}").into()),
    }
}

async fn list(state: &AppState, event: Uuid, op: LineOp) -> Result<(Option<ListView>, bool)> {
    match line(state, event, op).await? {
        LineAnswer::List { view, created } => Ok((view, created)),
        other => Err(anyhow::anyhow!("a waiting-list question answered {other:?}").into()),
    }
}

/// One question to the event's inventory, its refusals as HTTP errors.
async fn line(state: &AppState, event: Uuid, op: LineOp) -> Result<LineAnswer> {
    match state.inventories.line(event, op).await? {
        Ok(answer) => Ok(answer),
        Err(InventoryError::NoWaitingRoom) => {
            Err(Error::conflict("no_waiting_room", "this event has no waiting room; book directly"))
        }
        Err(InventoryError::SeatsAvailable { available }) => Err(Error::conflict(
            "seats_available",
            format!("{available} seats are available: book them instead of joining the waiting list"),
        )),
        Err(InventoryError::TooMany { max }) => Err(Error::invalid("quantity", format!("must be between 1 and {max}"))),
        Err(e) => Err(Unavailable::because("the event's queues", e).into()),
    }
}

/// One person's place, followed live.
struct Follow {
    state: AppState,
    event: Uuid,
    user: Uuid,
    view: QueueView,
    live: Receiver<DomainEvent>,
}

impl Follow {
    fn stream(self) -> impl Stream<Item = std::result::Result<SseEvent, Infallible>> {
        let first = sse(self.view);
        let changes = futures::stream::unfold(self, |mut f| async move {
            let next = f.next_change().await?;
            Some((Ok(sse(next)), f))
        });
        futures::stream::once(async move { Ok(first) }).chain(changes)
    }

    /// Waits for the next change to the place (`None`: the stream ends).
    async fn next_change(&mut self) -> Option<QueueView> {
        loop {
            let expires = self.view.admitted_until.filter(|_| self.view.status == QueueStatus::Admitted);
            let until_expiry = expires.map(|t| (t - Utc::now()).to_std().unwrap_or_default());
            let event = tokio::select! {
                e = self.live.recv() => e,
                _ = tokio::time::sleep(until_expiry.unwrap_or(Duration::MAX)), if until_expiry.is_some() => {
                    self.view = QueueView { status: QueueStatus::Expired, position: None, ..self.view };
                    return Some(self.view);
                }
            };
            let changed = match event {
                Ok(DomainEvent { payload: Payload::QueueAdmitted(a), .. }) if a.event_id == self.event => {
                    if a.user_id == self.user {
                        Some(QueueView {
                            position: None,
                            status: QueueStatus::Admitted,
                            admitted_until: Some(a.admitted_until),
                            seq: a.seq,
                        })
                    } else if self.view.status == QueueStatus::Waiting && a.seq < self.view.seq {
                        let position = Some((self.view.seq - a.seq) as u64);
                        (position != self.view.position).then_some(QueueView { position, ..self.view })
                    } else {
                        None
                    }
                }
                // A new place taken elsewhere (another tab, after an expiry): read it.
                Ok(DomainEvent { payload: Payload::QueueJoined(j), .. })
                    if j.event_id == self.event && j.user_id == self.user && j.seq != self.view.seq =>
                {
                    place_of(&self.state, self.event, self.user).await.ok()
                }
                Ok(_) => None,
                // Missed some: the place now is what matters.
                Err(RecvError::Lagged(_)) => {
                    place_of(&self.state, self.event, self.user).await.ok().filter(|v| *v != self.view)
                }
                Err(RecvError::Closed) => return None,
            };
            if let Some(v) = changed {
                self.view = v;
                return Some(v);
            }
        }
    }
}

/// One `queue` message.
fn sse(v: QueueView) -> SseEvent {
    SseEvent::default().event("queue").data(serde_json::to_string(&QueuePlace::from(v)).unwrap_or_default())
}
