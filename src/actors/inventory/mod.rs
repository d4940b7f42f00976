//! `EventInventory`: one actor per event, the single writer of that event's slots.
//!
//! It owns `total`, `held` (per-order holds, each with its own expiry on the event's one clock,
//! [`timers`]) and `sold`, and keeps `available + held + sold == total` after every message. A
//! change is applied in memory first, so the next message already sees it, then handed to the
//! [`Committer`]; the caller is answered only after the commit, by the committer itself
//! ([`InventoryState::commit`], the one path every write ends on), so the actor never waits on
//! the disk and many holds share one transaction.
//!
//! If a commit fails the actor fails on purpose: its supervisor restarts it and the new instance
//! rebuilds its counts from the database, which is the truth ([`recovery`]).
//!
//! In cluster mode the actor acts under a lease ([`crate::store::leases`]) and every job it
//! commits carries that lease's epoch as a [`Fence`]. If the committer refuses a job because the
//! lease moved on (this node was paused or cut off past its lease, and another node took the
//! event), the caller hears [`InventoryError::Moved`] and the actor stops for good: its memory is
//! stale, and the event lives on the node that holds the lease now.
//!
//! It also keeps the event's virtual waiting room ([`queue`]): places in join order, admissions
//! paced at the event's `admit_per_second`, and, while the room is on, no reservation for anyone
//! not admitted. Being the single writer of the seats makes it the one place those rules can hold
//! without a race, and the room moves with the event (it is recovered from the store like holds).
//!
//! Parts: [`slots`] (the arithmetic and its invariant), [`queue`] (the waiting room's
//! bookkeeping), [`recovery`], [`rows`] (what is written), [`timers`] (the holds' expiry
//! clock), and this module: the messages, the actor and the commit path.

pub mod queue;
mod recovery;
mod rows;
pub mod slots;
mod timers;
pub mod waitlist;

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, SubsecRound, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, concurrency::JoinHandle};
use sea_orm::{DatabaseConnection, DbErr};
use tokio::time::Instant;
use uuid::Uuid;

use crate::{
    domain::{
        DomainEvent, OrderFacts, OrderKind, OrderStatus, Payload, ReleaseReason, SlotCounts,
        events::{
            OrderConfirmed, OrderPlaced, QueueAdmitted, QueueJoined, Registration, WaitlistEntry, WaitlistOffered,
        },
    },
    instruments,
    store::{
        Committer, WriteOp,
        committer::{CommitError, Fence},
        entities::{events, queue_entries, tickets, waitlist_entries},
    },
};

pub use queue::{QueueStatus, QueueView};
use rows::{order_row, release_ops, reset_all, ticket_codes, ticket_model, ticket_rows};
pub use slots::{EventTerms, Slots};
pub use waitlist::{ListStatus, ListView};

/// A live hold.
struct Hold {
    facts: OrderFacts,
    /// When the hold was placed (for the saga-duration histogram).
    placed: Instant,
    /// The hold's own end on the monotonic clock (what `expires_at` says).
    own_deadline: Instant,
    /// Monotonic instant the timer is armed for: `own_deadline`, or later while pinned.
    deadline: Instant,
    /// A payment is in flight: the hold waits for it, up to the pin bound.
    pinned: bool,
    /// Its entry on the expiry clock, with `deadline`; bumped on every re-arm so a stale timer
    /// message is ignored.
    token: u64,
}

/// Numbers for readers: the live counts of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub total: u32,
    pub available: u32,
    pub held: u32,
    pub sold: u32,
    pub active_holds: u32,
}

/// A request for slots (also sent between cluster nodes, hence serde).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ReserveRequest {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub quantity: u32,
    /// Registrations (the free one-click flow) are recorded as such.
    pub registration: bool,
}

/// The outcome of a granted reservation, durable when it is sent.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Reservation {
    pub order_id: Uuid,
    pub kind: OrderKind,
    pub status: OrderStatus,
    pub amount_cents: i64,
    pub currency: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// When the order row was written (its `created_at` and `updated_at`).
    pub created_at: DateTime<Utc>,
}

/// Also an answer between cluster nodes (the cluster wire format), hence serde.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum InventoryError {
    #[error("not enough seats left")]
    SoldOut { available: u32 },
    #[error("at most {max} seats per order")]
    TooMany { max: u32 },
    /// The person would hold and own more than the event's `max_per_person`.
    #[error("at most {max} seats per person; this person has {has}")]
    PersonLimit { max: u32, has: u32 },
    /// The order's total does not fit in the money type (a price stored before prices were bounded).
    #[error("the order's amount is out of range")]
    AmountOutOfRange,
    #[error("this event is not free")]
    NotFree,
    #[error("this person is already registered for this event")]
    AlreadyRegistered,
    #[error("the order holds no seats (expired, cancelled or unknown)")]
    NotHeld,
    #[error("capacity cannot drop below {committed} held and sold seats")]
    CapacityBelowCommitted { committed: u32 },
    #[error("the booking store is unavailable")]
    Unavailable,
    /// This node no longer owns the event (its lease moved on): nothing was written; retry.
    #[error("the event moved to another node")]
    Moved,
    #[error("this event has no waiting room")]
    NoWaitingRoom,
    /// A waiting-list request the event can serve now.
    #[error("seats are available: book them instead")]
    SeatsAvailable { available: u32 },
    /// The event's waiting room is on and this person holds no current admission.
    #[error("this event admits buyers through its waiting room; join the queue first")]
    QueueRequired,
}

