//! Keeps a singleton actor running: the PaymentActor, the Notifier and the Auditor each have one
//! instance, so if it failed (a panic in a handler) everything that calls it would wait on a dead
//! actor forever, and e-mails and audit records would stop. A [`Keeper`] supervises it and starts
//! it again with the same arguments under the one [`RestartPolicy`] (backoff, then a loud give-up
//! for a window after too many failures, then another try; each restart counted in
//! `boxoffice_actor_restarts_total{kind}`, alerted on as a restart storm). Callers hold a [`Kept`]
//! handle, which always reaches the current instance; a call made while it is down fails like
//! any call to an unavailable actor, and the callers retry.

use std::{
    marker::PhantomData,
    sync::{Arc, RwLock},
};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr, SupervisionEvent};
use tokio::time::Instant;

use crate::retry::{Failures, RestartPolicy, Verdict};

/// A handle to the current instance of a kept actor. Cheap to clone.
pub struct Kept<M: ractor::Message> {
    current: Slot<M>,
    keeper: ActorCell,
}

/// The current instance, written by the keeper (set before [`keep`] returns).
type Slot<M> = Arc<RwLock<Option<ActorRef<M>>>>;

impl<M: ractor::Message> Clone for Kept<M> {
    fn clone(&self) -> Self {
        Self { current: self.current.clone(), keeper: self.keeper.clone() }
    }
}

impl<M: ractor::Message> Kept<M> {
    /// The instance running now (or the one that just failed, until its replacement starts).
    pub fn get(&self) -> ActorRef<M> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone().expect("started before keep() returned")
    }

    /// The actor, then its keeper: stopped in this order at shutdown (a normal stop is not
    /// restarted).
    pub fn cells(&self) -> [ActorCell; 2] {
        [self.get().get_cell(), self.keeper.clone()]
    }

    #[cfg(test)]
    fn stop(&self) {
        for cell in self.cells() {
            cell.stop(None);
        }
    }
}

/// Starts `actor` under a keeper applying `policy`; `kind` labels its restarts.
pub async fn keep<A>(
    kind: &'static str,
    actor: A,
    args: A::Arguments,
    policy: RestartPolicy,
) -> Result<Kept<A::Msg>, SpawnErr>
where
    A: Actor + Clone,
    A::Arguments: Clone + Sync,
{
    let current: Slot<A::Msg> = Arc::new(RwLock::new(None));
    let (keeper, _) =
        Actor::spawn(None, Keeper::<A>(PhantomData), KeeperArgs { kind, actor, args, policy, slot: current.clone() })
            .await?;
    Ok(Kept { current, keeper: keeper.get_cell() })
}

pub struct Keeper<A>(PhantomData<fn() -> A>);

pub struct KeeperArgs<A: Actor> {
    kind: &'static str,
    actor: A,
    args: A::Arguments,
    policy: RestartPolicy,
    slot: Slot<A::Msg>,
}

pub enum KeeperMsg {
    Restart,
}

// Local only: ractor's `cluster` feature wants every message type declared (see the cluster module).
impl ractor::Message for KeeperMsg {}

pub struct KeeperState<A: Actor> {
    kind: &'static str,
    actor: A,
    args: A::Arguments,
    slot: Slot<A::Msg>,
    current: ActorRef<A::Msg>,
    policy: RestartPolicy,
    failures: Failures,
}

impl<A: Actor + Clone> KeeperState<A>
where
    A::Arguments: Clone + Sync,
{
    async fn start(&mut self, myself: &ActorRef<KeeperMsg>) -> Result<(), SpawnErr> {
        let (child, _) = Actor::spawn_linked(None, self.actor.clone(), self.args.clone(), myself.get_cell()).await?;
        *self.slot.write().unwrap_or_else(|e| e.into_inner()) = Some(child.clone());
        self.current = child;
        Ok(())
    }

    fn schedule_restart(&mut self, myself: &ActorRef<KeeperMsg>) {
        let after = match self.policy.on_failure(&mut self.failures, Instant::now()) {
            Verdict::Restart { attempt, after } => {
                tracing::warn!(
                    kind = self.kind,
                    attempt,
                    backoff_ms = after.as_millis() as u64,
                    "restarting a failed actor"
                );
                after
            }
            // A singleton has no one to take over: it stays down for the window, then is tried again.
            Verdict::GiveUp { failures, for_ } => {
                tracing::error!(
                    kind = self.kind,
                    failures,
                    give_up_s = for_.as_secs(),
                    "GIVING UP on a failing actor for a while; calls to it fail until it is tried again"
                );
                for_
            }
        };
        metrics::counter!(crate::instruments::ACTOR_RESTARTS, "kind" => self.kind).increment(1);
        myself.send_after(after, || KeeperMsg::Restart);
    }
}

