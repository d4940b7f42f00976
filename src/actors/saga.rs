//! `OrderSaga`: drives one order through payment or cancellation.
//!
//! pending (held) → paying → confirmed (tickets issued) | cancelled | expired. The saga
//! serialises everything done to its order (two payments for one order cannot both run) and
//! compensates: a declined payment unpins the hold, a hold lost during payment is refunded,
//! a cancelled sale releases its seats and records a refund. The order's state is read from the
//! database on each step (expiry is decided by the inventory, not here), so a saga can stop when
//! idle and come back without losing anything. Sagas are spawned by [`Sagas`] on demand.
//!
//! Callers reach a saga through [`OrderSagas`], which in cluster mode runs it on the node that
//! owns the order's event, so one order never has two sagas (and is never charged twice): the
//! saga pins the hold on that node's inventory and commits its `paying` step under the lease the
//! pin answered with, so a node that lost the event meanwhile is refused before any charge. Once
//! charged, the confirmation follows the event wherever it has moved (`Inventories::confirm`).

use std::time::Duration;

use chrono::Utc;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use tokio::time::Instant;
use uuid::Uuid;

use super::{
    CallError, Inventories, call,
    inventory::{InventoryError, InventoryMsg},
    keeper::Kept,
    payment::{ChargeOutcome, ChargeRequest, PaymentMsg, ProviderError},
    registry::{Directory, Registry},
};
use crate::{
    domain::{
        DomainEvent, OrderConflict, OrderStatus, Payload, PaymentStatus, ReleaseReason,
        events::{PaymentFailed, PaymentRefunded, PaymentStarted, PaymentSucceeded},
    },
    error::{Report, Unavailable},
    store::{
        Committer, WriteOp,
        committer::CommitError,
        entities::{orders, payments, refunds},
    },
};

/// How a payment or cancellation ended when it did not succeed. Domain terms only: the HTTP
/// edge (`http::error`) decides what a client sees.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SagaError {
    #[error("order not found")]
    NotFound,
    #[error(transparent)]
    Conflict(#[from] OrderConflict),
    /// The charge went through after the hold had run out: it was refunded at once.
    #[error("the hold expired while the payment ran; the charge was refunded")]
    RefundedAfterExpiry,
    #[error("amount_cents must be {0}, the order's amount")]
    AmountMismatch(i64),
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

impl From<CallError> for SagaError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Unavailable(u) => Self::Unavailable(u),
            other => Self::Unavailable(Unavailable::because("an actor the order needs", other)),
        }
    }
}

/// The booking store could not commit a step of the saga.
fn store_down(e: CommitError) -> SagaError {
    let what = match e {
        CommitError::Fenced { .. } => "the event moved to another node",
        CommitError::Store(_) => "the booking store",
    };
    SagaError::Unavailable(Unavailable::because(what, e))
}

fn inventory_down(e: InventoryError) -> SagaError {
    SagaError::Unavailable(Unavailable::because("the event's inventory", e))
}

fn hold_expired() -> SagaError {
    SagaError::Conflict(OrderConflict::HoldExpired)
}

/// Serde because a payment is forwarded to the node that owns the order's event.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PayRequest {
    pub payment_id: Uuid,
    pub amount_cents: i64,
    pub card_token: String,
}

pub enum SagaMsg {
    Pay(PayRequest, RpcReplyPort<Result<Uuid, SagaError>>),
    Cancel(RpcReplyPort<Result<(), SagaError>>),
    /// Resolve a payment left `pending` by a crash against the provider (`actors::payment_recovery`).
    Recover(RpcReplyPort<Result<Recovered, SagaError>>),
    IdleCheck,
}

/// What became of an interrupted payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovered {
    /// No payment of the order was pending (any more).
    Nothing,
    /// The provider had taken the charge and the hold was still there: the order is confirmed.
    Confirmed,
    /// The provider had taken the charge but the hold was gone: the charge was refunded.
    Refunded,
    /// The provider had taken no charge: the payment failed, and the order is payable again while
    /// its hold lasts.
    Released,
}

// Local only: ractor's `cluster` feature wants every message type declared (see the cluster module).
impl ractor::Message for SagaMsg {}

