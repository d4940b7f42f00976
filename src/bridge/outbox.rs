//! The outbox relay: publishes committed outbox rows in order and moves its stored position past
//! them only after the bus acknowledged them (see [`crate::store::outbox`] for the order, and why a
//! position is exact on both backends).
//!
//! It wakes when the committer reports a commit (and every `poll` as a fallback for rows
//! written by other transactions). A failed delivery stops the pass, so order per aggregate
//! holds, and is retried with capped backoff.
//!
//! **Publishing without reading back** (SQLite). The committer hands over the rows it just wrote,
//! with their ids ([`CommitFeed`]). When those continue exactly from the last row published, the
//! relay publishes them from memory; when they do not (a row another transaction wrote lies
//! between, or the relay just started), and at least every `poll`, it reads the store as before. A
//! rush then costs the relay no reads and no decoding, and no row can be skipped: anything the feed
//! does not carry shows as a gap in the ids, and a gap means a read. On PostgreSQL ids do not
//! become visible in order, so a gap proves nothing there: the relay always reads.
//!
//! **One relay per database.** Every node runs a relay, but on PostgreSQL only the holder of the
//! `boxoffice.outbox-relay` advisory lock publishes ([`Leadership::Lock`]); the others try to
//! take the lock every [`CANDIDATE_EVERY`]. A leader lock rather than rows claimed per node
//! (`FOR UPDATE SKIP LOCKED`): claiming splits one aggregate's rows between nodes, whose
//! publishes then race and break the order per aggregate, and every node's relay would write
//! marks into the same rows its peers' committers lock (the deadlocks seen in the cluster
//! benchmark). With one leader, rows go out in order from one place.
//!
//! A leader killed mid-publish loses the lock with its connection; the next leader publishes
//! every row after the stored position, so nothing is lost, and what the dead one had already sent goes again
//! (delivery is at least once; the consumers are idempotent on the event id, so no e-mail or
//! audit document doubles). A *frozen* leader is cut off by the server after
//! [`LEADER_SILENCE`] (the lock's `idle_session_timeout`), and before each publish a leader checks
//! its session is still there, so one that wakes up does not publish a batch its successor owns.

use std::{sync::Arc, time::Duration};

use sea_orm::{DatabaseConnection, DbBackend};
use tokio::sync::watch;

use super::{
    bus::Bus,
    error::{BridgeError, DecodeError},
};
use crate::{
    domain::{DomainEvent, EventType, Payload},
    error::Report,
    instruments,
    retry::Backoff,
    store::{
        CommitFeed, Committer, WriteOp,
        advisory::Exclusive,
        entities::outbox,
        outbox::{self as rows, Position},
    },
};

const BATCH: u64 = 1024;

/// A leader silent this long loses the relay (the server ends its lock's session).
pub const LEADER_SILENCE: Duration = Duration::from_secs(3);
/// How often a leader proves it is alive between passes, well inside [`LEADER_SILENCE`].
const LEADER_HEARTBEAT: Duration = Duration::from_millis(500);
/// How often a node that is not the leader tries to become it.
pub const CANDIDATE_EVERY: Duration = Duration::from_millis(500);
const LOCK_NAME: &str = "boxoffice.outbox-relay";

/// Who may publish.
pub enum Leadership {
    /// SQLite: one process owns the database file.
    Always,
    /// PostgreSQL: the holder of the relay lock, taken through this URL.
    Lock { url: String },
}

/// After a pass that published something, wait this long before the next one: during a rush
/// that gathers hundreds of events per pass instead of a handful, so the relay's own writes
/// (audit rows, its position) cost the booking transactions far fewer commits.
const GATHER: Duration = Duration::from_millis(10);

pub struct OutboxRelay {
    pub db: DatabaseConnection,
    /// Stores the relay's position in the booking transactions (one writer for SQLite).
    pub committer: Committer,
    pub bus: Bus,
    /// Wakes the relay after a commit and, on SQLite, carries what it wrote.
    pub feed: Arc<CommitFeed>,
    pub poll: Duration,
    pub leadership: Leadership,
}

