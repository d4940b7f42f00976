//! The one home for "try again later": a capped doubling [`Backoff`] for loops that retry an
//! outside service (the outbox relay, Kafka topics and consumers), and the [`RestartPolicy`]
//! every supervisor applies to a failed actor (the inventory supervisor per event, the keeper of
//! each singleton actor).
//!
//! The policy: a failed actor is restarted after a backoff that doubles from `first` up to `max`
//! with each failure inside `window`; failures further apart start again from `first`. More than
//! `max_restarts` failures inside the window and the supervisor gives up loudly for one window
//! (the actor's callers get 503 meanwhile) and then tries again: a fault that a restart cannot
//! cure does not spin, and one that clears (a database back, a disk freed) heals by itself.

use std::{
    future::Future,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use tokio::{sync::watch, time::Instant};

/// How often an outside service Boxoffice can run without (Kafka, MongoDB) is probed, so that
/// readiness says `degraded` within seconds of an outage even while idle, and `ok` again within
/// seconds of its return.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);

/// Keeps `up` set to what `probe` finds every [`PROBE_EVERY`] until `stop`, logging changes.
/// `on_return` runs when the service comes back.
pub async fn keep_probing<F, Fut>(
    what: &'static str,
    up: &AtomicBool,
    mut probe: F,
    on_return: impl Fn(),
    mut stop: watch::Receiver<bool>,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    loop {
        let now_up = probe().await;
        let was_up = up.swap(now_up, Ordering::Relaxed);
        if was_up && !now_up {
            tracing::warn!(service = what, "unreachable: degraded until it answers again");
        } else if !was_up && now_up {
            tracing::info!(service = what, "reachable again");
            on_return();
        }
        tokio::select! {
            _ = tokio::time::sleep(PROBE_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

/// A delay that doubles on every [`Backoff::next_delay`] up to a cap, until [`Backoff::reset`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub const fn new(first: Duration, max: Duration) -> Self {
        Self { first, max, next: first }
    }

    /// 100 ms doubling to 5 s: what the relay and the Kafka loops use.
    pub const fn standard() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(5))
    }

    /// The delay to wait now; the one after it is twice as long (capped).
    pub fn next_delay(&mut self) -> Duration {
        let now = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        now
    }

    /// The delay before the `attempt`-th retry (1-based), without changing the state.
    pub fn delay_for(&self, attempt: u32) -> Duration {
        self.first.saturating_mul(1 << attempt.saturating_sub(1).min(20)).min(self.max)
    }

    /// After a success: the next failure waits `first` again.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// How a supervisor treats a failed child (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    pub backoff: Backoff,
    /// Failures are counted within this sliding window (and a give-up lasts this long).
    pub window: Duration,
    /// More failures than this within the window and the supervisor gives up for a window.
    pub max_restarts: u32,
}

/// What to do about one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Start the child again after `after`; this is failure number `attempt` in the window.
    Restart { attempt: u32, after: Duration },
    /// Too many failures: leave it down for `for_` (then one more try).
    GiveUp { failures: u32, for_: Duration },
}

/// One child's recent failures, kept by its supervisor.
#[derive(Debug, Clone, Default)]
pub struct Failures(Vec<Instant>);

impl RestartPolicy {
    /// Records a failure at `now` and decides.
    pub fn on_failure(&self, failures: &mut Failures, now: Instant) -> Verdict {
        failures.0.retain(|t| now.duration_since(*t) < self.window);
        failures.0.push(now);
        let count = failures.0.len() as u32;
        if count > self.max_restarts {
            failures.0.clear();
            return Verdict::GiveUp { failures: count, for_: self.window };
        }
        Verdict::Restart { attempt: count, after: self.backoff.delay_for(count) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let delays: Vec<u128> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
        assert_eq!(b.delay_for(1), Duration::from_millis(100));
        assert_eq!(b.delay_for(3), Duration::from_millis(400));
        assert_eq!(b.delay_for(40), Duration::from_millis(500));
    }

    #[test]
    fn a_child_that_keeps_failing_is_given_up_on_and_calm_starts_over() {
        let policy = RestartPolicy {
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)),
            window: Duration::from_secs(60),
            max_restarts: 3,
        };
        let mut f = Failures::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(
            policy.on_failure(&mut f, at(0)),
            Verdict::Restart { attempt: 1, after: Duration::from_millis(100) }
        );
        assert_eq!(
            policy.on_failure(&mut f, at(1)),
            Verdict::Restart { attempt: 2, after: Duration::from_millis(200) }
        );
        assert_eq!(
            policy.on_failure(&mut f, at(2)),
            Verdict::Restart { attempt: 3, after: Duration::from_millis(400) }
        );
        assert_eq!(policy.on_failure(&mut f, at(3)), Verdict::GiveUp { failures: 4, for_: Duration::from_secs(60) });
        // Long after: the count starts again.
        assert_eq!(
            policy.on_failure(&mut f, at(200)),
            Verdict::Restart { attempt: 1, after: Duration::from_millis(100) }
        );
        assert_eq!(
            policy.on_failure(&mut f, at(300)),
            Verdict::Restart { attempt: 1, after: Duration::from_millis(100) }
        );
    }
}