/// Asks about a person's place in the event's lines (also sent between cluster nodes).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LineOp {
    /// Take a place in the waiting room (or see the one already held).
    JoinQueue { user_id: Uuid },
    /// The person's place in the waiting room, if they ever joined.
    QueueOf { user_id: Uuid },
    /// Ask for `quantity` seats of the sold-out event (or see the entry already held).
    JoinList { user_id: Uuid, quantity: u32 },
    /// The person's waiting-list entry, unless they left it.
    ListOf { user_id: Uuid },
    /// Leave the waiting list.
    LeaveList { user_id: Uuid },
}

/// The answer to a [`LineOp`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "line", rename_all = "snake_case")]
pub enum LineAnswer {
    /// `created`: a new place was taken by this request.
    Queue { view: Option<QueueView>, created: bool },
    /// `created`: a new entry was made by this request; after a leave, `view` is the entry left.
    List { view: Option<ListView>, created: bool },
}

/// Why an inventory actor stops itself for its supervisor to restart it.
#[derive(Debug, thiserror::Error)]
enum InventoryFailure {
    #[error("a commit failed; restarting from the store")]
    Commit(#[source] CommitError),
    #[error("the barrier commit before recovery failed")]
    Barrier(#[source] CommitError),
    #[error("releasing holds that lapsed while stopped failed")]
    Lapsed(#[source] CommitError),
    #[error("event {0} not found")]
    NoEvent(Uuid),
    #[error("loading the event and its orders")]
    Load(#[from] DbErr),
    #[error("the slot invariant is violated")]
    Invariant,
}

pub enum InventoryMsg {
    /// The instant is when the request was sent, to measure its time in the mailbox.
    Reserve(ReserveRequest, Instant, RpcReplyPort<Result<Reservation, InventoryError>>),
    /// A payment starts: the hold may not expire until it resolves (bounded). The answer is the
    /// lease this inventory acts under (cluster mode), for the saga to fence its own commit with.
    Pin(Uuid, RpcReplyPort<Result<Option<Fence>, InventoryError>>),
    /// The payment failed: the hold runs on to its own expiry.
    Unpin(Uuid, RpcReplyPort<Result<(), InventoryError>>),
    /// Sell the held seats; `extra` commits atomically with it (the payment's record).
    Confirm(Uuid, Vec<WriteOp>, RpcReplyPort<Result<Vec<tickets::Model>, InventoryError>>),
    /// Give the seats of a hold or a sale back; `extra` commits with it (refunds).
    Release(Uuid, ReleaseReason, Vec<WriteOp>, RpcReplyPort<Result<(), InventoryError>>),
    Reconfigure(events::Model, RpcReplyPort<Result<(), InventoryError>>),
    Snapshot(RpcReplyPort<Snapshot>),
    /// The waiting room and (later) the waiting list.
    Line(LineOp, RpcReplyPort<Result<LineAnswer, InventoryError>>),
    /// The waiting room's clock: admit whoever is due.
    AdmitTick,
    HoldTimer(Uuid, u64),
    /// The expiry clock's wake-up: release every hold whose time has come.
    HoldsDue,
    /// A commit of this actor's writes failed: it restarts from the store, or, if it was fenced,
    /// stops (another node owns the event now).
    CommitFailed(CommitError),
    IdleCheck,
}

// Local only: ractor's `cluster` feature wants every message type declared (see the cluster module).
impl ractor::Message for InventoryMsg {}

pub struct InventoryArgs {
    pub event_id: Uuid,
    pub db: DatabaseConnection,
    pub committer: Committer,
    pub payment_pin_max: Duration,
    pub passivate_after: Option<Duration>,
    /// Cluster mode: the lease this actor acts under (every commit is fenced by it).
    pub fence: Option<Fence>,
    /// How long a waiting-room admission lasts (`booking.admission_seconds`).
    pub admission: Duration,
}

pub struct InventoryState {
    terms: EventTerms,
    slots: Slots,
    holds: HashMap<Uuid, Hold>,
    /// Sold orders and their quantity, so a cancellation gives back exactly what it bought.
    sold_orders: HashMap<Uuid, OrderFacts>,
    /// Seats each person holds or has bought here (for `max_per_person`): kept with `holds` and
    /// `sold_orders` by [`InventoryState::count_in`] and [`InventoryState::count_out`].
    per_person: HashMap<Uuid, u32>,
    /// Each person's confirmed registration here, by user, with its order: one per person and
    /// event, decided by this single writer (so on every node of a cluster) before anything is
    /// written; the database's unique index is the backstop no batch should ever reach.
    registered: HashMap<Uuid, Uuid>,
    /// The waiting room.
    queue: queue::Queue,
    /// The waiting list.
    waitlist: waitlist::Waitlist,
    /// Holds made as waiting-list offers and not yet paid (for the "offers taken" count).
    offered: std::collections::HashSet<Uuid>,
    /// Runs while somebody waits: [`InventoryMsg::AdmitTick`] every [`queue::TICK`].
    queue_ticker: Option<JoinHandle<()>>,
    /// When admissions were last counted.
    queue_ticked: Instant,
    admission: Duration,
    committer: Committer,
    fence: Option<Fence>,
    payment_pin_max: Duration,
    passivate_after: Option<Duration>,
    last_activity: Instant,
    next_token: u64,
    /// Every hold's expiry, on one clock.
    timers: timers::HoldTimers,
    idle_timer: Option<JoinHandle<()>>,
    /// This event's gauges, registered once: the hot path only sets values.
    gauges: SlotGauges,
}

/// `boxoffice_event_slots{event_id, state}` and `boxoffice_holds_active{event_id}`.
struct SlotGauges {
    available: metrics::Gauge,
    held: metrics::Gauge,
    sold: metrics::Gauge,
    holds: metrics::Gauge,
    /// People in the waiting room.
    waiting: metrics::Gauge,
    /// People on the waiting list.
    listed: metrics::Gauge,
    /// Reservations' time in the mailbox (not per event: one series for all events).
    queue: metrics::Histogram,
}

impl SlotGauges {
    fn new(event_id: Uuid) -> Self {
        let id = event_id.to_string();
        let slots =
            |state: &'static str| metrics::gauge!(instruments::EVENT_SLOTS, "event_id" => id.clone(), "state" => state);
        Self {
            available: slots("available"),
            held: slots("held"),
            sold: slots("sold"),
            holds: metrics::gauge!(instruments::HOLDS_ACTIVE, "event_id" => id.clone()),
            waiting: metrics::gauge!(instruments::QUEUE_WAITING, "event_id" => id.clone()),
            listed: metrics::gauge!(instruments::WAITLIST_WAITING, "event_id" => id.clone()),
            queue: metrics::histogram!(instruments::INVENTORY_QUEUE),
        }
    }
}

pub struct EventInventory;

impl Actor for EventInventory {
    type Msg = InventoryMsg;
    type State = InventoryState;
    type Arguments = InventoryArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: InventoryArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(recovery::recover(&myself, args).await?)
    }

    async fn post_stop(&self, _myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        state.timers.stop();
        if let Some(t) = &state.idle_timer {
            t.abort();
        }
        if let Some(t) = &state.queue_ticker {
            t.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if !matches!(msg, InventoryMsg::IdleCheck | InventoryMsg::Snapshot(_) | InventoryMsg::AdmitTick) {
            state.last_activity = Instant::now();
        }
        match msg {
            InventoryMsg::Reserve(req, sent, reply) => {
                state.gauges.queue.record(sent.elapsed().as_secs_f64());
                state.reserve(&myself, req, reply).await
            }
            InventoryMsg::Pin(order, reply) => {
                let _ = reply.send(state.pin(&myself, order).map(|()| state.fence));
            }
            InventoryMsg::Unpin(order, reply) => {
                let result = state.unpin(&myself, order).await;
                let _ = reply.send(result);
            }
            InventoryMsg::Confirm(order, extra, reply) => state.confirm(&myself, order, extra, reply).await,
            InventoryMsg::Release(order, reason, extra, reply) => {
                state.release(&myself, order, reason, extra, Some(reply)).await;
            }
            InventoryMsg::Reconfigure(model, reply) => state.reconfigure(&myself, model, reply).await,
            InventoryMsg::Snapshot(reply) => {
                let _ = reply.send(state.snapshot());
            }
            InventoryMsg::Line(op, reply) => state.line(&myself, op, reply).await,
            InventoryMsg::AdmitTick => state.admit_due(&myself).await,
            InventoryMsg::HoldTimer(order, token) => state.on_timer(&myself, order, token).await,
            InventoryMsg::HoldsDue => {
                for (order, token) in state.timers.due(&myself, Instant::now()) {
                    state.on_timer(&myself, order, token).await;
                }
            }
            InventoryMsg::CommitFailed(CommitError::Fenced { event_id, epoch }) => {
                // Not a failure to restart from: this node lost the event (see the module docs).
                tracing::warn!(event = %event_id, epoch, "the lease moved on; this inventory stops");
                myself.stop(Some("fenced".into()));
            }
            InventoryMsg::CommitFailed(why) => {
                // Restart from the database; see the module docs.
                return Err(Box::new(InventoryFailure::Commit(why)));
            }
            InventoryMsg::IdleCheck => {
                if let Some(after) = state.passivate_after
                    && state.holds.is_empty()
                    && state.queue.waiting_len() == 0
                    && state.last_activity.elapsed() >= after
                {
                    tracing::debug!(event = %state.terms.id, "passivating idle inventory");
                    myself.stop(Some("idle".into()));
                }
            }
        }
        if !state.slots.is_consistent() {
            tracing::error!(event = %state.terms.id, slots = ?state.slots, "INVARIANT VIOLATED");
            metrics::counter!(instruments::INVARIANT_VIOLATIONS).increment(1);
            return Err(Box::new(InventoryFailure::Invariant));
        }
        Ok(())
    }
}

/// Who hears about a commit: the caller waiting for `value`, if any.
type Reply<R> = Option<(RpcReplyPort<Result<R, InventoryError>>, R)>;

impl InventoryState {
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            total: self.slots.total,
            available: self.slots.available(),
            held: self.slots.held,
            sold: self.slots.sold,
            active_holds: self.holds.len() as u32,
        }
    }

    /// A person's seats here, held or bought.
    fn seats_of(&self, user: Uuid) -> u32 {
        self.per_person.get(&user).copied().unwrap_or(0)
    }

    /// An order starts occupying seats (a new hold, or a sale that was not a hold here).
    fn count_in(&mut self, facts: &OrderFacts) {
        *self.per_person.entry(facts.user_id).or_default() += facts.quantity;
    }

    /// An order stops occupying seats (released or cancelled).
    fn count_out(&mut self, facts: &OrderFacts) {
        if let Some(n) = self.per_person.get_mut(&facts.user_id) {
            *n = n.saturating_sub(facts.quantity);
            if *n == 0 {
                self.per_person.remove(&facts.user_id);
            }
        }
    }

    /// Records a sale that was not a hold here before (free events, recovery).
    fn add_sale(&mut self, facts: OrderFacts) {
        self.count_in(&facts);
        self.sold_orders.insert(facts.order_id, facts);
    }

    fn add_hold(&mut self, myself: &ActorRef<InventoryMsg>, facts: OrderFacts, placed: Instant, deadline: Instant) {
        self.count_in(&facts);
        self.next_token += 1;
        let token = self.next_token;
        let order = facts.order_id;
        self.timers.arm(myself, order, token, deadline);
        let hold = Hold { facts, placed, own_deadline: deadline, deadline, pinned: false, token };
        self.holds.insert(order, hold);
    }

    fn rearm(&mut self, myself: &ActorRef<InventoryMsg>, order: Uuid, deadline: Instant) {
        self.next_token += 1;
        let token = self.next_token;
        if let Some(h) = self.holds.get_mut(&order) {
            self.timers.disarm(h.deadline, h.token);
            h.deadline = deadline;
            h.token = token;
            self.timers.arm(myself, order, token, deadline);
        }
    }

    async fn reserve(
        &mut self,
        myself: &ActorRef<InventoryMsg>,
        req: ReserveRequest,
        reply: RpcReplyPort<Result<Reservation, InventoryError>>,
    ) {
        if req.quantity == 0 || req.quantity > self.terms.max_per_order {
            let _ = reply.send(Err(InventoryError::TooMany { max: self.terms.max_per_order }));
            return;
        }
        if req.registration && !self.terms.is_free() {
            let _ = reply.send(Err(InventoryError::NotFree));
            return;
        }
        if req.registration && self.registered.contains_key(&req.user_id) {
            let _ = reply.send(Err(InventoryError::AlreadyRegistered));
            return;
        }
        if self.terms.waiting_room && !self.queue.is_admitted(req.user_id, Utc::now()) {
            instruments::refused(instruments::refusal::QUEUE_REQUIRED);
            let _ = reply.send(Err(InventoryError::QueueRequired));
            return;
        }
        if let Err(e) = self.person_may_take(req.user_id, req.quantity) {
            let _ = reply.send(Err(e));
            return;
        }
        match self.grant(myself, &req) {
            Ok((mut ops, reservation)) => {
                ops.push(self.changed());
                self.commit(myself, ops, None, Some((reply, reservation))).await;
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    /// Within the event's `max_per_person`, counting what the person holds and bought.
    fn person_may_take(&self, user: Uuid, quantity: u32) -> Result<(), InventoryError> {
        let has = self.seats_of(user);
        let max = self.terms.max_per_person;
        if !within_person_limit(has, quantity, max) {
            instruments::refused(instruments::refusal::PERSON_LIMIT);
            return Err(InventoryError::PersonLimit { max, has });
        }
        Ok(())
    }

    /// Takes the seats (a hold, or for a free event a sale) in memory and says what to write: the
    /// one place a reservation is made, for a buyer's request and for a waiting-list offer.
    fn grant(
        &mut self,
        myself: &ActorRef<InventoryMsg>,
        req: &ReserveRequest,
    ) -> Result<(Vec<WriteOp>, Reservation), InventoryError> {
        let amount_cents = crate::domain::order_amount(self.terms.price_cents, req.quantity)
            .ok_or(InventoryError::AmountOutOfRange)?;
        let facts = OrderFacts {
            order_id: req.order_id,
            event_id: self.terms.id,
            user_id: req.user_id,
            quantity: req.quantity,
            amount_cents,
            currency: self.terms.currency.clone(),
        };
        // Microseconds, as PostgreSQL stores them: the answer shows what a later read will.
        let now = Utc::now().trunc_subsecs(6);
        let kind = if req.registration { OrderKind::Registration } else { OrderKind::Order };
        let mut ops;
        let reservation;
        if self.terms.is_free() {
            // Free events confirm at once: the seats are sold, the tickets issued.
            if !self.slots.sell(req.quantity) {
                metrics::counter!(instruments::SOLD_OUT).increment(1);
                return Err(InventoryError::SoldOut { available: self.slots.available() });
            }
            let tickets = ticket_rows(&facts, now);
            let codes = ticket_codes(&tickets);
            ops = vec![WriteOp::InsertOrder(order_row(&facts, kind, OrderStatus::Confirmed, None, now))];
            ops.push(WriteOp::InsertTickets(tickets));
            if req.registration {
                self.registered.insert(facts.user_id, facts.order_id);
                ops.push(WriteOp::Outbox(DomainEvent::new(Payload::RegistrationCreated(Registration {
                    registration_id: facts.order_id,
                    order_id: facts.order_id,
                    user_id: facts.user_id,
                    event_id: facts.event_id,
                    quantity: facts.quantity,
                }))));
            } else {
                ops.push(WriteOp::Outbox(DomainEvent::new(Payload::OrderPlaced(OrderPlaced {
                    order: facts.clone(),
                    status: OrderStatus::Pending,
                    expires_at: None,
                }))));
                ops.push(WriteOp::Outbox(DomainEvent::new(Payload::OrderConfirmed(OrderConfirmed {
                    order: facts.clone(),
                    status: OrderStatus::Confirmed,
                    tickets: codes,
                }))));
            }
            reservation = Reservation {
                order_id: facts.order_id,
                kind,
                status: OrderStatus::Confirmed,
                amount_cents: 0,
                currency: facts.currency.clone(),
                expires_at: None,
                created_at: now,
            };
            self.add_sale(facts);
        } else {
            if !self.slots.hold(req.quantity) {
                metrics::counter!(instruments::SOLD_OUT).increment(1);
                return Err(InventoryError::SoldOut { available: self.slots.available() });
            }
            let ttl = Duration::from_secs(u64::from(self.terms.hold_seconds));
            let expires_at = now + chrono::Duration::from_std(ttl).unwrap_or_default();
            ops = vec![
                WriteOp::InsertOrder(order_row(&facts, kind, OrderStatus::Pending, Some(expires_at), now)),
                WriteOp::Outbox(DomainEvent::new(Payload::OrderPlaced(OrderPlaced {
                    order: facts.clone(),
                    status: OrderStatus::Pending,
                    expires_at: Some(expires_at),
                }))),
            ];
            reservation = Reservation {
                order_id: facts.order_id,
                kind,
                status: OrderStatus::Pending,
                amount_cents: facts.amount_cents,
                currency: facts.currency.clone(),
                expires_at: Some(expires_at),
                created_at: now,
            };
            let now = Instant::now();
            self.add_hold(myself, facts, now, now + ttl);
        }
        Ok((ops, reservation))
    }

    async fn line(
        &mut self,
        myself: &ActorRef<InventoryMsg>,
        op: LineOp,
        reply: RpcReplyPort<Result<LineAnswer, InventoryError>>,
    ) {
        let now = Utc::now().trunc_subsecs(6);
        match op {
            LineOp::JoinList { user_id, quantity } => self.join_list(myself, user_id, quantity, reply).await,
            LineOp::ListOf { user_id } => {
                let _ = reply.send(Ok(LineAnswer::List { view: self.waitlist.view(user_id), created: false }));
            }
            LineOp::LeaveList { user_id } => {
                let view = self.waitlist.view(user_id);
                let Some(entry) = self.waitlist.leave(user_id) else {
                    let _ = reply.send(Ok(LineAnswer::List { view: None, created: false }));
                    return;
                };
                self.list_gauge();
                let ops = vec![
                    WriteOp::SetWaitlistStatus { id: entry.entry_id, status: ListStatus::Left, order: None },
                    WriteOp::Outbox(DomainEvent::new(Payload::WaitlistLeft(listed(self.terms.id, &entry)))),
                ];
                self.commit(myself, ops, None, Some((reply, LineAnswer::List { view, created: false }))).await;
            }
            LineOp::QueueOf { user_id } => {
                let _ = reply.send(Ok(LineAnswer::Queue { view: self.queue.view(user_id, now), created: false }));
            }
            LineOp::JoinQueue { user_id } => {
                if !self.terms.waiting_room {
                    let _ = reply.send(Err(InventoryError::NoWaitingRoom));
                    return;
                }
                let (place, view) = match self.queue.join(user_id, Uuid::now_v7(), now) {
                    queue::Join::Existing(view) => {
                        let _ = reply.send(Ok(LineAnswer::Queue { view: Some(view), created: false }));
                        return;
                    }
                    queue::Join::New(place, view) => (place, view),
                };
                let row = queue_entries::ActiveModel {
                    id: sea_orm::Set(place.entry_id),
                    event_id: sea_orm::Set(self.terms.id),
                    user_id: sea_orm::Set(user_id),
                    seq: sea_orm::Set(place.seq),
                    joined_at: sea_orm::Set(now),
                    admitted_until: sea_orm::Set(None),
                };
                let joined = QueueJoined {
                    event_id: self.terms.id,
                    user_id,
                    entry_id: place.entry_id,
                    seq: place.seq,
                    joined_at: now,
                };
                metrics::counter!(instruments::QUEUE_JOINS).increment(1);
                self.start_queue_clock(myself);
                self.queue_gauge();
                let ops = vec![WriteOp::InsertQueueEntry(row), WriteOp::Outbox(DomainEvent::new(joined))];
                let answer = LineAnswer::Queue { view: Some(view), created: true };
                self.commit(myself, ops, None, Some((reply, answer))).await;
            }
        }
    }

    async fn join_list(
        &mut self,
        myself: &ActorRef<InventoryMsg>,
        user_id: Uuid,
        quantity: u32,
        reply: RpcReplyPort<Result<LineAnswer, InventoryError>>,
    ) {
        if quantity == 0 || quantity > self.terms.max_per_order || (self.terms.is_free() && quantity != 1) {
            let max = if self.terms.is_free() { 1 } else { self.terms.max_per_order };
            let _ = reply.send(Err(InventoryError::TooMany { max }));
            return;
        }
        if let Some(view) = self.waitlist.view(user_id)
            && view.status == ListStatus::Waiting
        {
            let _ = reply.send(Ok(LineAnswer::List { view: Some(view), created: false }));
            return;
        }
        let available = self.slots.available();
        if available >= quantity {
            let _ = reply.send(Err(InventoryError::SeatsAvailable { available }));
            return;
        }
        let waitlist::Join::New(entry, view) = self.waitlist.join(user_id, Uuid::now_v7(), quantity) else {
            unreachable!("not waiting, checked above");
        };
        let now = Utc::now().trunc_subsecs(6);
        let row = waitlist_entries::ActiveModel {
            id: sea_orm::Set(entry.entry_id),
            event_id: sea_orm::Set(self.terms.id),
            user_id: sea_orm::Set(user_id),
            quantity: sea_orm::Set(quantity as i32),
            seq: sea_orm::Set(entry.seq),
            status: sea_orm::Set(ListStatus::Waiting),
            order_id: sea_orm::Set(None),
            created_at: sea_orm::Set(now),
            updated_at: sea_orm::Set(now),
        };
        self.list_gauge();
        let ops = vec![
            WriteOp::InsertWaitlistEntry(row),
            WriteOp::Outbox(DomainEvent::new(Payload::WaitlistJoined(listed(self.terms.id, &entry)))),
        ];
        self.commit(myself, ops, None, Some((reply, LineAnswer::List { view: Some(view), created: true }))).await;
    }

    /// Offers seats that came back to the waiting list: to the first waiting person they fit (and
    /// whose per-person limit allows), as a hold for a paid event or a registration for a free
    /// one, as long as seats and people last. An offer not taken (its hold lapses) comes back
    /// here through the release, and goes to the next person. Returns what to write, for the
    /// caller to commit with the change that freed the seats.
    fn offer_returned(&mut self, myself: &ActorRef<InventoryMsg>) -> Vec<WriteOp> {
        let mut ops = Vec::new();
        if self.waitlist.is_empty() {
            return ops;
        }
        loop {
            let available = self.slots.available();
            let (per_person, registered) = (&self.per_person, &self.registered);
            let (max, free) = (self.terms.max_per_person, self.terms.is_free());
            let Some(entry) = self.waitlist.offer(|e| {
                let has = per_person.get(&e.user_id).copied().unwrap_or(0);
                e.quantity <= available
                    && within_person_limit(has, e.quantity, max)
                    && !(free && registered.contains_key(&e.user_id))
            }) else {
                break;
            };
            let req = ReserveRequest {
                order_id: Uuid::now_v7(),
                user_id: entry.user_id,
                quantity: entry.quantity,
                registration: self.terms.is_free(),
            };
            let Ok((granted, reservation)) = self.grant(myself, &req) else {
                // Checked above; an amount out of range is the only other refusal.
                tracing::warn!(event = %self.terms.id, entry = %entry.entry_id, "a waiting-list offer could not be made");
                continue;
            };
            metrics::counter!(instruments::WAITLIST_OFFERS).increment(1);
            if self.terms.is_free() {
                // A registration is taken as it is made.
                metrics::counter!(instruments::WAITLIST_TAKEN).increment(1);
            } else {
                self.offered.insert(reservation.order_id);
            }
            ops.extend(granted);
            ops.push(WriteOp::SetWaitlistStatus {
                id: entry.entry_id,
                status: ListStatus::Offered,
                order: Some(reservation.order_id),
            });
            ops.push(WriteOp::Outbox(DomainEvent::new(WaitlistOffered {
                event_id: self.terms.id,
                user_id: entry.user_id,
                entry_id: entry.entry_id,
                quantity: entry.quantity,
                order_id: reservation.order_id,
                status: reservation.status,
                expires_at: reservation.expires_at,
            })));
        }
        if !ops.is_empty() {
            self.list_gauge();
        }
        ops
    }

    fn list_gauge(&self) {
        self.gauges.listed.set(self.waitlist.len() as f64);
    }

    /// Starts the waiting room's clock if it is not running.
    fn start_queue_clock(&mut self, myself: &ActorRef<InventoryMsg>) {
        if self.queue_ticker.is_none() {
            self.queue_ticked = Instant::now();
            self.queue_ticker = Some(myself.send_interval(queue::TICK, || InventoryMsg::AdmitTick));
        }
    }

    /// Admits whoever is due at the event's rate, durably; stops the clock when nobody waits.
    async fn admit_due(&mut self, myself: &ActorRef<InventoryMsg>) {
        let elapsed = self.queue_ticked.elapsed();
        self.queue_ticked = Instant::now();
        let n = self.queue.due(elapsed, self.terms.admit_per_second);
        if self.queue.waiting_len() == 0 {
            if let Some(t) = self.queue_ticker.take() {
                t.abort();
            }
            return;
        }
        if n == 0 {
            return;
        }
        let until = Utc::now().trunc_subsecs(6) + chrono::Duration::from_std(self.admission).unwrap_or_default();
        let through = self.queue.admit(n, until);
        metrics::counter!(instruments::QUEUE_ADMISSIONS).increment(through.len() as u64);
        self.queue_gauge();
        let mut ops = vec![WriteOp::AdmitQueue { ids: through.iter().map(|w| w.entry_id).collect(), until }];
        ops.extend(through.iter().map(|w| {
            WriteOp::Outbox(DomainEvent::new(QueueAdmitted {
                event_id: self.terms.id,
                user_id: w.user_id,
                entry_id: w.entry_id,
                seq: w.seq,
                admitted_until: until,
            }))
        }));
        self.commit::<()>(myself, ops, None, None).await;
    }

    fn queue_gauge(&self) {
        self.gauges.waiting.set(self.queue.waiting_len() as f64);
    }

    /// The one way this actor's writes end: the committer runs the completion itself right after
    /// the commit (no waiting task per hold). Committed: a finished saga is timed and the caller
    /// gets its answer. Failed: the caller gets `Unavailable` and the actor restarts from the
    /// store, which decides again (so a failed commit never leaves a saga sample).
    async fn commit<R: Send + Sync + 'static>(
        &self,
        myself: &ActorRef<InventoryMsg>,
        ops: Vec<WriteOp>,
        saga: Option<SagaEnd>,
        reply: Reply<R>,
    ) {
        let myself = myself.clone();
        let mut ops = ops;
        ops.extend(self.fence.map(WriteOp::Fence));
        self.committer
            .submit_then(ops, move |result| match result {
                Ok(()) => {
                    if let Some(saga) = saga {
                        saga.record();
                    }
                    if let Some((port, value)) = reply {
                        let _ = port.send(Ok(value));
                    }
                }
                Err(e) => {
                    let answer = match e {
                        CommitError::Fenced { .. } => InventoryError::Moved,
                        CommitError::Store(_) => InventoryError::Unavailable,
                    };
                    let _ = myself.cast(InventoryMsg::CommitFailed(e));
                    if let Some((port, _)) = reply {
                        let _ = port.send(Err(answer));
                    }
                }
            })
            .await;
    }

    /// The counts as they are now, for every job that changed them (the committer turns the last
    /// of a batch into `inventory.changed`).
    fn changed(&self) -> WriteOp {
        let s = &self.slots;
        self.gauges.available.set(f64::from(s.available()));
        self.gauges.held.set(f64::from(s.held));
        self.gauges.sold.set(f64::from(s.sold));
        self.gauges.holds.set(self.holds.len() as f64);
        WriteOp::Counts(SlotCounts {
            event_id: self.terms.id,
            total: s.total,
            available: s.available(),
            held: s.held,
            sold: s.sold,
        })
    }

    fn pin(&mut self, myself: &ActorRef<InventoryMsg>, order: Uuid) -> Result<(), InventoryError> {
        let now = Instant::now();
        let pin_until = now + self.payment_pin_max;
        let hold = self.holds.get_mut(&order).ok_or(InventoryError::NotHeld)?;
        if hold.deadline <= now {
            // The hold has lapsed; only its timer's message has not been handled yet. A payment now
            // would be charged for seats that are no longer held: refuse it, and release the hold
            // through the timer's own path (queued next; the timer's message then finds it gone).
            let _ = myself.cast(InventoryMsg::HoldTimer(order, hold.token));
            return Err(InventoryError::NotHeld);
        }
        hold.pinned = true;
        // The hold now ends when the payment resolves, or at the pin bound at the latest.
        let deadline = hold.deadline.max(pin_until);
        self.rearm(myself, order, deadline);
        Ok(())
    }

    async fn unpin(&mut self, myself: &ActorRef<InventoryMsg>, order: Uuid) -> Result<(), InventoryError> {
        let hold = self.holds.get_mut(&order).ok_or(InventoryError::NotHeld)?;
        hold.pinned = false;
        let own_deadline = hold.own_deadline;
        if own_deadline <= Instant::now() {
            // The hold's own time ran out while the payment was running.
            self.release(myself, order, ReleaseReason::Expired, Vec::new(), None).await;
            return Err(InventoryError::NotHeld);
        }
        self.rearm(myself, order, own_deadline);
        Ok(())
    }

    async fn confirm(
        &mut self,
        myself: &ActorRef<InventoryMsg>,
        order: Uuid,
        extra: Vec<WriteOp>,
        reply: RpcReplyPort<Result<Vec<tickets::Model>, InventoryError>>,
    ) {
        let Some(hold) = self.holds.remove(&order) else {
            let _ = reply.send(Err(InventoryError::NotHeld));
            return;
        };
        self.timers.disarm(hold.deadline, hold.token);
        if self.offered.remove(&order) {
            metrics::counter!(instruments::WAITLIST_TAKEN).increment(1);
        }
        let saga = SagaEnd::of(&hold, OrderStatus::Confirmed);
        self.slots.sell_held(hold.facts.quantity);
        let now = Utc::now();
        let tickets = ticket_rows(&hold.facts, now);
        let issued: Vec<tickets::Model> = tickets.iter().cloned().filter_map(ticket_model).collect();
        let codes = ticket_codes(&tickets);
        let mut ops = vec![
            WriteOp::SetOrderStatus {
                id: order,
                from: OrderStatus::HOLDING,
                to: OrderStatus::Confirmed,
                expires_at: None,
                refund_cents: None,
            },
            WriteOp::InsertTickets(tickets),
        ];
        ops.extend(extra);
        ops.push(WriteOp::Outbox(DomainEvent::new(Payload::OrderConfirmed(OrderConfirmed {
            order: hold.facts.clone(),
            status: OrderStatus::Confirmed,
            tickets: codes,
        }))));
        self.sold_orders.insert(order, hold.facts);
        ops.push(self.changed());
        self.commit(myself, ops, Some(saga), Some((reply, issued))).await;
    }

    /// Releases a hold, or (for cancellations) a sale; `reply`, if any, hears once it is durable.
    async fn release(
        &mut self,
        myself: &ActorRef<InventoryMsg>,
        order: Uuid,
        reason: ReleaseReason,
        extra: Vec<WriteOp>,
        reply: Option<RpcReplyPort<Result<(), InventoryError>>>,
    ) {
        let (facts, was, saga) = if let Some(hold) = self.holds.remove(&order) {
            self.timers.disarm(hold.deadline, hold.token);
            self.offered.remove(&order);
            let saga = SagaEnd::of(&hold, reason.status());
            self.slots.unhold(hold.facts.quantity);
            self.count_out(&hold.facts);
            (hold.facts, OrderStatus::Pending, Some(saga))
        } else if reason == ReleaseReason::Cancelled {
            // A sale cancelled later: its saga ended when it was confirmed.
            let Some(facts) = self.sold_orders.remove(&order) else {
                return not_held(reply);
            };
            self.slots.unsell(facts.quantity);
            self.count_out(&facts);
            if self.registered.get(&facts.user_id) == Some(&order) {
                self.registered.remove(&facts.user_id);
            }
            (facts, OrderStatus::Confirmed, None)
        } else {
            return not_held(reply);
        };
        let mut ops = release_ops(&facts, reason, was);
        // The refund records belong before the event that announces them.
        let outbox = ops.pop();
        ops.extend(extra);
        ops.extend(outbox);
        // The seats go straight on to the waiting list, in the same transaction: nobody sees
        // them free in between, and the release's answer means the offer is written too.
        ops.extend(self.offer_returned(myself));
        ops.push(self.changed());
        self.commit(myself, ops, saga, reply.map(|r| (r, ()))).await;
    }

    async fn reconfigure(
        &mut self,
        myself: &ActorRef<InventoryMsg>,
        model: events::Model,
        reply: RpcReplyPort<Result<(), InventoryError>>,
    ) {
        let terms = EventTerms::from_model(&model);
        if !self.slots.resize(terms.total) {
            let committed = self.slots.held + self.slots.sold;
            let _ = reply.send(Err(InventoryError::CapacityBelowCommitted { committed }));
            return;
        }
        self.terms = terms;
        let event = DomainEvent::new(Payload::EventUpdated(model.facts()));
        let active: events::ActiveModel = model.into();
        let mut ops = vec![WriteOp::UpdateEvent(reset_all(active)), WriteOp::Outbox(event)];
        // More seats may serve the waiting list.
        ops.extend(self.offer_returned(myself));
        ops.push(self.changed());
        self.commit(myself, ops, None, Some((reply, ()))).await;
    }

    async fn on_timer(&mut self, myself: &ActorRef<InventoryMsg>, order: Uuid, token: u64) {
        let current = self.holds.get(&order).is_some_and(|h| h.token == token);
        if !current {
            return; // re-armed or already gone
        }
        if let Some(h) = self.holds.get(&order)
            && h.pinned
        {
            tracing::warn!(order = %order, "payment exceeded the pin bound; releasing the hold");
        }
        self.release(myself, order, ReleaseReason::Expired, Vec::new(), None).await;
    }
}

fn not_held(reply: Option<RpcReplyPort<Result<(), InventoryError>>>) {
    if let Some(reply) = reply {
        let _ = reply.send(Err(InventoryError::NotHeld));
    }
}

/// A paid order's saga ends when its hold is sold, expires or is cancelled: timed when the actor
/// decides, recorded once that decision is committed (a failed commit restarts the actor, which
/// decides again from the database, and must not leave a second sample).
struct SagaEnd {
    outcome: OrderStatus,
    seconds: f64,
}

impl SagaEnd {
    fn of(hold: &Hold, outcome: OrderStatus) -> Self {
        Self { outcome, seconds: hold.placed.elapsed().as_secs_f64() }
    }

    /// Called once the decision is committed.
    fn record(self) {
        metrics::histogram!(instruments::SAGA_DURATION, "outcome" => self.outcome.as_str()).record(self.seconds);
    }
}

/// What `waitlist.joined` and `waitlist.left` say about an entry.
fn listed(event_id: Uuid, e: &waitlist::Listed) -> WaitlistEntry {
    WaitlistEntry { event_id, user_id: e.user_id, entry_id: e.entry_id, quantity: e.quantity }
}

/// Whether someone with `has` seats here may take `quantity` more under `max` (0: no limit).
fn within_person_limit(has: u32, quantity: u32, max: u32) -> bool {
    max == 0 || has.saturating_add(quantity) <= max
}
