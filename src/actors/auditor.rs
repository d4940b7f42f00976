//! `Auditor`: writes every domain event to MongoDB's `auditlogs` collection (through the
//! [`AuditSink`] port), when `mongodb.url` is set. The event id is unique there, so a redelivered
//! event is a no-op.
//!
//! Without MongoDB there is no Auditor: the audit log is the outbox table itself, which already
//! holds every domain event, written in the transaction of the change it reports and never
//! deleted (`GET /api/v1/audit-logs` reads it). A second copy of each event in the same database,
//! written after the relay delivered it, cost the booking transactions a share of their writes
//! during a rush and added nothing the outbox does not have.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::{bridge::bus::ConsumerMsg, domain::DomainEvent, store::mongo::MongoAuditLog};

#[async_trait::async_trait]
pub trait AuditSink: Send + Sync + 'static {
    /// Records the events; recording an event id again must succeed and change nothing.
    async fn record(&self, events: &[DomainEvent]) -> Result<(), String>;
}

#[async_trait::async_trait]
impl AuditSink for MongoAuditLog {
    async fn record(&self, events: &[DomainEvent]) -> Result<(), String> {
        MongoAuditLog::record(self, events).await
    }
}

#[derive(Clone)]
pub struct Auditor;

impl Actor for Auditor {
    type Msg = ConsumerMsg;
    type State = Arc<dyn AuditSink>;
    type Arguments = Arc<dyn AuditSink>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        sink: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(sink)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        sink: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let ConsumerMsg::Deliver(events, reply) = msg;
        let result = sink.record(&events).await;
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        metrics::counter!(crate::instruments::AUDIT_WRITES, "result" => outcome).increment(1);
        let _ = reply.send(result);
        Ok(())
    }
}
