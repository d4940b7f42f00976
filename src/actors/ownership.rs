//! Cluster mode: the event leases this node holds, and where an event it does not hold should go.
//!
//! The inventory supervisor asks [`Ownership::take`] before it starts an event's inventory: the
//! node either holds the event's lease already, takes it (missing or lapsed), or learns which
//! node holds it. Every inventory started under a lease commits with that lease's epoch as its
//! fence. [`Ownership::renew_all`] runs every third of the TTL; a lease it cannot renew is lost,
//! and its inventory is stopped (if it still wrote something, the fence refuses it).
//!
//! Placement: an event nobody holds goes to the live node that ranks highest for it by
//! rendezvous hashing ([`Placement`]), so events spread evenly over the nodes that are up and only
//! a departing or returning node's share moves.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use sea_orm::{DatabaseConnection, DbErr};
use uuid::Uuid;

use crate::store::{
    committer::Fence,
    leases::{self, Lease},
};

/// Which live node an event without a lease should go to (`None`: this one).
pub trait Placement: Send + Sync {
    fn preferred_elsewhere(&self, event: Uuid) -> Option<String>;
    /// The live node other than this one that ranks highest for `event` (this node is leaving).
    fn best_peer(&self, event: Uuid) -> Option<String>;
}

/// The answer to "may this node run this event's inventory?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Take {
    /// Yes, under this fence.
    Mine(Fence),
    /// No: this node holds a live lease on it.
    Elsewhere(String),
    /// No: this node is shutting down and no other node is up to take it.
    Leaving,
}

/// This node's leases. Cheap to clone.
#[derive(Clone)]
pub struct Ownership {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    node: String,
    ttl: Duration,
    owned: Mutex<HashMap<Uuid, Lease>>,
    placement: Arc<dyn Placement>,
    /// Set once shutdown begins: no event is taken any more.
    leaving: std::sync::atomic::AtomicBool,
}

impl Ownership {
    pub fn new(db: DatabaseConnection, node: String, ttl: Duration, placement: Arc<dyn Placement>) -> Self {
        let owned = Mutex::new(HashMap::new());
        Self { inner: Arc::new(Inner { db, node, ttl, owned, placement, leaving: Default::default() }) }
    }

