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
pub mod registry;
pub mod saga;
pub mod supervisor;

use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;
use ractor::{ActorRef, RpcReplyPort, rpc::CallResult};
use uuid::Uuid;

use inventory::{InventoryError, InventoryMsg};

use crate::error::Unavailable;
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
}
