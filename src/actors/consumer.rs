//! The consumer actors' side of the bus: the message the Notifier and the Auditor accept, and
//! [`ActorSubscriber`], which makes a kept consumer actor a [`Subscriber`] of the bridge (the
//! bridge itself knows no actor).

use std::time::Duration;

use ractor::RpcReplyPort;

use super::keeper::Kept;
use crate::{
    bridge::{bus::Subscriber, error::DeliveryError},
    domain::DomainEvent,
    error::Cause,
};

/// The one message every event consumer actor accepts: a batch, in publication order. The
/// consumer answers with its own error as the cause when it could not take it.
pub enum ConsumerMsg {
    Deliver(Vec<DomainEvent>, RpcReplyPort<Result<(), Cause>>),
}

// Local only: ractor's `cluster` feature wants every message type declared (see the cluster module).
impl ractor::Message for ConsumerMsg {}

/// A consumer actor as a subscriber; the call is bounded by `timeout`.
pub struct ActorSubscriber {
    pub name: String,
    /// The consumer actor (kept running: a failed one is started again).
    pub actor: Kept<ConsumerMsg>,
    pub timeout: Duration,
}

#[async_trait::async_trait]
impl Subscriber for ActorSubscriber {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, events: &[DomainEvent]) -> Result<(), DeliveryError> {
        let events = events.to_vec();
        match self.actor.get().call(|reply| ConsumerMsg::Deliver(events, reply), Some(self.timeout)).await {
            Ok(ractor::rpc::CallResult::Success(result)) => result.map_err(DeliveryError::Failed),
            Ok(ractor::rpc::CallResult::Timeout) => Err(DeliveryError::NoAnswer),
            // The actor stopped while the call ran, or was not running: its keeper restarts it.
            Ok(ractor::rpc::CallResult::SenderError) | Err(_) => Err(DeliveryError::Unreachable),
        }
    }
}
