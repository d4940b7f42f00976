//! The actor system: one [`inventory::EventInventory`] per event under the
//! [`supervisor::InventorySupervisor`], one [`saga::OrderSaga`] per order being paid or
//! cancelled, the [`payment::PaymentActor`], and the event consumers [`notifier::Notifier`]
//! and [`auditor::Auditor`]; those three singletons run under a [`keeper::Keeper`] that starts
//! a failed one again.
//!
//! [`Runtime`] is what the HTTP layer holds: typed calls into the actors, every one bounded by
//! the configured timeout (a timeout becomes 503 in `http::error`).

pub mod auditor;
pub mod consumer;
pub mod inventory;
pub mod keeper;
pub mod notifier;
pub mod ownership;
pub mod payment;
pub mod payment_recovery;
pub mod registry;
pub mod saga;
pub mod supervisor;

use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;
use ractor::{ActorRef, RpcReplyPort, rpc::CallResult};
use uuid::Uuid;

use inventory::{InventoryError, InventoryMsg};
use saga::{PayRequest, SagaError};

use crate::{domain::events::PaymentSucceeded, error::Unavailable, store::entities::events};
use supervisor::{Directory, LookupError, SupervisorMsg};

/// Why an actor call produced no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("not found")]
    NotFound,
    #[error("the actor did not answer in time")]
    Timeout,
    /// Cluster mode: another node runs the event (forwarding is the cluster layer's).
    #[error("event owned by node {0}")]
    Elsewhere(String),
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

impl From<LookupError> for CallError {
    fn from(e: LookupError) -> Self {
        match e {
            LookupError::NotFound => Self::NotFound,
            LookupError::Elsewhere(node) => Self::Elsewhere(node),
            LookupError::Unavailable(why) => Self::Unavailable(why),
        }
    }
}

/// Calls `actor` and waits at most `timeout`.
pub async fn call<M: ractor::Message, R: Send + 'static>(
    actor: &ActorRef<M>,
    build: impl FnOnce(RpcReplyPort<R>) -> M,
    timeout: Duration,
) -> Result<R, CallError> {
    match actor.call(build, Some(timeout)).await {
        Ok(CallResult::Success(r)) => Ok(r),
        Ok(CallResult::Timeout) => {
            metrics::counter!(crate::instruments::ACTOR_CALL_TIMEOUTS).increment(1);
            Err(CallError::Timeout)
        }
        Ok(CallResult::SenderError) => Err(Unavailable::new("the actor stopped before it answered").into()),
        // The message could not be sent: the actor is not running (its mailbox is closed).
        Err(_) => Err(Unavailable::new("the actor is not running").into()),
    }
}

/// Cluster mode: how a call reaches an event's inventory on another node (the cluster layer's
/// transport; the answers are the same as a local call's).
pub trait Forward: Send + Sync {
    fn reserve(
        &self,
        node: String,
        event_id: Uuid,
        req: inventory::ReserveRequest,
    ) -> BoxFuture<'static, Result<Result<inventory::Reservation, InventoryError>, CallError>>;
    fn snapshot(&self, node: String, event_id: Uuid) -> BoxFuture<'static, Result<inventory::Snapshot, CallError>>;
    /// Sells a paid hold on the event's inventory (see [`Inventories::confirm`]).
    fn confirm(
        &self,
        node: String,
        event_id: Uuid,
        paid: PaymentSucceeded,
    ) -> BoxFuture<'static, Result<Result<(), InventoryError>, CallError>>;
    fn reconfigure(
        &self,
        node: String,
        event: events::Model,
    ) -> BoxFuture<'static, Result<Result<(), InventoryError>, CallError>>;
    /// Runs the order's payment in its saga on the node that owns the order's event.
    fn pay(
        &self,
        node: String,
        order: (Uuid, Uuid),
        req: PayRequest,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Result<Uuid, SagaError>, CallError>>;
    fn cancel(&self, node: String, order: (Uuid, Uuid))
    -> BoxFuture<'static, Result<Result<(), SagaError>, CallError>>;
    /// The waiting room (see [`Inventories::line`]).
    fn line(
        &self,
        node: String,
        event_id: Uuid,
        op: inventory::LineOp,
    ) -> BoxFuture<'static, Result<Result<inventory::LineAnswer, InventoryError>, CallError>>;
}

/// Reaches an event's inventory actor, spawning it if needed; in cluster mode, on the node that
/// owns the event.
#[derive(Clone)]
pub struct Inventories {
    pub supervisor: ActorRef<SupervisorMsg>,
    pub directory: Directory,
    pub timeout: Duration,
    /// Cluster mode: the transport to other nodes.
    pub forward: Option<Arc<dyn Forward>>,
}

impl Inventories {
    async fn actor(&self, event_id: Uuid, placed: bool) -> Result<ActorRef<InventoryMsg>, CallError> {
        if let Some(a) = self.directory.get(&event_id) {
            return Ok(a);
        }
        call(&self.supervisor, |r| SupervisorMsg::Get(event_id, placed, r), self.timeout).await?.map_err(Into::into)
    }