#[derive(Clone)]
pub struct SagaDeps {
    pub db: DatabaseConnection,
    pub committer: Committer,
    pub inventories: Inventories,
    pub payments: Kept<PaymentMsg>,
    /// Longest a charge may take before the saga gives up on the provider.
    pub charge_timeout: Duration,
    pub idle: Duration,
}

pub struct SagaState {
    order_id: Uuid,
    deps: SagaDeps,
    last_activity: Instant,
}

pub struct OrderSaga;

impl Actor for OrderSaga {
    type Msg = SagaMsg;
    type State = SagaState;
    type Arguments = (Uuid, SagaDeps);

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        (order_id, deps): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let every = (deps.idle / 2).max(Duration::from_millis(50));
        myself.send_interval(every, || SagaMsg::IdleCheck);
        Ok(SagaState { order_id, deps, last_activity: Instant::now() })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SagaMsg::Pay(req, reply) => {
                state.last_activity = Instant::now();
                let result = state.pay(req).await;
                let _ = reply.send(result);
            }
            SagaMsg::Cancel(reply) => {
                state.last_activity = Instant::now();
                let result = state.cancel().await;
                let _ = reply.send(result);
            }
            SagaMsg::Recover(reply) => {
                state.last_activity = Instant::now();
                let result = state.recover().await;
                let _ = reply.send(result);
            }
            SagaMsg::IdleCheck => {
                if state.last_activity.elapsed() >= state.deps.idle {
                    myself.stop(Some("idle".into()));
                }
            }
        }
        Ok(())
    }
}

impl SagaState {
    async fn load(&self) -> Result<orders::Model, SagaError> {
        orders::Entity::find_by_id(self.order_id)
            .one(&self.deps.db)
            .await
            .map_err(|e| Unavailable::because("the orders table", e))?
            .ok_or(SagaError::NotFound)
    }

    async fn commit(&self, ops: Vec<WriteOp>) -> Result<(), SagaError> {
        self.deps.committer.commit(ops).await.map_err(store_down)
    }

