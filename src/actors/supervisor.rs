//! `InventorySupervisor`: spawns one [`EventInventory`] per event on demand, forgets the ones
//! that passivated, and restarts failed ones.
//!
//! Restart policy: the one in [`crate::retry`] (backoff doubling from `restart_backoff_ms` to 5 s,
//! a give-up after `max_restarts` failures within `restart_window_seconds`). A restarted
//! inventory's state comes back from the database (see `inventory.rs`). While the supervisor has
//! given up on an event, requests for it answer 503; the first request after the give-up window
//! makes one more attempt.
//!
//! While a restart is waiting out its backoff, requests for that event answer 503 too rather than
//! start the actor themselves: otherwise any traffic would skip the backoff, and a recovery that
//! keeps failing would be retried by every request and never reach the give-up. For the same
//! reason an actor that fails to start on a request's behalf counts as a failure like any other.
//!
//! Handlers find live inventories through the shared [`Directory`] without a round trip to the
//! supervisor; only a miss goes through its mailbox.
//!
//! In cluster mode an inventory starts only under this node's lease on the event
//! ([`Ownership::take`]); otherwise the lookup answers [`LookupError::Elsewhere`] with the node to
//! ask. An inventory that stops (idle, fenced, handed over) gives its lease back.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use sea_orm::{DatabaseConnection, EntityTrait};
use tokio::time::Instant;
use uuid::Uuid;

use super::{
    inventory::{EventInventory, InventoryArgs, InventoryMsg},
    ownership::{Ownership, Take},
    registry::{self, Registry},
};
use crate::{
    error::{Report, Unavailable},
    retry::{Failures, RestartPolicy, Verdict},
    store::{Committer, entities::events},
};