    /// Cluster mode: whether this node owns the event (`Ok`), taking its lease if nobody does and
    /// placement allows; [`CallError::Elsewhere`] names the owner otherwise.
    pub async fn locate(&self, event_id: Uuid, placed: bool) -> Result<(), CallError> {
        self.actor(event_id, placed).await.map(drop)
    }

    /// Runs `remote` against the node that owns the event, following one redirect (the lease
    /// may have moved between the lookup and the call).
    async fn forwarded<R>(
        &self,
        mut node: String,
        remote: impl Fn(&dyn Forward, String) -> BoxFuture<'static, Result<R, CallError>>,
    ) -> Result<R, CallError> {
        let Some(forward) = &self.forward else {
            return Err(Unavailable::new("the event is owned by another node").into());
        };
        for _ in 0..2 {
            match remote(forward.as_ref(), node.clone()).await {
                Err(CallError::Elsewhere(next)) if next != node => node = next,
                other => return other,
            }
        }
        Err(Unavailable::new("the event's owner is changing; retry").into())
    }

    /// Sends a message to an event's inventory. If that actor just passivated (the message
    /// finds it gone) the call is made once more to a fresh one.
    pub async fn ask<R: Send + 'static>(
        &self,
        event_id: Uuid,
        build: impl Fn(RpcReplyPort<R>) -> InventoryMsg,
    ) -> Result<R, CallError> {
        self.ask_placed(event_id, false, build).await
    }

