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
pub mod payment;
pub mod registry;
pub mod saga;
pub mod supervisor;

use std::time::Duration;

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
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

impl From<LookupError> for CallError {
    fn from(e: LookupError) -> Self {
        match e {
            LookupError::NotFound => Self::NotFound,
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

/// Reaches an event's inventory actor, spawning it if needed.
#[derive(Clone)]
pub struct Inventories {
    pub supervisor: ActorRef<SupervisorMsg>,
    pub directory: Directory,
    pub timeout: Duration,
}

impl Inventories {
    async fn actor(&self, event_id: Uuid) -> Result<ActorRef<InventoryMsg>, CallError> {
        if let Some(a) = self.directory.get(&event_id) {
            return Ok(a);
        }
        call(&self.supervisor, |r| SupervisorMsg::Get(event_id, r), self.timeout).await?.map_err(Into::into)
    }

    /// Sends a message to an event's inventory. If that actor just passivated (the message
    /// finds it gone) the call is made once more to a fresh one.
    pub async fn ask<R: Send + 'static>(
        &self,
        event_id: Uuid,
        build: impl Fn(RpcReplyPort<R>) -> InventoryMsg,
    ) -> Result<R, CallError> {
        let actor = self.actor(event_id).await?;
        match call(&actor, &build, self.timeout).await {
            Err(CallError::Unavailable(_)) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let actor = self.actor(event_id).await?;
                call(&actor, &build, self.timeout).await
            }
            other => other,
        }
    }

    pub async fn snapshot(&self, event_id: Uuid) -> Result<inventory::Snapshot, CallError> {
        self.ask(event_id, InventoryMsg::Snapshot).await
    }

    pub async fn reserve(
        &self,
        event_id: Uuid,
        req: inventory::ReserveRequest,
    ) -> Result<Result<inventory::Reservation, InventoryError>, CallError> {
        // Stamped when the message is built, after the actor was found or started: the
        // histogram is the time in the mailbox, not the actor's start-up.
        self.ask(event_id, |r| InventoryMsg::Reserve(req.clone(), tokio::time::Instant::now(), r)).await
    }
}
