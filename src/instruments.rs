//! Prometheus metrics (the instruments), exported at `GET /metrics` (metrics-exporter-prometheus).
//!
//! Every metric name lives here, so the dashboards in `grafana/` and the rules in `prometheus/`
//! have one list to agree with. Names follow Prometheus conventions: base units, `_total` for
//! counters, `_seconds` for durations.
//!
//! Label cardinality is bounded: HTTP routes are the matched route templates (never raw paths),
//! and per-event slot gauges exist only for events whose inventory actor is running (spawned on
//! demand, removed again when it passivates), so the series count follows the active events.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "boxoffice_http_requests_total";
pub const HTTP_DURATION: &str = "boxoffice_http_request_duration_seconds";
pub const GRPC_REQUESTS: &str = "boxoffice_grpc_requests_total";
pub const GRPC_DURATION: &str = "boxoffice_grpc_request_duration_seconds";
pub const DOMAIN_EVENTS: &str = "boxoffice_domain_events_published_total";
pub const ORDERS: &str = "boxoffice_orders_total";
pub const SOLD_OUT: &str = "boxoffice_reservations_rejected_total";
pub const INVARIANT_VIOLATIONS: &str = "boxoffice_invariant_violations_total";
pub const EVENT_SLOTS: &str = "boxoffice_event_slots";
pub const HOLDS_ACTIVE: &str = "boxoffice_holds_active";
pub const QUEUE_WAITING: &str = "boxoffice_queue_waiting";
pub const QUEUE_JOINS: &str = "boxoffice_queue_joins_total";
pub const QUEUE_ADMISSIONS: &str = "boxoffice_queue_admissions_total";
pub const WAITLIST_WAITING: &str = "boxoffice_waitlist_waiting";
pub const WAITLIST_OFFERS: &str = "boxoffice_waitlist_offers_total";
pub const WAITLIST_TAKEN: &str = "boxoffice_waitlist_offers_taken_total";
pub const SAGA_DURATION: &str = "boxoffice_saga_duration_seconds";
pub const PAYMENTS: &str = "boxoffice_payments_total";
pub const ACTOR_RESTARTS: &str = "boxoffice_actor_restarts_total";
pub const TASK_RESTARTS: &str = "boxoffice_task_restarts_total";
pub const ACTOR_CALL_TIMEOUTS: &str = "boxoffice_actor_call_timeouts_total";
pub const INVENTORY_QUEUE: &str = "boxoffice_inventory_queue_seconds";
pub const OUTBOX_PENDING: &str = "boxoffice_outbox_pending";
pub const OUTBOX_LEADER: &str = "boxoffice_outbox_relay_leader";
pub const OUTBOX_LOCK_LOST: &str = "boxoffice_outbox_relay_lock_lost_total";
pub const PUBLISH_DURATION: &str = "boxoffice_outbox_publish_duration_seconds";
pub const PUBLISH_ERRORS: &str = "boxoffice_outbox_publish_errors_total";
pub const OUTBOX_FROM_FEED: &str = "boxoffice_outbox_rows_from_feed_total";
pub const CONSUMER_LAG: &str = "boxoffice_consumer_lag_messages";
pub const EMAILS: &str = "boxoffice_emails_total";
pub const AUDIT_WRITES: &str = "boxoffice_audit_writes_total";
pub const DLQ_MESSAGES: &str = "boxoffice_dlq_messages_total";
pub const COMMIT_DURATION: &str = "boxoffice_commit_batch_duration_seconds";
pub const REFUSALS: &str = "boxoffice_requests_refused_total";
pub const FENCED_COMMITS: &str = "boxoffice_cluster_fenced_commits_total";
pub const CLUSTER_MEMBERS_UP: &str = "boxoffice_cluster_members_up";
pub const CLUSTER_LEASES: &str = "boxoffice_cluster_leases_held";
pub const CLUSTER_TAKEOVERS: &str = "boxoffice_cluster_takeovers_total";
pub const CLUSTER_MEMBERS: &str = "boxoffice_cluster_members";
pub const CLUSTER_FORWARDED: &str = "boxoffice_cluster_forwarded_calls_total";
pub const CLUSTER_FORWARD_DURATION: &str = "boxoffice_cluster_forward_duration_seconds";
pub const CLUSTER_REFUSED_SESSIONS: &str = "boxoffice_cluster_refused_sessions_total";
pub const CLUSTER_BAD_MESSAGES: &str = "boxoffice_cluster_bad_messages_total";

