//! `Auditor`: writes every domain event to MongoDB's `auditlogs` collection, when `mongodb.url`
//! is set. The event id is unique there, so a redelivered
//! event is a no-op.
//!
//! Without MongoDB there is no Auditor: the audit log is the outbox table itself, which already
//! holds every domain event, written in the transaction of the change it reports and never
//! deleted (`GET /api/v1/audit-logs` reads it). A second copy of each event in the same database,
//! written after the relay delivered it, cost the booking transactions a share of their writes
//! during a rush and added nothing the outbox does not have.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::{actors::consumer::ConsumerMsg, error::Cause, store::mongo::MongoAuditLog};

#[derive(Clone)]
pub struct Auditor;

impl Actor for Auditor {
    type Msg = ConsumerMsg;
    type State = Arc<MongoAuditLog>;
    type Arguments = Arc<MongoAuditLog>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        log: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(log)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        log: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let ConsumerMsg::Deliver(events, reply) = msg;
        // A redelivered event id changes nothing (unique index on `eventId`).
        let result = log.record(&events).await;
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        metrics::counter!(crate::instruments::AUDIT_WRITES, "result" => outcome).increment(1);
        let _ = reply.send(result.map_err(|e| Arc::new(e) as Cause));
        Ok(())
    }
}
