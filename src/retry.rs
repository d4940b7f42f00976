//! The one home for "try again later": a capped doubling [`Backoff`] for loops that retry an
//! outside service (the outbox relay, Kafka topics and consumers), and the [`RestartPolicy`]
//! every supervisor applies to a failed actor (the inventory supervisor per event, the keeper of
//! each singleton actor).
//!
//! Background tasks that are not actors (the outbox relay, the Kafka consumers, the lease keeper,
//! the health probes) run under [`supervised`]: a panic restarts the task after the same backoff,
//! is logged with its message and counted, and never silently stops a pipeline.
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

use tokio::{sync::watch, task::JoinHandle, time::Instant};

use crate::instruments;

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

/// Every task run under [`supervised`], by the name its restarts are counted under (so each
/// series exists from the start, at zero).
pub const TASKS: &[&str] = &[
    "outbox_relay",
    "outbox_watch",
    "kafka_consumer",
    "kafka_lag",
    "kafka_health",
    "audit_health",
    "auth_maintenance",
    "lease_keeper",
    "cluster_accept",
    "payment_recovery",
];

/// A run of a task that lasted this long was healthy: its next panic starts the backoff over.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Runs a background task for as long as it wants to run (see the module docs). `start` makes
/// one run of it; a run that returns ends the task (it saw its stop signal), a run that panics is
/// logged with its panic message, counted in `boxoffice_task_restarts_total{task}`, and started
/// again after [`Backoff::standard`]. Aborting the returned handle aborts the running run too.
pub fn supervised<F, Fut>(task: &'static str, mut start: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut backoff = Backoff::standard();
        loop {
            let began = Instant::now();
            let run = tokio::spawn(start());
            // Dropped when this supervisor is aborted: the run must not outlive it.
            let _abort = AbortOnDrop(run.abort_handle());
            match run.await {
                Ok(()) => return,
                Err(e) if e.is_cancelled() => return,
                Err(e) => {
                    if began.elapsed() >= HEALTHY_RUN {
                        backoff.reset();
                    }
                    let delay = backoff.next_delay();
                    let panic = panic_message(e.into_panic());
                    tracing::error!(
                        task,
                        panic,
                        retry_ms = delay.as_millis() as u64,
                        "background task panicked; restarting it"
                    );
                    metrics::counter!(instruments::TASK_RESTARTS, "task" => task).increment(1);
                    tokio::time::sleep(delay).await;
                }
            }
        }
    })
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a panic said (`panic!` gives a `&str` or a `String`).
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload.downcast_ref::<&str>().map_or_else(|| "(no message)".to_owned(), |s| (*s).to_owned()),
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

    #[tokio::test]
    async fn a_supervised_task_that_panics_is_restarted_and_one_that_returns_ends() {
        use std::sync::{Arc, atomic::AtomicU32};
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let task = supervised("outbox_relay", move || {
            let run = counted.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if run < 3 {
                    panic!("run {run} fails");
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("ends after its third run").unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3, "two panics, two restarts, then a run that returned");
    }

    #[tokio::test]
    async fn aborting_a_supervised_task_aborts_its_run() {
        let (alive, mut ended) = tokio::sync::mpsc::channel::<()>(1);
        let task = supervised("outbox_watch", move || {
            let alive = alive.clone();
            async move {
                let _alive = alive;
                std::future::pending::<()>().await;
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        task.abort();
        let _ = task.await;
        // Every sender (the run's and the factory's) is gone once the run is dropped.
        let gone = tokio::time::timeout(Duration::from_secs(2), ended.recv()).await;
        assert_eq!(gone, Ok(None), "the run was dropped with its supervisor");
    }

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