    async fn inventory<R: Send + 'static>(
        &self,
        event_id: Uuid,
        build: impl Fn(RpcReplyPort<Result<R, InventoryError>>) -> InventoryMsg,
    ) -> Result<Result<R, InventoryError>, SagaError> {
        Ok(self.deps.inventories.ask(event_id, build).await?)
    }

    async fn pay(&mut self, req: PayRequest) -> Result<Uuid, SagaError> {
        let order = self.load().await?;
        order.status.check_payable()?;
        if req.amount_cents != order.amount_cents {
            return Err(SagaError::AmountMismatch(order.amount_cents));
        }
        let event_id = order.event_id;
        let order_id = order.id;
        // Pin first: if the hold is gone the customer is never charged.
        let fence = match self.inventory(event_id, |r| InventoryMsg::Pin(order_id, r)).await? {
            Ok(fence) => fence,
            Err(InventoryError::NotHeld) => return Err(hold_expired()),
            Err(e) => return Err(inventory_down(e)),
        };
        let now = Utc::now();
        let payment_id = req.payment_id;
        let facts = order.facts();
        let mut started = vec![
            WriteOp::InsertPayment(payments::ActiveModel {
                id: Set(payment_id),
                order_id: Set(order_id),
                user_id: Set(order.user_id),
                amount_cents: Set(order.amount_cents),
                currency: Set(order.currency.clone()),
                status: Set(PaymentStatus::Pending),
                failure_reason: Set(None),
                provider_ref: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            }),
            payment_status(payment_id, PaymentStatus::Pending, None, None),
            WriteOp::SetOrderStatus {
                id: order_id,
                from: &[OrderStatus::Pending],
                to: OrderStatus::Paying,
                expires_at: order.expires_at,
                refund_cents: None,
            },
            WriteOp::Outbox(DomainEvent::new(Payload::PaymentStarted(PaymentStarted {
                order: facts,
                payment_id,
                status: OrderStatus::Paying,
            }))),
        ];
        // Under the pin's lease: if another node took the event over since, nothing is charged.
        started.extend(fence.map(WriteOp::Fence));
        let started = self.commit(started).await;
        if let Err(e) = started {
            let _ = self.inventory(event_id, |r| InventoryMsg::Unpin(order_id, r)).await;
            return Err(e);
        }

        let charge = ChargeRequest {
            order_id,
            amount_cents: order.amount_cents,
            currency: order.currency.clone(),
            card_token: req.card_token.clone(),
        };
        let outcome = call(&self.deps.payments.get(), |r| PaymentMsg::Charge(charge, r), self.deps.charge_timeout)
            .await
            .map_err(ProviderError::Unreachable)
            .and_then(|r| r);
        match outcome {
            Ok(ChargeOutcome::Succeeded { provider_ref }) => {
                match self.settle_charged(&order, payment_id, provider_ref).await? {
                    Recovered::Refunded => Err(SagaError::RefundedAfterExpiry),
                    _ => Ok(payment_id),
                }
            }
            Ok(ChargeOutcome::Declined { reason }) => {
                self.fail_payment(&order, payment_id, reason).await?;
                Ok(payment_id)
            }
            Err(provider_error) => {
                tracing::warn!(order = %order_id, error = %Report(&provider_error), "payment provider failed");
                self.fail_payment(&order, payment_id, "provider_unavailable".into()).await?;
                Ok(payment_id)
            }
        }
    }

    /// A charge the provider took: the sale is confirmed (`Confirmed`), or, if the hold is gone,
    /// the charge is recorded and refunded at once (`Refunded`).
    async fn settle_charged(
        &self,
        order: &orders::Model,
        payment_id: Uuid,
        provider_ref: String,
    ) -> Result<Recovered, SagaError> {
        let facts = order.facts();
        let paid = PaymentSucceeded { order: facts.clone(), payment_id, provider_ref };
        match self.deps.inventories.confirm(order.event_id, &paid).await? {
            Ok(()) => Ok(Recovered::Confirmed),
            Err(InventoryError::NotHeld) => {
                // The payment outlived the pin bound and the seats went back: refund. The
                // charge happened, so it is recorded (its history and event) before the
                // refund, in the same transaction.
                let reason = "hold expired during payment";
                let mut ops = paid_ops(&paid);
                ops.extend([
                    payment_status(payment_id, PaymentStatus::Refunded, Some(reason.into()), None),
                    refund_row(order, Some(payment_id), reason),
                    // Usually the hold's timer has already written `expired` (without a
                    // refund): the refund is recorded on the order either way.
                    WriteOp::SetOrderStatus {
                        id: order.id,
                        from: &[OrderStatus::Paying, OrderStatus::Expired],
                        to: OrderStatus::Expired,
                        expires_at: None,
                        refund_cents: Some(order.amount_cents),
                    },
                    WriteOp::Outbox(DomainEvent::new(Payload::PaymentRefunded(PaymentRefunded {
                        order: facts,
                        payment_id,
                        refund_cents: order.amount_cents,
                        reason: reason.into(),
                    }))),
                ]);
                self.commit(ops).await?;
                Ok(Recovered::Refunded)
            }
            Err(e) => Err(inventory_down(e)),
        }
    }

    /// Resolves the order's payment left `pending` (its saga died with the process that ran it)
    /// by asking the provider what became of the charge under the order's idempotency key: taken
    /// means the sale goes through (or is refunded, the hold being gone), none means the payment
    /// failed. Only called once the charge can no longer be running (see `payment_recovery`).
    async fn recover(&mut self) -> Result<Recovered, SagaError> {
        let order = self.load().await?;
        let pending = payments::Entity::find()
            .filter(payments::Column::OrderId.eq(order.id))
            .filter(payments::Column::Status.eq(PaymentStatus::Pending))
            .one(&self.deps.db)
            .await
            .map_err(|e| Unavailable::because("the payments table", e))?;
        let Some(payment) = pending else { return Ok(Recovered::Nothing) };
        let looked_up = call(&self.deps.payments.get(), |r| PaymentMsg::Lookup(order.id, r), self.deps.charge_timeout)
            .await
            .map_err(ProviderError::Unreachable)
            .and_then(|r| r)
            .map_err(|e| SagaError::Unavailable(Unavailable::because("the payment provider", e)))?;
        match looked_up {
            Some(ChargeOutcome::Succeeded { provider_ref }) => {
                self.settle_charged(&order, payment.id, provider_ref).await
            }
            Some(ChargeOutcome::Declined { reason }) => {
                self.fail_payment(&order, payment.id, reason).await?;
                Ok(Recovered::Released)
            }
            None => {
                self.fail_payment(&order, payment.id, INTERRUPTED.into()).await?;
                Ok(Recovered::Released)
            }
        }
    }

    /// A failed charge: record it, put the order back to pending and let the hold run on.
    async fn fail_payment(&self, order: &orders::Model, payment_id: Uuid, reason: String) -> Result<(), SagaError> {
        let facts = order.facts();
        self.commit(vec![
            payment_status(payment_id, PaymentStatus::Failed, Some(reason.clone()), None),
            WriteOp::SetOrderStatus {
                id: order.id,
                from: &[OrderStatus::Paying],
                to: OrderStatus::Pending,
                expires_at: order.expires_at,
                refund_cents: None,
            },
            WriteOp::Outbox(DomainEvent::new(Payload::PaymentFailed(PaymentFailed {
                order: facts,
                payment_id,
                reason,
            }))),
        ])
        .await?;
        let order_id = order.id;
        // If the hold ran out meanwhile the inventory releases it now; either way we are done.
        let _ = self.inventory(order.event_id, |r| InventoryMsg::Unpin(order_id, r)).await?;
        Ok(())
    }

    async fn cancel(&mut self) -> Result<(), SagaError> {
        let order = self.load().await?;
        let order_id = order.id;
        order.status.check_cancellable()?;
        let extra = match order.status {
            OrderStatus::Confirmed => {
                let paid = payments::Entity::find()
                    .filter(payments::Column::OrderId.eq(order_id))
                    .filter(payments::Column::Status.eq(PaymentStatus::Succeeded))
                    .one(&self.deps.db)
                    .await
                    .map_err(|e| Unavailable::because("the payments table", e))?;
                let mut ops = vec![refund_row(&order, paid.as_ref().map(|p| p.id), "cancelled by customer")];
                if let Some(p) = paid {
                    ops.push(payment_status(p.id, PaymentStatus::Refunded, Some("order cancelled".into()), None));
                }
                ops
            }
            _ => Vec::new(),
        };
        match self
            .inventory(order.event_id, |r| InventoryMsg::Release(order_id, ReleaseReason::Cancelled, extra.clone(), r))
            .await?
        {
            Ok(()) => Ok(()),
            Err(InventoryError::NotHeld) => Err(hold_expired()),
            Err(e) => Err(inventory_down(e)),
        }
    }
}

