//! The one shape in which a supervisor keeps its children by key: [`Registry`], over a
//! [`Directory`] that handlers read without a round trip to the supervisor's mailbox. The
//! inventory supervisor keys it by event, the saga supervisor by order.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, RwLock},
};

use ractor::{ActorCell, ActorId, ActorRef};

/// Live actors by key, shared between a supervisor (the only writer) and its callers.
pub struct Directory<K, M: ractor::Message>(Arc<RwLock<HashMap<K, ActorRef<M>>>>);

impl<K, M: ractor::Message> Clone for Directory<K, M> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<K, M: ractor::Message> Default for Directory<K, M> {
    fn default() -> Self {
        Self(Arc::new(RwLock::new(HashMap::new())))
    }
}

impl<K: Eq + Hash, M: ractor::Message> Directory<K, M> {
    pub fn get(&self, key: &K) -> Option<ActorRef<M>> {
        self.0.read().ok()?.get(key).cloned()
    }

    fn insert(&self, key: K, actor: ActorRef<M>) {
        if let Ok(mut m) = self.0.write() {
            m.insert(key, actor);
        }
    }

    /// Removes `key` if it still points at `actor` (a newer instance may have replaced it).
    fn remove_if(&self, key: &K, actor: ActorId) {
        if let Ok(mut m) = self.0.write()
            && m.get(key).is_some_and(|a| a.get_id() == actor)
        {
            m.remove(key);
        }
    }
}

/// A supervisor's children: the shared directory, and which key each child serves.
pub struct Registry<K, M: ractor::Message> {
    directory: Directory<K, M>,
    by_actor: HashMap<ActorId, K>,
}

impl<K: Eq + Hash + Clone, M: ractor::Message> Registry<K, M> {
    pub fn new(directory: Directory<K, M>) -> Self {
        Self { directory, by_actor: HashMap::new() }
    }

    pub fn get(&self, key: &K) -> Option<ActorRef<M>> {
        self.directory.get(key)
    }

    /// Records a child the supervisor just started for `key`.
    pub fn add(&mut self, key: K, actor: ActorRef<M>) {
        self.by_actor.insert(actor.get_id(), key.clone());
        self.directory.insert(key, actor);
    }

    /// Forgets a child that stopped or failed; its key, if it was one of ours.
    pub fn forget(&mut self, cell: &ActorCell) -> Option<K> {
        let key = self.by_actor.remove(&cell.get_id())?;
        self.directory.remove_if(&key, cell.get_id());
        Some(key)
    }
}
