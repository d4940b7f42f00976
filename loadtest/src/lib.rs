//! `boxoffice loadtest`: the harness our users and we measure the on-sale rush with.
//!
//! Its own crate: an HTTP client of Boxoffice that the server library does not carry. What it
//! needs from Boxoffice itself (starting an embedded instance, the default admin, reading the
//! orders table for the invariant check) comes through the [`Host`] port, which the `boxoffice`
//! binary implements.
//!
//! It targets a running Boxoffice (`--url`) or starts one itself in embedded mode, prepares its
//! own data (a hot event of capacity C, V users with tokens), drives one scenario from N
//! concurrent connections for a duration or a request count, shows live progress, and ends with
//! throughput, latency percentiles, responses by status and an invariant check read back from
//! the API and, when it can reach it, the database. `--json` writes the same report for machines.
//!
//! With `--waiting-room` the hot event queues its buyers (see the README's waiting room): the users
//! join in a known order, the load then meets `403 queue_required` until each is admitted, and
//! the report adds the queue check (admissions in join order, no order without an admission).
//!
//! With `--grpc` the measured requests go to the gRPC API instead (one HTTP/2 channel per
//! simulated client), for a REST/gRPC comparison on the same hot path.
//!
//! Scenarios: `hold` (POST /orders only), `checkout` (order, then pay), `mixed` (mostly
//! browsing, some booking), `rush` (demand far above supply: few seats, many clients), and
//! `ceiling` (a trivial endpoint, see [`trivial_server`], to measure the machine and harness).

mod client;
mod cpu;
mod grpc;
mod report;
mod run;

use std::path::PathBuf;

pub use report::Report;
pub use run::{run, trivial_server};

/// What the harness needs from the Boxoffice it is built into.
#[async_trait::async_trait]
pub trait Host: Send + Sync {
    /// The admin login and password of a target given by `--url`, used when none is given on the
    /// command line.
    fn admin(&self) -> (String, String);
    /// Starts Boxoffice on a fresh temporary database (the embedded default).
    async fn start_embedded(&self) -> anyhow::Result<Embedded>;
    /// Held and sold seats of `event_id`, summed from the orders table at `database_url`.
    async fn stored_counts(&self, database_url: &str, event_id: uuid::Uuid) -> anyhow::Result<(u64, u64)>;
}

/// A Boxoffice the harness started itself.
pub struct Embedded {
    pub url: String,
    /// Its gRPC API (`http://ip:port`), when it serves one.
    pub grpc_url: Option<String>,
    pub database_url: String,
    /// Its admin's login and password.
    pub admin: (String, String),
    /// Shuts it down; resolves once it has stopped.
    pub stop: Box<dyn FnOnce() -> futures::future::BoxFuture<'static, ()> + Send>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    Hold,
    Checkout,
    Mixed,
    Rush,
    Ceiling,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LoadtestArgs {
    /// Boxoffice to load, e.g. http://127.0.0.1:8080. Several (repeated, or comma-separated) spread
    /// the connections over the nodes of a cluster, round-robin; the event is set up and checked
    /// through the first. Without it, an embedded instance is started on a temporary SQLite
    /// database.
    #[arg(long, value_delimiter = ',')]
    pub url: Vec<String>,
    #[arg(long, value_enum, default_value_t = Scenario::Hold)]
    pub scenario: Scenario,
    /// Concurrent connections (each runs requests back to back).
    #[arg(long, short = 'c', default_value_t = 64)]
    pub concurrency: usize,
    /// Seconds to run (ignored when --requests is given).
    #[arg(long, short = 'd', default_value_t = 10)]
    pub duration: u64,
    /// Total requests to send instead of a duration.
    #[arg(long, short = 'n')]
    pub requests: Option<u64>,
    /// Seats per order.
    #[arg(long, short = 'q', default_value_t = 1)]
    pub quantity: u32,
    /// Capacity of the hot event (default: 1000 for rush, 1,000,000 otherwise).
    #[arg(long)]
    pub capacity: Option<u32>,
    /// Users to create and spread the load over.
    #[arg(long, default_value_t = 50)]
    pub users: usize,
    /// Admin credentials on the target (defaults: the [admin] section of the configuration).
    #[arg(long)]
    pub admin_login: Option<String>,
    #[arg(long)]
    pub admin_password: Option<String>,
    /// Database of the target, for the invariant check against the orders table (defaults to
    /// the configured one when the harness starts Boxoffice itself).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// No progress bar (for logs and CI).
    #[arg(long)]
    pub quiet: bool,
    /// A label for the report (e.g. "sqlite c=64").
    #[arg(long)]
    pub label: Option<String>,
    /// The hot event gets a waiting room: every user joins its queue (one after another, so the
    /// join order is known) before the load starts, and books only once admitted. The report
    /// checks that admissions followed the join order and that nobody booked without one.
    #[arg(long)]
    pub waiting_room: bool,
    /// The waiting room's admission rate (people per second), with --waiting-room.
    #[arg(long, default_value_t = 10)]
    pub admit_per_second: u32,
    /// Send the measured requests over gRPC (PlaceOrder, Pay, GetEvent, ListEvents) instead of
    /// REST; set-up and checks stay on REST. Statuses are reported as REST's for the same outcome.
    #[arg(long)]
    pub grpc: bool,
    /// The target's gRPC API, e.g. http://127.0.0.1:50051 (with --grpc and --url; the embedded
    /// instance's own otherwise).
    #[arg(long)]
    pub grpc_url: Option<String>,
    /// Processes whose CPU time is the server's (repeated or comma-separated): the report gives
    /// server CPU per granted booking for the measured phase.
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// The database's process name (e.g. `postgres`): every process of that name is counted as
    /// the database's CPU time, reported per granted booking beside the server's.
    #[arg(long)]
    pub database_process: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::LoadtestArgs;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: LoadtestArgs,
    }

    #[test]
    fn several_urls_are_taken_repeated_or_comma_separated() {
        let urls = |argv: &[&str]| Cli::parse_from([&["loadtest"], argv].concat()).args.url;
        assert_eq!(urls(&[]), Vec::<String>::new());
        assert_eq!(urls(&["--url", "http://a:1"]), ["http://a:1"]);
        assert_eq!(urls(&["--url", "http://a:1", "--url", "http://b:2"]), ["http://a:1", "http://b:2"]);
        assert_eq!(urls(&["--url", "http://a:1,http://b:2,http://c:3"]), ["http://a:1", "http://b:2", "http://c:3"]);
    }
}