/// The failure reason of a payment that a crash interrupted before the provider took a charge.
pub const INTERRUPTED: &str = "interrupted";

/// What a confirmation commits beside the sale: the payment's success and its event.
pub(crate) fn paid_ops(paid: &PaymentSucceeded) -> Vec<WriteOp> {
    vec![
        payment_status(paid.payment_id, PaymentStatus::Succeeded, None, Some(paid.provider_ref.clone())),
        WriteOp::Outbox(DomainEvent::new(Payload::PaymentSucceeded(paid.clone()))),
    ]
}

fn payment_status(id: Uuid, status: PaymentStatus, detail: Option<String>, provider_ref: Option<String>) -> WriteOp {
    WriteOp::SetPaymentStatus { id, status, detail, provider_ref }
}

fn refund_row(order: &orders::Model, payment_id: Option<Uuid>, reason: &str) -> WriteOp {
    WriteOp::InsertRefund(refunds::ActiveModel {
        id: Set(Uuid::now_v7()),
        order_id: Set(order.id),
        payment_id: Set(payment_id),
        amount_cents: Set(order.amount_cents),
        reason: Set(reason.into()),
        created_at: Set(Utc::now()),
    })
}

pub enum SagasMsg {
    Get(Uuid, RpcReplyPort<ActorRef<SagaMsg>>),
}

// Local only: ractor's `cluster` feature wants every message type declared (see the cluster module).
impl ractor::Message for SagasMsg {}

/// Spawns and supervises sagas, kept in a [`Registry`] like the inventories. A failed saga is
/// logged, counted as a restart and forgotten: its order's state is in the database, so the next
/// request for that order starts a fresh one (a restart on demand, with nothing to back off from:
/// a saga holds no state and does no work of its own between requests).
pub struct Sagas;

pub struct SagasState {
    deps: SagaDeps,
    children: Registry<Uuid, SagaMsg>,
}

impl Actor for Sagas {
    type Msg = SagasMsg;
    type State = SagasState;
    type Arguments = SagaDeps;

