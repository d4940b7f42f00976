//! The bus between the outbox relay and the consumers (Notifier, Auditor), plus a broadcast for
//! live listeners (the WebSocket and SSE streams).
//!
//! Two transports, same consumers: in-process (the embedded default: the relay calls the
//! consumer actors directly) or Kafka (the relay publishes; each consumer group feeds its actor,
//! see [`super::kafka`]). Delivery is acknowledged either way: the relay moves its position past
//! an outbox row only after every consumer, or the broker, accepted it, so a crash in between means
//! redelivery, never loss. Consumers are therefore idempotent on the event id.
//!
//! In cluster mode one node publishes for all (see [`super::outbox`]); a [`Fanout`] passes what
//! it published to the other nodes, which put it on their own live broadcast
//! ([`Bus::broadcast_live`]), so every node's streams show every node's changes.

use std::sync::Arc;

use tokio::sync::broadcast;

use super::{
    error::{BridgeError, DeliveryError},
    kafka::KafkaBridge,
};
use crate::domain::DomainEvent;

/// A consumer of domain events. The bridge knows consumers only by this trait (the consumer
/// actors implement it in `actors::consumer`).
#[async_trait::async_trait]
pub trait Subscriber: Send + Sync {
    fn name(&self) -> &str;
    /// Takes a batch in order; on error the whole batch is offered again.
    async fn deliver(&self, events: &[DomainEvent]) -> Result<(), DeliveryError>;
}

/// Where published events go.
#[derive(Clone)]
pub enum Transport {
    /// Straight to the subscribers, in order.
    InProcess(Arc<Vec<Arc<dyn Subscriber>>>),
    /// To Kafka; consumer groups deliver to the subscribers.
    Kafka(Arc<KafkaBridge>),
}

/// Passes published events on to the other nodes' live streams (fire and forget: live streams
/// are lossy anyway, and a stream that misses something re-reads what it shows).
pub trait Fanout: Send + Sync {
    fn published(&self, events: &[DomainEvent]);
}

/// Acknowledged delivery through the transport, and a lossy broadcast for live streams.
#[derive(Clone)]
pub struct Bus {
    transport: Transport,
    live: broadcast::Sender<DomainEvent>,
    fanout: Option<Arc<dyn Fanout>>,
}

impl Bus {
    pub fn in_process(subscribers: Vec<Arc<dyn Subscriber>>) -> Self {
        Self::new(Transport::InProcess(Arc::new(subscribers)))
    }

    pub fn new(transport: Transport) -> Self {
        let (live, _) = broadcast::channel(4096);
        Self { transport, live, fanout: None }
    }

    /// Cluster mode: what this node publishes goes to the other nodes' live streams too.
    pub fn with_fanout(self, fanout: Option<Arc<dyn Fanout>>) -> Self {
        Self { fanout, ..self }
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Delivers a batch; on failure the batch must be offered again (subscribers that already
    /// took it, or took part of it, deduplicate).
    pub async fn publish(&self, events: &[DomainEvent]) -> Result<(), BridgeError> {
        match &self.transport {
            Transport::InProcess(subscribers) => {
                for s in subscribers.iter() {
                    s.deliver(events)
                        .await
                        .map_err(|source| BridgeError::Delivery { consumer: s.name().to_string(), source })?;
                }
            }
            Transport::Kafka(kafka) => kafka.publish(events).await?,
        }
        self.broadcast_live(events);
        if let Some(f) = &self.fanout {
            f.published(events);
        }
        Ok(())
    }

    /// Puts events on this node's live broadcast (its own, or those another node published).
    pub fn broadcast_live(&self, events: &[DomainEvent]) {
        for e in events {
            let _ = self.live.send(e.clone());
        }
    }

    /// Live listeners (streams) get events as they are published; slow ones may miss some.
    pub fn subscribe_live(&self) -> broadcast::Receiver<DomainEvent> {
        self.live.subscribe()
    }
}