/// Why a request was refused by a protective rule, the `reason` label of [`REFUSALS`] (one series
/// each, registered at zero): the per-person seat limit, a locked account, the per-address auth
/// limit, a revoked or dead token.
pub mod refusal {
    pub const PERSON_LIMIT: &str = "person_limit";
    pub const LOGIN_LOCKED: &str = "login_locked";
    pub const AUTH_RATE: &str = "auth_rate_limited";
    pub const TOKEN_REVOKED: &str = "token_revoked";
    pub const ACCOUNT_GONE: &str = "account_gone";
    /// An order or registration without an admission from the event's waiting room.
    pub const QUEUE_REQUIRED: &str = "queue_required";
    /// A connection or request over `http.max_connections` (see `http::serve`).
    pub const OVERLOADED: &str = "overloaded";
    /// A stream over `limits.streams_per_address`.
    pub const STREAMS: &str = "streams_per_address";
    pub const ALL: &[&str] =
        &[PERSON_LIMIT, LOGIN_LOCKED, AUTH_RATE, TOKEN_REVOKED, ACCOUNT_GONE, QUEUE_REQUIRED, OVERLOADED, STREAMS];
}

/// Counts one refusal (see [`refusal`]).
pub fn refused(reason: &'static str) {
    metrics::counter!(REFUSALS, "reason" => reason).increment(1);
}

/// Sub-millisecond to ten seconds: a hold answers in about a millisecond when idle, and a
/// payment can take seconds.
const BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A paid order's saga lasts as long as its buyer takes to pay: seconds to the hold's end.
const SAGA_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once (several apps in one test process share it).
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .expect("the bucket list is not empty")
                // A full-name matcher wins over the suffix one.
                .set_buckets_for_metric(Matcher::Full(SAGA_DURATION.into()), SAGA_BUCKETS)
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            metrics_process::Collector::default().describe();
            describe();
            register_known();
            handle
        })
        .clone()
}

/// The text exposition, with fresh process metrics.
pub fn render() -> String {
    metrics_process::Collector::default().collect();
    install().render()
}