    async fn pre_start(&self, _myself: ActorRef<Self::Msg>, deps: SagaDeps) -> Result<Self::State, ActorProcessingErr> {
        Ok(SagasState { deps, children: Registry::new(Directory::default()) })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let SagasMsg::Get(order_id, reply) = msg;
        if let Some(saga) = state.children.get(&order_id) {
            let _ = reply.send(saga);
            return Ok(());
        }
        let (saga, _) = Actor::spawn_linked(None, OrderSaga, (order_id, state.deps.clone()), myself.get_cell()).await?;
        state.children.add(order_id, saga.clone());
        let _ = reply.send(saga);
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorTerminated(cell, ..) => {
                state.children.forget(&cell);
            }
            SupervisionEvent::ActorFailed(cell, err) => {
                if let Some(order) = state.children.forget(&cell) {
                    tracing::error!(order = %order, error = %err, "order saga failed; it restarts from the store on the next request");
                    metrics::counter!(crate::instruments::ACTOR_RESTARTS, "kind" => "saga").increment(1);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// How callers reach an order's saga: on this node if it owns the order's event, else on the
/// node that does (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct OrderSagas {
    pub sagas: ActorRef<SagasMsg>,
    pub inventories: Inventories,
}

impl OrderSagas {
    /// Pays `order` (its id and its event's id) and answers the payment's id.
    pub async fn pay(
        &self,
        order: (Uuid, Uuid),
        req: PayRequest,
        timeout: Duration,
    ) -> Result<Result<Uuid, SagaError>, CallError> {
        match self.pay_here(order, req.clone(), timeout, false).await {
            Err(CallError::Elsewhere(node)) => {
                self.inventories.forwarded(node, |f, n| f.pay(n, order, req.clone(), timeout)).await
            }
            other => other,
        }
    }

    /// [`OrderSagas::pay`] on this node, or [`CallError::Elsewhere`] (`placed`: see
    /// `SupervisorMsg::Get`).
    pub async fn pay_here(
        &self,
        (order_id, event_id): (Uuid, Uuid),
        req: PayRequest,
        timeout: Duration,
        placed: bool,
    ) -> Result<Result<Uuid, SagaError>, CallError> {
        self.inventories.locate(event_id, placed).await?;
        self.ask(order_id, |r| SagaMsg::Pay(req.clone(), r), timeout).await
    }

    /// Cancels `order` (its id and its event's id): a hold is released, a sale refunded.
    pub async fn cancel(&self, order: (Uuid, Uuid)) -> Result<Result<(), SagaError>, CallError> {
        match self.cancel_here(order, false).await {
            Err(CallError::Elsewhere(node)) => self.inventories.forwarded(node, |f, n| f.cancel(n, order)).await,
            other => other,
        }
    }

    /// [`OrderSagas::cancel`] on this node, or [`CallError::Elsewhere`].
    pub async fn cancel_here(
        &self,
        (order_id, event_id): (Uuid, Uuid),
        placed: bool,
    ) -> Result<Result<(), SagaError>, CallError> {
        self.inventories.locate(event_id, placed).await?;
        self.ask(order_id, SagaMsg::Cancel, self.inventories.timeout).await
    }

    /// Resolves the order's interrupted payment (see [`SagaMsg::Recover`]) if this node owns its
    /// event, taking the event if nobody does; [`CallError::Elsewhere`] otherwise (the owner's
    /// own sweep resolves it).
    pub async fn recover_here(
        &self,
        (order_id, event_id): (Uuid, Uuid),
        timeout: Duration,
    ) -> Result<Result<Recovered, SagaError>, CallError> {
        self.inventories.locate(event_id, false).await?;
        self.ask(order_id, SagaMsg::Recover, timeout).await
    }

    /// The order's saga, asked twice if the first one was just stopping.
    async fn ask<R: Send + 'static>(
        &self,
        order_id: Uuid,
        build: impl Fn(RpcReplyPort<R>) -> SagaMsg,
        timeout: Duration,
    ) -> Result<R, CallError> {
        for attempt in 0..2 {
            let saga = call(&self.sagas, |r| SagasMsg::Get(order_id, r), self.inventories.timeout).await?;
            match call(&saga, &build, timeout).await {
                Err(CallError::Unavailable(_)) if attempt == 0 => continue,
                other => return other,
            }
        }
        Err(Unavailable::new("the order's saga is not running").into())
    }
}