impl<A> Actor for Keeper<A>
where
    A: Actor + Clone,
    A::Arguments: Clone + Sync,
{
    type Msg = KeeperMsg;
    type State = KeeperState<A>;
    type Arguments = KeeperArgs<A>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        a: KeeperArgs<A>,
    ) -> Result<Self::State, ActorProcessingErr> {
        let (first, _) = Actor::spawn_linked(None, a.actor.clone(), a.args.clone(), myself.get_cell()).await?;
        *a.slot.write().unwrap_or_else(|e| e.into_inner()) = Some(first.clone());
        Ok(KeeperState {
            kind: a.kind,
            actor: a.actor,
            args: a.args,
            slot: a.slot,
            current: first,
            policy: a.policy,
            failures: Failures::default(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let KeeperMsg::Restart = msg;
        if let Err(e) = state.start(&myself).await {
            tracing::error!(kind = state.kind, error = %e, "a failed actor could not be started again");
            state.schedule_restart(&myself);
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(cell, err) = evt
            && cell.get_id() == state.current.get_id()
        {
            tracing::error!(kind = state.kind, error = %err, "actor failed");
            state.schedule_restart(&myself);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ractor::{RpcReplyPort, rpc::CallResult};

    use std::time::Duration;

    use super::*;
    use crate::retry::Backoff;

    fn policy(max_restarts: u32) -> RestartPolicy {
        RestartPolicy {
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)),
            window: Duration::from_secs(60),
            max_restarts,
        }
    }

    /// Answers pings with its own start count; fails on `Boom`.
    #[derive(Clone)]
    struct Fragile;

    enum FragileMsg {
        Ping(RpcReplyPort<u32>),
        Boom,
    }
    impl ractor::Message for FragileMsg {}

    impl Actor for Fragile {
        type Msg = FragileMsg;
        type State = u32;
        type Arguments = Arc<std::sync::atomic::AtomicU32>;

        async fn pre_start(&self, _: ActorRef<FragileMsg>, starts: Self::Arguments) -> Result<u32, ActorProcessingErr> {
            Ok(starts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1)
        }

        async fn handle(
            &self,
            _: ActorRef<FragileMsg>,
            msg: FragileMsg,
            n: &mut u32,
        ) -> Result<(), ActorProcessingErr> {
            match msg {
                FragileMsg::Ping(reply) => {
                    let _ = reply.send(*n);
                    Ok(())
                }
                FragileMsg::Boom => panic!("boom"),
            }
        }
    }

    async fn ping(kept: &Kept<FragileMsg>) -> Option<u32> {
        match kept.get().call(FragileMsg::Ping, Some(Duration::from_millis(200))).await {
            Ok(CallResult::Success(n)) => Some(n),
            _ => None,
        }
    }

    #[tokio::test]
    async fn a_failed_actor_is_started_again_and_the_handle_reaches_the_new_one() {
        let starts = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let kept = keep("test", Fragile, starts.clone(), policy(5)).await.unwrap();
        assert_eq!(ping(&kept).await, Some(1));
        let first = kept.get().get_id();
        for round in 2..=3 {
            kept.get().cast(FragileMsg::Boom).unwrap();
            let deadline = Instant::now() + Duration::from_secs(5);
            let answer = loop {
                if let Some(n) = ping(&kept).await {
                    break n;
                }
                assert!(Instant::now() < deadline, "restarted within the backoff");
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            assert_eq!(answer, round, "a fresh instance answers");
        }
        assert_ne!(kept.get().get_id(), first);
        assert_eq!(starts.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_normal_stop_is_not_restarted() {
        let starts = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let kept = keep("test", Fragile, starts.clone(), policy(5)).await.unwrap();
        kept.stop();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(ping(&kept).await, None);
        assert_eq!(starts.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_actor_that_keeps_failing_is_left_down_for_the_window_then_tried_again() {
        tokio::time::pause();
        let starts = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let kept = keep("test", Fragile, starts.clone(), policy(1)).await.unwrap();
        let started = |n| {
            let starts = starts.clone();
            async move {
                for _ in 0..1000 {
                    if starts.load(std::sync::atomic::Ordering::SeqCst) >= n {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                false
            }
        };
        kept.get().cast(FragileMsg::Boom).unwrap();
        assert!(started(2).await, "the first failure is restarted after the backoff");
        kept.get().cast(FragileMsg::Boom).unwrap();
        // The second failure within the window exceeds max_restarts = 1: no restart for a while.
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(starts.load(std::sync::atomic::Ordering::SeqCst), 2, "given up on: not restarted yet");
        tokio::time::sleep(Duration::from_secs(31)).await;
        assert!(started(3).await, "tried again once the window has passed");
    }
}
