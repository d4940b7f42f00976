//! The outbox relay: publishes committed outbox rows in id order and marks them published
//! only after the bus acknowledged them.
//!
//! It wakes when the committer reports a commit (and every `poll` as a fallback for rows
//! written by other transactions). A failed delivery stops the pass, so order per aggregate
//! holds, and is retried with capped backoff.

use std::{sync::Arc, time::Duration};

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::{Notify, watch};

use super::{
    bus::Bus,
    error::{BridgeError, DecodeError},
};
use crate::{
    domain::{DomainEvent, EventType, Payload},
    error::Report,
    instruments,
    retry::Backoff,
    store::{Committer, WriteOp, entities::outbox},
};

const BATCH: u64 = 1024;

/// After a pass that published something, wait this long before the next one: during a rush
/// that gathers hundreds of events per pass instead of a handful, so the relay's own writes
/// (audit rows, published marks) cost the booking transactions far fewer commits.
const GATHER: Duration = Duration::from_millis(10);

pub struct OutboxRelay {
    pub db: DatabaseConnection,
    /// Marks rows published in the booking transactions (one writer for SQLite).
    pub committer: Committer,
    pub bus: Bus,
    pub wake: Arc<Notify>,
    pub poll: Duration,
}

impl OutboxRelay {
    /// Runs until `shutdown` turns true, after a final drain.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Backoff::standard();
        loop {
            match self.pass().await {
                Ok(more) => {
                    backoff.reset();
                    if more {
                        continue;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(GATHER) => {}
                        _ = shutdown.changed() => {
                            let _ = self.pass().await;
                            return;
                        }
                    }
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %Report(&e), retry_ms = delay.as_millis() as u64, "outbox relay pass failed");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.changed() => {}
                    }
                    if *shutdown.borrow() {
                        return;
                    }
                    continue;
                }
            }
            if *shutdown.borrow() {
                return;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.poll) => {}
                _ = shutdown.changed() => {
                    // One last drain so what was committed before shutdown goes out.
                    let _ = self.pass().await;
                    return;
                }
            }
        }
    }

    /// Publishes one batch; true when it was full, so there may be more right away.
    pub async fn pass(&self) -> Result<bool, BridgeError> {
        let rows = outbox::Entity::find()
            .filter(outbox::Column::PublishedAt.is_null())
            .order_by_asc(outbox::Column::Id)
            .limit(BATCH)
            .all(&self.db)
            .await
            .map_err(BridgeError::ReadOutbox)?;
        let full = rows.len() as u64 == BATCH;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            match decode(row) {
                Ok(e) => events.push(e),
                Err(error) => tracing::error!(
                    outbox_id = row.id,
                    event_type = %row.event_type,
                    error = %Report(&error),
                    "undecodable outbox row skipped"
                ),
            }
        }
        if !events.is_empty() {
            let started = std::time::Instant::now();
            if let Err(e) = self.bus.publish(&events).await {
                metrics::counter!(instruments::PUBLISH_ERRORS).increment(1);
                return Err(e);
            }
            metrics::histogram!(instruments::PUBLISH_DURATION).record(started.elapsed().as_secs_f64());
            count_published(&events);
        }
        if !rows.is_empty() {
            let ids = rows.iter().map(|r| r.id).collect();
            self.committer.commit(vec![WriteOp::MarkPublished(ids)]).await.map_err(BridgeError::MarkPublished)?;
        }
        Ok(full)
    }
}

/// Counts what was published: every type, and the order and payment outcomes among them.
fn count_published(events: &[DomainEvent]) {
    for e in events {
        count_type(e.event_type(), 1);
    }
}

/// Registers every type's counters at zero, so dashboards and alerts see a series (and a rate
/// of 0) before the first event of a kind, instead of no data.
pub fn register_counters() {
    for t in EventType::ALL {
        count_type(*t, 0);
    }
}

fn count_type(t: EventType, n: u64) {
    let t = t.as_str();
    metrics::counter!(instruments::DOMAIN_EVENTS, "type" => t).increment(n);
    let outcome = |prefix: &str| t.strip_prefix(prefix).map(str::to_string);
    if let Some(o) = outcome("order.") {
        metrics::counter!(instruments::ORDERS, "outcome" => o).increment(n);
    } else if let Some(o) = outcome("payment.") {
        metrics::counter!(instruments::PAYMENTS, "outcome" => o).increment(n);
    }
}

/// Keeps the pending-rows gauge current (one cheap count on the partial index every `every`).
pub async fn watch_pending(db: DatabaseConnection, every: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        let pending = outbox::Entity::find().filter(outbox::Column::PublishedAt.is_null()).count(&db).await;
        if let Ok(n) = pending {
            metrics::gauge!(instruments::OUTBOX_PENDING).set(n as f64);
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The domain event a row carries.
pub fn decode(row: &outbox::Model) -> Result<DomainEvent, DecodeError> {
    let t = EventType::parse(&row.event_type).ok_or_else(|| DecodeError::UnknownType(row.event_type.clone()))?;
    let payload = Payload::decode(t, row.payload.as_bytes())
        .map_err(|source| DecodeError::Payload { event_type: t.as_str(), source })?;
    Ok(DomainEvent { id: row.event_id, aggregate_id: row.aggregate_id, occurred_at: row.occurred_at, payload })
}