impl OutboxRelay {
    /// Runs until `shutdown` turns true, after a final drain (under [`crate::retry::supervised`]:
    /// a run that panics starts again, from the stored position).
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        match &self.leadership {
            Leadership::Always => {
                metrics::gauge!(instruments::OUTBOX_LEADER).set(1.0);
                self.lead(None, shutdown).await;
            }
            Leadership::Lock { url } => loop {
                metrics::gauge!(instruments::OUTBOX_LEADER).set(0.0);
                match Exclusive::try_take(url, LOCK_NAME, Some(LEADER_SILENCE)).await {
                    Ok(Some(lock)) => {
                        tracing::info!("this node now publishes the outbox");
                        metrics::gauge!(instruments::OUTBOX_LEADER).set(1.0);
                        if self.lead(Some(lock), shutdown.clone()).await {
                            return;
                        }
                        metrics::counter!(instruments::OUTBOX_LOCK_LOST).increment(1);
                        tracing::warn!(
                            "this node lost the outbox relay lock (its session ended); the node that takes it publishes"
                        );
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %Report(&e), "cannot reach PostgreSQL for the outbox relay lock"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(CANDIDATE_EVERY) => {}
                    _ = shutdown.changed() => {}
                }
                if *shutdown.borrow() {
                    return;
                }
            },
        }
    }

    /// Publishes while this node leads (always, without a lock). True when it stopped for
    /// shutdown, false when the lock was lost. The committer's feed is kept only meanwhile.
    async fn lead(&self, lock: Option<Exclusive>, shutdown: watch::Receiver<bool>) -> bool {
        self.feed.listen(self.ordered_ids());
        let stopped = self.publish_while_leading(lock, shutdown).await;
        self.feed.listen(false);
        stopped
    }