/// Counters whose label values are known up front start at zero: a rate over them is 0 rather
/// than no data, and an alert on "any increase" works from the first scrape.
fn register_known() {
    use metrics::counter;
    for name in [
        SOLD_OUT,
        INVARIANT_VIOLATIONS,
        ACTOR_CALL_TIMEOUTS,
        PUBLISH_ERRORS,
        QUEUE_JOINS,
        QUEUE_ADMISSIONS,
        WAITLIST_OFFERS,
        WAITLIST_TAKEN,
        OUTBOX_LOCK_LOST,
    ] {
        counter!(name).increment(0);
    }
    for kind in ["inventory", "saga", "payment", "notifier", "auditor"] {
        counter!(ACTOR_RESTARTS, "kind" => kind).increment(0);
    }
    for task in crate::retry::TASKS {
        counter!(TASK_RESTARTS, "task" => *task).increment(0);
    }
    for result in ["sent", "failed", "duplicate"] {
        counter!(EMAILS, "result" => result).increment(0);
    }
    for result in ["ok", "failed"] {
        counter!(AUDIT_WRITES, "result" => result).increment(0);
    }
    for reason in refusal::ALL {
        counter!(REFUSALS, "reason" => *reason).increment(0);
    }
    crate::bridge::outbox::register_counters();
    counter!(OUTBOX_FROM_FEED).increment(0);
    // Cluster mode's too, so a first takeover or fenced commit is an increase from zero (and a
    // single node shows a cluster of one: no other members, no leases).
    for name in [CLUSTER_TAKEOVERS, FENCED_COMMITS, CLUSTER_REFUSED_SESSIONS, CLUSTER_BAD_MESSAGES] {
        counter!(name).increment(0);
    }
    for outcome in ["ok", "redirected", "timeout", "unavailable"] {
        counter!(CLUSTER_FORWARDED, "outcome" => outcome).increment(0);
    }
    for name in [CLUSTER_MEMBERS, CLUSTER_MEMBERS_UP, CLUSTER_LEASES] {
        metrics::gauge!(name).set(0.0);
    }
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(HTTP_REQUESTS, "HTTP requests by matched route, method and status");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "HTTP request latency by matched route");
    describe_counter!(GRPC_REQUESTS, "gRPC calls by method (Service/Method) and status code");
    describe_histogram!(GRPC_DURATION, Unit::Seconds, "gRPC call latency by method (Watch: until its first message)");
    describe_counter!(DOMAIN_EVENTS, "Domain events published by the outbox relay, by type");
    describe_counter!(ORDERS, "Orders by outcome: placed, confirmed, cancelled, expired");
    describe_counter!(SOLD_OUT, "Reservations rejected because the event was sold out");
    describe_counter!(INVARIANT_VIOLATIONS, "Inventory invariant violations (must stay 0)");
    describe_gauge!(EVENT_SLOTS, "Slots of each active event by state: available, held, sold");
    describe_gauge!(HOLDS_ACTIVE, "Unpaid holds currently held, over active events");
    describe_gauge!(QUEUE_WAITING, "People waiting in each active event's waiting room");
    describe_counter!(QUEUE_JOINS, "Places taken in waiting rooms");
    describe_counter!(QUEUE_ADMISSIONS, "People let through waiting rooms");
    describe_gauge!(WAITLIST_WAITING, "People on each active event's waiting list");
    describe_counter!(WAITLIST_OFFERS, "Returned seats offered to people on waiting lists");
    describe_counter!(WAITLIST_TAKEN, "Waiting-list offers taken (a hold paid, or a registration made)");
    describe_histogram!(SAGA_DURATION, Unit::Seconds, "Paid order time from hold to confirmed, cancelled or expired");
    describe_counter!(PAYMENTS, "Payments by outcome: succeeded, failed");
    describe_counter!(ACTOR_RESTARTS, "Actor restarts by kind");
    describe_counter!(TASK_RESTARTS, "Background tasks restarted after a panic, by task");
    describe_counter!(ACTOR_CALL_TIMEOUTS, "Calls into actors that timed out (answered 503)");
    describe_histogram!(INVENTORY_QUEUE, Unit::Seconds, "Time a reservation waited in its event actor's mailbox");
    describe_gauge!(OUTBOX_PENDING, "Outbox rows not yet published");
    describe_gauge!(OUTBOX_LEADER, "1 on the node that publishes the outbox (one per database), else 0");
    describe_counter!(OUTBOX_LOCK_LOST, "Times this node lost the outbox relay lock while it published");
    describe_histogram!(PUBLISH_DURATION, Unit::Seconds, "Time to publish one outbox batch");
    describe_counter!(PUBLISH_ERRORS, "Outbox batches that failed to publish");
    describe_counter!(OUTBOX_FROM_FEED, "Outbox rows published as the committer handed them over, without a read");
    describe_gauge!(CONSUMER_LAG, "Messages behind the end of each partition, by group and topic");
    describe_counter!(EMAILS, "E-mails by result: sent, failed, duplicate");
    describe_counter!(AUDIT_WRITES, "Audit log batch writes by result: ok, failed");
    describe_counter!(DLQ_MESSAGES, "Messages sent to a dead-letter topic, by topic");
    describe_histogram!(COMMIT_DURATION, Unit::Seconds, "Group commit batch duration");
    describe_gauge!(
        CLUSTER_MEMBERS,
        "Other cluster nodes this node knows of (its seeds and every peer seen), up or not"
    );
    describe_gauge!(CLUSTER_MEMBERS_UP, "Other cluster nodes that are connected and answer pings");
    describe_gauge!(CLUSTER_LEASES, "Event leases this node holds (the events it owns)");
    describe_counter!(CLUSTER_TAKEOVERS, "Event leases this node took (a first owner or a takeover)");
    describe_counter!(CLUSTER_FORWARDED, "Calls forwarded to the node that owns the event, by outcome");
    describe_histogram!(CLUSTER_FORWARD_DURATION, Unit::Seconds, "Round trip of a forwarded call");
    describe_counter!(
        CLUSTER_REFUSED_SESSIONS,
        "Cluster connections closed before they were ready (wrong cookie, stalled handshake, garbage)"
    );
    describe_counter!(CLUSTER_BAD_MESSAGES, "Cluster messages that could not be read (answered with an error)");
    describe_counter!(
        FENCED_COMMITS,
        "Writes refused because their event's lease had moved to a newer epoch (a stale owner)"
    );
    describe_counter!(REFUSALS, "Requests refused by a protective rule, by reason");
}
