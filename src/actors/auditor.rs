//! `Auditor`: writes every domain event to the audit log through the [`AuditSink`] port.
//!
//! Embedded mode writes the `audit_logs` table; with `mongodb.url` set it writes MongoDB's
//! `auditlogs` collection. The event id is unique in both, so a redelivered event is a no-op.

use std::sync::Arc;

use chrono::Utc;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use sea_orm::ActiveValue::Set;

use crate::{
    bridge::bus::ConsumerMsg,
    domain::DomainEvent,
    store::{Committer, WriteOp, entities::audit_logs, mongo::MongoAuditLog},
};

#[async_trait::async_trait]
pub trait AuditSink: Send + Sync + 'static {
    /// Records the events; recording an event id again must succeed and change nothing.
    async fn record(&self, events: &[DomainEvent]) -> Result<(), String>;
}

/// Writes through the committer, so audit rows share the booking transactions instead of
/// competing with them for SQLite's single write lock.
pub struct SqlAuditSink {
    pub committer: Committer,
}

#[async_trait::async_trait]
impl AuditSink for SqlAuditSink {
    async fn record(&self, events: &[DomainEvent]) -> Result<(), String> {
        let now = Utc::now();
        let rows = events.iter().map(|event| audit_logs::ActiveModel {
            event_id: Set(event.id),
            event_type: Set(event.event_type.as_str().to_string()),
            data: Set(event.payload.to_string()),
            occurred_at: Set(event.occurred_at),
            received_at: Set(now),
            ..Default::default()
        });
        self.committer.commit(vec![WriteOp::InsertAuditLogs(rows.collect())]).await.map_err(|e| e.to_string())
    }
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