    async fn publish_while_leading(&self, mut lock: Option<Exclusive>, mut shutdown: watch::Receiver<bool>) -> bool {
        let mut backoff = Backoff::standard();
        // Where the last leader stopped is read by the first pass.
        let mut cursor = Cursor::default();
        loop {
            let rest = match self.pass(lock.as_mut(), &mut cursor).await {
                Ok(Pass::Lost) => return false,
                Ok(Pass::More) => {
                    backoff.reset();
                    continue;
                }
                Ok(Pass::Done) => {
                    backoff.reset();
                    match self.rest(&mut lock, GATHER, false, &mut shutdown).await {
                        Rest::Go => self.rest(&mut lock, self.poll, true, &mut shutdown).await,
                        other => other,
                    }
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %Report(&e), retry_ms = delay.as_millis() as u64, "outbox relay pass failed");
                    match self.rest(&mut lock, delay, false, &mut shutdown).await {
                        // No last drain after a failure: the bus is likely still away.
                        Rest::Stop => Rest::Gone,
                        other => other,
                    }
                }
            };
            match rest {
                Rest::Go => {}
                Rest::Lost => return false,
                Rest::Stop => {
                    // One last drain so what was committed before shutdown goes out.
                    let _ = self.pass(lock.as_mut(), &mut cursor).await;
                    break;
                }
                Rest::Gone => break,
            }
        }
        if let Some(lock) = lock {
            lock.release().await;
        }
        true
    }

    /// Waits `pause` (or, with `wake`, until the committer reports a commit), proving the lock
    /// alive every [`LEADER_HEARTBEAT`] meanwhile so its session never idles out.
    async fn rest(
        &self,
        lock: &mut Option<Exclusive>,
        pause: Duration,
        wake: bool,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Rest {
        let until = tokio::time::Instant::now() + pause;
        loop {
            if *shutdown.borrow() {
                return Rest::Stop;
            }
            // The beat is counted from the lock's last proof, not from this rest: rests shorter
            // than the heartbeat (the cluster's 100 ms poll) would otherwise never prove it, and
            // an idle leader's session would time out while it still believed it led.
            if let Some(l) = lock
                && l.unproven_for() >= LEADER_HEARTBEAT
                && !l.alive().await
            {
                return Rest::Lost;
            }
            let beat = lock
                .as_ref()
                .map_or(until, |l| tokio::time::Instant::now() + LEADER_HEARTBEAT.saturating_sub(l.unproven_for()));
            tokio::select! {
                _ = tokio::time::sleep_until(until.min(beat)) => {}
                _ = self.feed.notified(), if wake => return Rest::Go,
                _ = shutdown.changed() => return Rest::Stop,
            }
            if tokio::time::Instant::now() >= until {
                return Rest::Go;
            }
        }
    }

    /// Whether ids become visible in order (one writer: SQLite), so the feed can be trusted.
    fn ordered_ids(&self) -> bool {
        self.db.get_database_backend() == DbBackend::Sqlite
    }

    /// Publishes one batch: from the feed when it continues the cursor, from the store otherwise.
    /// With a lock, checks the lock is still held after reading and before publishing (a leader
    /// that froze mid-pass must not publish its successor's rows).
    async fn pass(&self, mut lock: Option<&mut Exclusive>, cursor: &mut Cursor) -> Result<Pass, BridgeError> {
        let at = match cursor.at {
            Some(at) => at,
            None => *cursor.at.insert(rows::position(&self.db).await.map_err(BridgeError::ReadOutbox)?),
        };
        let fresh = match cursor.read_at {
            Some(read) if self.ordered_ids() && read.elapsed() < self.poll => {
                self.feed.take_from(at.id + 1, BATCH as usize)
            }
            _ => None,
        };
        let (read, last, events) = match fresh {
            Some(fresh) => {
                metrics::counter!(instruments::OUTBOX_FROM_FEED).increment(fresh.len() as u64);
                let last = fresh.last().map(|(id, _)| Position { tx: at.tx, id: *id });
                (fresh.len(), last, fresh.into_iter().map(|(_, e)| e).collect())
            }
            None => {
                cursor.read_at = Some(std::time::Instant::now());
                self.read(at).await?
            }
        };
        if let Some(lock) = lock.as_deref_mut()
            && read > 0
            && !lock.alive().await
        {
            return Ok(Pass::Lost);
        }
        if !events.is_empty() {
            let started = std::time::Instant::now();
            let publish = self.bus.publish(&events);
            let mut publish = std::pin::pin!(publish);
            // A publish can take as long as the producer's message timeout (a broker away): the
            // lock's session is proven meanwhile, or it idles out after LEADER_SILENCE and a
            // single node loses its own relay to a Kafka outage.
            let published = loop {
                tokio::select! {
                    published = &mut publish => break published,
                    () = tokio::time::sleep(LEADER_HEARTBEAT), if lock.is_some() => {
                        if let Some(lock) = lock.as_deref_mut()
                            && !lock.alive().await
                        {
                            return Ok(Pass::Lost);
                        }
                    }
                }
            };
            if let Err(e) = published {
                metrics::counter!(instruments::PUBLISH_ERRORS).increment(1);
                return Err(e);
            }
            metrics::histogram!(instruments::PUBLISH_DURATION).record(started.elapsed().as_secs_f64());
            count_published(&events);
        }
        if let Some(last) = last {
            self.committer.commit(vec![WriteOp::RelayAdvanced(last)]).await.map_err(BridgeError::Advance)?;
            cursor.at = Some(last);
        }
        Ok(if read as u64 == BATCH { Pass::More } else { Pass::Done })
    }

    /// The next rows in the store after `at`: how many, the last one's position, and the events
    /// they decode to (an undecodable row is logged and passed over).
    async fn read(&self, at: Position) -> Result<(usize, Option<Position>, Vec<DomainEvent>), BridgeError> {
        let rows = rows::after(&self.db, at, BATCH).await.map_err(BridgeError::ReadOutbox)?;
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
        Ok((rows.len(), rows.last().map(Position::of), events))
    }
}

/// Where the relay is in the outbox, while it leads.
#[derive(Default)]
struct Cursor {
    /// The last row published (read from the store when this node starts leading).
    at: Option<Position>,
    /// When the store was last read (it is read at least every `poll`, for rows the feed cannot
    /// carry: another transaction's row committed after higher ids were published).
    read_at: Option<std::time::Instant>,
}

enum Pass {
    /// A full batch went out; there may be more right away.
    More,
    /// Everything pending went out.
    Done,
    /// The lock was lost before publishing; nothing went out.
    Lost,
}

enum Rest {
    Go,
    Lost,
    /// Shutdown: drain once more, then stop.
    Stop,
    /// Shutdown without a last drain.
    Gone,
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

/// Keeps the pending-rows gauge current (a count of the rows after the relay's position, every
/// `every`).
pub async fn watch_pending(db: DatabaseConnection, every: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Ok(n) = rows::pending(&db).await {
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
