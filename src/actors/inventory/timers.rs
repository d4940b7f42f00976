//! The holds' expiry clock: one sleeping task per event, not one per hold.
//!
//! A task per hold cost a spawn, a timer registration and a first poll on every hold placed, and
//! as many live tasks as live holds. Here the deadlines wait in one ordered map and a single task
//! sleeps until the earliest; under a rush new holds end after every earlier one, so placing a
//! hold is a map insert and the task is not touched. When it fires, the actor takes every hold
//! whose time has come ([`HoldTimers::due`]) and the task is set for the next.

use std::collections::BTreeMap;

use ractor::{ActorRef, concurrency::JoinHandle};
use tokio::time::Instant;
use uuid::Uuid;

use super::InventoryMsg;

#[derive(Default)]
pub(super) struct HoldTimers {
    /// Each armed hold by its deadline and token (the token keeps equal deadlines apart and tells
    /// a re-armed hold's old entry from its new one).
    due: BTreeMap<(Instant, u64), Uuid>,
    /// The sleeping task and the instant it wakes the actor at.
    wake: Option<(Instant, JoinHandle<()>)>,
}

impl HoldTimers {
    /// The hold `order` ends at `deadline` unless disarmed first.
    pub fn arm(&mut self, myself: &ActorRef<InventoryMsg>, order: Uuid, token: u64, deadline: Instant) {
        self.due.insert((deadline, token), order);
        self.schedule(myself);
    }

    /// Forgets a hold's deadline (it was sold, released or re-armed). The task may then wake
    /// the actor for nothing, which costs one message.
    pub fn disarm(&mut self, deadline: Instant, token: u64) {
        self.due.remove(&(deadline, token));
    }

    /// The holds whose deadline has passed by `now`, as `(order, token)`, taken off the clock;
    /// the task is set for the next deadline.
    pub fn due(&mut self, myself: &ActorRef<InventoryMsg>, now: Instant) -> Vec<(Uuid, u64)> {
        let later = self.due.split_off(&(now, u64::MAX));
        let due = std::mem::replace(&mut self.due, later);
        // The task that fired is done; one set for later (this wake-up came from an older one) stays.
        if self.wake.as_ref().is_some_and(|(at, _)| *at <= now) {
            self.wake = None;
        }
        self.schedule(myself);
        due.into_iter().map(|((_, token), order)| (order, token)).collect()
    }

    /// Stops the task (the actor is stopping).
    pub fn stop(&mut self) {
        if let Some((_, task)) = self.wake.take() {
            task.abort();
        }
    }

    /// Makes sure the task wakes the actor no later than the earliest deadline.
    fn schedule(&mut self, myself: &ActorRef<InventoryMsg>) {
        let Some(&(first, _)) = self.due.keys().next() else { return };
        if self.wake.as_ref().is_some_and(|(at, _)| *at <= first) {
            return;
        }
        self.stop();
        let myself = myself.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep_until(first).await;
            let _ = myself.cast(InventoryMsg::HoldsDue);
        });
        self.wake = Some((first, task));
    }
}