    pub fn node(&self) -> &str {
        &self.inner.node
    }

    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    fn owned(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Lease>> {
        self.inner.owned.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The lease this node holds on `event`, if any.
    pub fn fence(&self, event: Uuid) -> Option<Fence> {
        self.owned().get(&event).map(|l| Fence { event_id: event, epoch: l.epoch })
    }

    /// How many events this node owns.
    pub fn count(&self) -> usize {
        self.owned().len()
    }

    /// The events this node owns.
    pub fn events(&self) -> Vec<Uuid> {
        self.owned().keys().copied().collect()
    }

    /// Graceful shutdown begins: from now on this node takes no event, and sends every request
    /// for one it does not run to the peer placement ranks next.
    pub fn leave(&self) {
        self.inner.leaving.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn is_leaving(&self) -> bool {
        self.inner.leaving.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Decides who runs `event`. `placed`: the request was already sent here by placement (or by
    /// another node), so it is not sent on by placement again.
    pub async fn take(&self, event: Uuid, placed: bool) -> Result<Take, DbErr> {
        if self.is_leaving() {
            // Even an event still leased here: its inventory is being handed over, and starting
            // a new one would take it back.
            return Ok(self.inner.placement.best_peer(event).map_or(Take::Leaving, Take::Elsewhere));
        }
        if let Some(fence) = self.fence(event) {
            return Ok(Take::Mine(fence));
        }
        if let Some(current) = leases::current(&self.inner.db, event).await?
            && current.expires_at > chrono::Utc::now()
        {
            // A live lease (by this process's clock; the database decides below if it is close).
            if current.owner != self.inner.node {
                return Ok(Take::Elsewhere(current.owner));
            }
        }
        if !placed && let Some(node) = self.inner.placement.preferred_elsewhere(event) {
            return Ok(Take::Elsewhere(node));
        }
        match leases::acquire(&self.inner.db, event, &self.inner.node, self.inner.ttl).await? {
            Some(lease) => {
                tracing::info!(%event, epoch = lease.epoch, "took the event's lease");
                metrics::counter!(crate::instruments::CLUSTER_TAKEOVERS).increment(1);
                let fence = Fence { event_id: event, epoch: lease.epoch };
                self.owned().insert(event, lease);
                self.gauge();
                Ok(Take::Mine(fence))
            }
            // Someone holds it (a race lost, or a lease of this node's previous run, which is not
            // adopted: it may still be writing, so it is waited out).
            None => Ok(Take::Elsewhere(
                leases::current(&self.inner.db, event).await?.map_or_else(|| self.inner.node.clone(), |l| l.owner),
            )),
        }
    }

    /// Gives `event` up now (graceful: the next owner need not wait out the TTL).
    pub async fn release(&self, event: Uuid) {
        let lease = self.owned().remove(&event);
        self.gauge();
        if let Some(lease) = lease
            && let Err(e) = leases::release(&self.inner.db, &lease).await
        {
            tracing::warn!(%event, error = %e, "releasing a lease failed; it lapses on its own");
        }
    }

    /// Forgets `event` without touching the database (its lease was lost).
    pub fn forget(&self, event: Uuid) {
        self.owned().remove(&event);
        self.gauge();
    }

    /// Renews every lease; the events whose lease was lost (or could not be renewed in time).
    pub async fn renew_all(&self) -> Vec<Uuid> {
        let held: Vec<Lease> = self.owned().values().cloned().collect();
        let mut lost = Vec::new();
        for lease in held {
            match leases::renew(&self.inner.db, &lease, self.inner.ttl).await {
                Ok(Some(until)) => {
                    if let Some(l) = self.owned().get_mut(&lease.event_id)
                        && l.epoch == lease.epoch
                    {
                        l.expires_at = until;
                    }
                }
                Ok(None) => {
                    tracing::warn!(event = %lease.event_id, epoch = lease.epoch, "lost the event's lease");
                    lost.push(lease.event_id);
                }
                Err(e) => {
                    tracing::warn!(event = %lease.event_id, error = %e, "renewing a lease failed");
                    // Past its expiry the lease may be another node's: stop serving it.
                    if lease.expires_at <= chrono::Utc::now() {
                        lost.push(lease.event_id);
                    }
                }
            }
        }
        for event in &lost {
            self.forget(*event);
        }
        lost
    }

    /// The events this node owns that placement now sends elsewhere (a node came back).
    pub fn misplaced(&self) -> Vec<Uuid> {
        let owned: Vec<Uuid> = self.owned().keys().copied().collect();
        owned.into_iter().filter(|e| self.inner.placement.preferred_elsewhere(*e).is_some()).collect()
    }

    /// Releases every lease (graceful shutdown).
    pub async fn release_all(&self) {
        for event in self.events() {
            self.release(event).await;
        }
    }

    fn gauge(&self) {
        metrics::gauge!(crate::instruments::CLUSTER_LEASES).set(self.owned().len() as f64);
    }
}

/// Rendezvous (highest random weight) hashing: the node that ranks highest for `event`. Stable
/// across processes and builds (FNV-1a, not the std hasher, whose output may change).
pub fn rendezvous<'a>(event: Uuid, nodes: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    nodes.into_iter().max_by_key(|node| (weight(node, event), *node))
}

fn weight(node: &str, event: Uuid) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node.as_bytes().iter().chain([0u8].iter()).chain(event.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // A final mix, so nearby inputs spread.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_spreads_events_and_moves_only_a_leaving_nodes_share() {
        let three = ["node-a", "node-b", "node-c"];
        let events: Vec<Uuid> = (0..3000).map(|_| Uuid::new_v4()).collect();
        let mut per_node: HashMap<&str, usize> = HashMap::new();
        for e in &events {
            *per_node.entry(rendezvous(*e, three).unwrap()).or_default() += 1;
        }
        for n in three {
            let share = per_node[n];
            assert!((800..=1200).contains(&share), "{n} got {share} of 3000");
        }
        // node-c leaves: only its events move, and they spread over the others.
        for e in &events {
            let before = rendezvous(*e, three).unwrap();
            let after = rendezvous(*e, ["node-a", "node-b"]).unwrap();
            if before != "node-c" {
                assert_eq!(before, after, "an event of a node that stayed moved");
            }
        }
        assert_eq!(rendezvous(events[0], []), None);
    }
}