    async fn ask_placed<R: Send + 'static>(
        &self,
        event_id: Uuid,
        placed: bool,
        build: impl Fn(RpcReplyPort<R>) -> InventoryMsg,
    ) -> Result<R, CallError> {
        let actor = self.actor(event_id, placed).await?;
        match call(&actor, &build, self.timeout).await {
            Err(CallError::Unavailable(_)) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let actor = self.actor(event_id, placed).await?;
                call(&actor, &build, self.timeout).await
            }
            other => other,
        }
    }

    /// An event's live counts, from the node that owns it.
    pub async fn snapshot(&self, event_id: Uuid) -> Result<inventory::Snapshot, CallError> {
        match self.snapshot_here(event_id, false).await {
            Err(CallError::Elsewhere(node)) => self.forwarded(node, |f, n| f.snapshot(n, event_id)).await,
            other => other,
        }
    }

    /// The counts from this node's inventory, without forwarding (`placed`: see [`SupervisorMsg::Get`]).
    pub async fn snapshot_here(&self, event_id: Uuid, placed: bool) -> Result<inventory::Snapshot, CallError> {
        self.ask_placed(event_id, placed, InventoryMsg::Snapshot).await
    }

    /// Holds (or, for free events, sells) seats, on the node that owns the event.
    pub async fn reserve(
        &self,
        event_id: Uuid,
        req: inventory::ReserveRequest,
    ) -> Result<Result<inventory::Reservation, InventoryError>, CallError> {
        match self.reserve_here(event_id, req.clone(), false).await {
            Err(CallError::Elsewhere(node)) => self.forwarded(node, |f, n| f.reserve(n, event_id, req.clone())).await,
            other => other,
        }
    }

    /// [`Inventories::reserve`] on this node's inventory, without forwarding.
    pub async fn reserve_here(
        &self,
        event_id: Uuid,
        req: inventory::ReserveRequest,
        placed: bool,
    ) -> Result<Result<inventory::Reservation, InventoryError>, CallError> {
        // Stamped when the message is built, after the actor was found or started: the
        // histogram is the time in the mailbox, not the actor's start-up.
        self.ask_placed(event_id, placed, |r| InventoryMsg::Reserve(req.clone(), tokio::time::Instant::now(), r)).await
    }

    /// Sells a hold whose payment went through, with the payment's record, on whichever node owns
    /// the event now. The charge has already happened, so a lease that moved during the payment
    /// does not end the saga: the confirmation follows the event to its new owner, which took the
    /// pinned hold over with it (see `inventory::recovery`).
    pub async fn confirm(
        &self,
        event_id: Uuid,
        paid: &PaymentSucceeded,
    ) -> Result<Result<(), InventoryError>, CallError> {
        for _ in 0..3 {
            match self.confirm_here(event_id, paid, false).await {
                Err(CallError::Elsewhere(node)) => {
                    return self.forwarded(node, |f, n| f.confirm(n, event_id, paid.clone())).await;
                }
                // This node's inventory was fenced out as it committed: look the owner up again.
                Ok(Err(InventoryError::Moved)) => {}
                other => return other,
            }
        }
        Err(Unavailable::new("the event's owner is changing; the payment is pinned, retry").into())
    }

    /// [`Inventories::confirm`] on this node's inventory, without forwarding.
    pub async fn confirm_here(
        &self,
        event_id: Uuid,
        paid: &PaymentSucceeded,
        placed: bool,
    ) -> Result<Result<(), InventoryError>, CallError> {
        let order_id = paid.order.order_id;
        let answer =
            self.ask_placed(event_id, placed, |r| InventoryMsg::Confirm(order_id, saga::paid_ops(paid), r)).await?;
        Ok(answer.map(drop))
    }

    /// Changes an event's terms (its capacity among them) through its inventory, on the owner.
    pub async fn reconfigure(&self, event: events::Model) -> Result<Result<(), InventoryError>, CallError> {
        match self.reconfigure_here(event.clone(), false).await {
            Err(CallError::Elsewhere(node)) => self.forwarded(node, |f, n| f.reconfigure(n, event.clone())).await,
            other => other,
        }
    }

    /// A person's place in the event's lines (the waiting room), on the owner.
    pub async fn line(
        &self,
        event_id: Uuid,
        op: inventory::LineOp,
    ) -> Result<Result<inventory::LineAnswer, InventoryError>, CallError> {
        match self.line_here(event_id, op.clone(), false).await {
            Err(CallError::Elsewhere(node)) => self.forwarded(node, |f, n| f.line(n, event_id, op.clone())).await,
            other => other,
        }
    }

    /// [`Inventories::line`] on this node's inventory, without forwarding.
    pub async fn line_here(
        &self,
        event_id: Uuid,
        op: inventory::LineOp,
        placed: bool,
    ) -> Result<Result<inventory::LineAnswer, InventoryError>, CallError> {
        self.ask_placed(event_id, placed, |r| InventoryMsg::Line(op.clone(), r)).await
    }

    /// [`Inventories::reconfigure`] on this node's inventory, without forwarding.
    pub async fn reconfigure_here(
        &self,
        event: events::Model,
        placed: bool,
    ) -> Result<Result<(), InventoryError>, CallError> {
        self.ask_placed(event.id, placed, |r| InventoryMsg::Reconfigure(event.clone(), r)).await
    }
}