/// Live inventory actors by event id, readable without the supervisor.
pub type Directory = registry::Directory<Uuid, InventoryMsg>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum LookupError {
    #[error("event not found")]
    NotFound,
    /// Cluster mode: another node runs this event.
    #[error("event owned by node {0}")]
    Elsewhere(String),
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

pub enum SupervisorMsg {
    /// The event's inventory, started if needed. The flag: the request was placed here already
    /// (by this node's placement or by another node), so it is not sent on by placement.
    Get(Uuid, bool, RpcReplyPort<Result<ActorRef<InventoryMsg>, LookupError>>),
    Restart(Uuid),
    /// Cluster mode: stop the event's inventory and give its lease back (it belongs elsewhere
    /// now), or, if the lease was lost already, only stop it.
    HandOver(Uuid),
}

// Local only: ractor's `cluster` feature wants every message type declared (see the cluster module).
impl ractor::Message for SupervisorMsg {}

#[derive(Clone)]
pub struct SupervisorArgs {
    pub db: DatabaseConnection,
    pub committer: Committer,
    pub directory: Directory,
    pub payment_pin_max: Duration,
    pub passivate_after: Option<Duration>,
    pub restart: RestartPolicy,
    /// Cluster mode: this node's leases.
    pub ownership: Option<Ownership>,
    /// How long a waiting-room admission lasts.
    pub admission: Duration,
}

pub struct SupervisorState {
    args: SupervisorArgs,
    children: Registry<Uuid, InventoryMsg>,
    /// Recent failure instants per event, pruned to the restart window.
    failures: HashMap<Uuid, Failures>,
    /// Events given up on, until when.
    gave_up: HashMap<Uuid, Instant>,
    /// Events whose restart is scheduled; requests for them answer 503 until it has run.
    restarting: HashSet<Uuid>,
}

pub struct InventorySupervisor;

impl Actor for InventorySupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: SupervisorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(SupervisorState {
            children: Registry::new(args.directory.clone()),
            args,
            failures: HashMap::new(),
            gave_up: HashMap::new(),
            restarting: HashSet::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Get(event_id, placed, reply) => {
                let result = state.get_or_spawn(&myself, event_id, placed).await;
                let _ = reply.send(result);
            }
            SupervisorMsg::HandOver(event_id) => {
                if let Some(actor) = state.children.get(&event_id) {
                    // Its lease is released when it has stopped (below).
                    actor.stop(Some("handed over".into()));
                } else if let Some(ownership) = &state.args.ownership {
                    ownership.release(event_id).await;
                }
            }
            SupervisorMsg::Restart(event_id) => {
                state.restarting.remove(&event_id);
                if state.children.get(&event_id).is_none() {
                    match state.get_or_spawn(&myself, event_id, true).await {
                        Ok(_) => {}
                        // The event was deleted meanwhile, or another node runs it now.
                        Err(LookupError::NotFound | LookupError::Elsewhere(_)) => {}
                        Err(e) => {
                            tracing::warn!(event = %event_id, error = %Report(&e), "inventory restart failed");
                            // A failed start was counted where it happened (a restart is pending again
                            // or the supervisor gave up); a failed lookup is counted here.
                            if !state.restarting.contains(&event_id) && !state.gave_up.contains_key(&event_id) {
                                state.on_failure(&myself, event_id);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                if let Some(event_id) = state.children.forget(&cell) {
                    tracing::debug!(event = %event_id, ?reason, "inventory stopped");
                    if let Some(ownership) = &state.args.ownership {
                        ownership.release(event_id).await;
                    }
                }
            }
            SupervisionEvent::ActorFailed(cell, err) => {
                if let Some(event_id) = state.children.forget(&cell) {
                    tracing::error!(event = %event_id, error = %err, "inventory actor failed");
                    state.on_failure(&myself, event_id);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl SupervisorState {
    fn on_failure(&mut self, myself: &ActorRef<SupervisorMsg>, event_id: Uuid) {
        let now = Instant::now();
        match self.args.restart.on_failure(self.failures.entry(event_id).or_default(), now) {
            Verdict::GiveUp { failures, for_ } => {
                tracing::error!(
                    event = %event_id,
                    failures,
                    give_up_s = for_.as_secs(),
                    "GIVING UP on inventory after repeated failures; its requests answer 503"
                );
                self.gave_up.insert(event_id, now + for_);
                self.failures.remove(&event_id);
                self.restarting.remove(&event_id);
            }
            Verdict::Restart { attempt, after } => {
                tracing::warn!(event = %event_id, attempt, backoff_ms = after.as_millis() as u64, "restarting inventory");
                metrics::counter!(crate::instruments::ACTOR_RESTARTS, "kind" => "inventory").increment(1);
                self.restarting.insert(event_id);
                myself.send_after(after, move || SupervisorMsg::Restart(event_id));
            }
        }
    }

    async fn get_or_spawn(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        event_id: Uuid,
        placed: bool,
    ) -> Result<ActorRef<InventoryMsg>, LookupError> {
        if let Some(actor) = self.children.get(&event_id) {
            return Ok(actor);
        }
        if let Some(until) = self.gave_up.get(&event_id) {
            if Instant::now() < *until {
                return Err(Unavailable::new("the inventory gave up after repeated failures").into());
            }
            self.gave_up.remove(&event_id);
        }
        if self.restarting.contains(&event_id) {
            return Err(Unavailable::new("the inventory is restarting after a failure").into());
        }
        let exists = events::Entity::find_by_id(event_id)
            .one(&self.args.db)
            .await
            .map_err(|e| Unavailable::because("the events table", e))?;
        if exists.is_none() {
            return Err(LookupError::NotFound);
        }
        let fence = match &self.args.ownership {
            None => None,
            Some(ownership) => match ownership.take(event_id, placed).await {
                Ok(Take::Mine(fence)) => Some(fence),
                Ok(Take::Elsewhere(node)) => return Err(LookupError::Elsewhere(node)),
                Ok(Take::Leaving) => {
                    return Err(Unavailable::new("this node is shutting down and no other node is up").into());
                }
                Err(e) => return Err(Unavailable::because("the event leases", e).into()),
            },
        };
        let args = InventoryArgs {
            event_id,
            db: self.args.db.clone(),
            committer: self.args.committer.clone(),
            payment_pin_max: self.args.payment_pin_max,
            passivate_after: self.args.passivate_after,
            fence,
            admission: self.args.admission,
        };
        let (actor, _) = match Actor::spawn_linked(None, EventInventory, args, myself.get_cell()).await {
            Ok(spawned) => spawned,
            Err(e) => {
                // Recovery failed: a failure like a crash, so it backs off and can give up.
                tracing::error!(event = %event_id, error = %Report(&e), "inventory failed to start");
                self.on_failure(myself, event_id);
                return Err(Unavailable::because("the inventory failed to start", e).into());
            }
        };
        self.children.add(event_id, actor.clone());
        Ok(actor)
    }
}
