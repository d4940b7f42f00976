//! The in-process event bus: the embedded-mode transport between the outbox relay and the
//! consumers (Notifier, Auditor), plus a broadcast for live listeners.
//!
//! Delivery to consumers is acknowledged: the relay marks an outbox row published only after
//! every consumer accepted it, so a crash in between means redelivery, never loss. Consumers
//! are therefore idempotent on the event id.

use std::{sync::Arc, time::Duration};

use ractor::{ActorRef, RpcReplyPort};
use tokio::sync::broadcast;

use crate::domain::DomainEvent;

/// The one message every event consumer actor accepts: a batch, in publication order.
pub enum ConsumerMsg {
    Deliver(Vec<DomainEvent>, RpcReplyPort<Result<(), String>>),
}

/// A consumer of domain events.
#[async_trait::async_trait]
pub trait Subscriber: Send + Sync {
    fn name(&self) -> &str;
    /// Takes a batch in order; on error the whole batch is offered again.
    async fn deliver(&self, events: &[DomainEvent]) -> Result<(), String>;
}

/// A consumer actor as a subscriber; the call is bounded by `timeout`.
pub struct ActorSubscriber {
    pub name: String,
    pub actor: ActorRef<ConsumerMsg>,
    pub timeout: Duration,
}

#[async_trait::async_trait]
impl Subscriber for ActorSubscriber {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, events: &[DomainEvent]) -> Result<(), String> {
        let events = events.to_vec();
        match self.actor.call(|reply| ConsumerMsg::Deliver(events, reply), Some(self.timeout)).await {
            Ok(ractor::rpc::CallResult::Success(result)) => result,
            Ok(other) => Err(format!("{} did not answer: {other:?}", self.name)),
            Err(e) => Err(format!("{} unreachable: {e}", self.name)),
        }
    }
}

/// Fan-out to acknowledged subscribers, and a lossy broadcast for live streams.
#[derive(Clone)]
pub struct Bus {
    subscribers: Arc<Vec<Arc<dyn Subscriber>>>,
    live: broadcast::Sender<DomainEvent>,
}

impl Bus {
    pub fn new(subscribers: Vec<Arc<dyn Subscriber>>) -> Self {
        let (live, _) = broadcast::channel(1024);
        Self { subscribers: Arc::new(subscribers), live }
    }

    /// Delivers a batch to every subscriber; the first failure is returned and the batch must
    /// be offered again (subscribers that already took it deduplicate).
    pub async fn publish(&self, events: &[DomainEvent]) -> Result<(), String> {
        for s in self.subscribers.iter() {
            s.deliver(events).await.map_err(|e| format!("{}: {e}", s.name()))?;
        }
        for e in events {
            let _ = self.live.send(e.clone());
        }
        Ok(())
    }

    /// Live listeners (streams) get events as they are published; slow ones may miss some.
    pub fn subscribe_live(&self) -> broadcast::Receiver<DomainEvent> {
        self.live.subscribe()
    }
}
