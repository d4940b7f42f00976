//! The end-of-run report: figures for people, JSON for machines.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct InvariantCheck {
    pub total: u64,
    pub available: u64,
    pub held: u64,
    pub sold: u64,
    /// Held and sold seats summed from the orders table, when the database was reachable.
    pub db_held: Option<u64>,
    pub db_sold: Option<u64>,
    /// `held + sold <= total`, `available + held + sold == total`, API and database agree.
    pub holds: bool,
    /// Demand exceeded supply, so every seat must be taken.
    pub demand_exceeded_supply: bool,
    /// When demand exceeded supply: `held + sold == total`.
    pub exhausted_exactly: Option<bool>,
}

/// What `--waiting-room` checks after the run.
#[derive(Debug, Clone, Serialize)]
pub struct QueueCheck {
    pub joined: u64,
    pub admitted: u64,
    /// Admitted people form the front of the join order, and their admissions are in that order.
    pub in_join_order: bool,
    /// Orders made by someone never admitted, or after their admission ended: must be 0.
    pub booked_without_admission: u64,
    /// Orders refused with `403 queue_required` during the run.
    pub refused_queue_required: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub label: Option<String>,
    pub scenario: super::Scenario,
    pub url: String,
    pub concurrency: usize,
    pub duration_s: f64,
    pub requests: u64,
    pub requests_per_s: f64,
    /// Booking attempts that were granted (201), per second.
    pub granted_per_s: f64,
    pub latency: Latency,
    pub statuses: BTreeMap<String, u64>,
    pub errors: u64,
    /// CPU time of the measured phase, by party.
    pub cpu: crate::cpu::CpuUse,
    pub invariant: Option<InvariantCheck>,
    pub queue: Option<QueueCheck>,
}

impl Report {
    /// True when nothing was oversold, no 5xx or transport error was seen, and (with a waiting
    /// room) admissions kept the join order and nobody booked without one.
    pub fn ok(&self) -> bool {
        let five_xx = self.statuses.iter().any(|(s, n)| s.starts_with('5') && *n > 0);
        let invariant = self.invariant.as_ref().is_none_or(|i| i.holds && i.exhausted_exactly != Some(false));
        let queue = self.queue.as_ref().is_none_or(|q| q.in_join_order && q.booked_without_admission == 0);
        !five_xx && self.errors == 0 && invariant && queue
    }

    pub fn print(&self) {
        println!();
        if let Some(l) = &self.label {
            println!("== {l} ==");
        }
        println!("scenario       {:?} against {}", self.scenario, self.url);
        println!("connections    {}", self.concurrency);
        println!("requests       {} in {:.2} s", self.requests, self.duration_s);
        println!("throughput     {:.0} requests/s ({:.0} granted/s)", self.requests_per_s, self.granted_per_s);
        let l = &self.latency;
        println!(
            "latency        p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  mean {:.2} ms",
            l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms, l.mean_ms
        );
        let statuses: Vec<String> = self.statuses.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        println!("responses      {}", statuses.join(", "));
        if self.errors > 0 {
            println!("errors         {} (transport)", self.errors);
        }
        println!("cpu            {}", self.cpu.describe());
        if let Some(i) = &self.invariant {
            println!(
                "invariant      total {} = available {} + held {} + sold {}{}  -> {}",
                i.total,
                i.available,
                i.held,
                i.sold,
                match (i.db_held, i.db_sold) {
                    (Some(h), Some(s)) => format!(" (database: held {h}, sold {s})"),
                    _ => String::new(),
                },
                if i.holds { "OK" } else { "VIOLATED" }
            );
            if let Some(exact) = i.exhausted_exactly {
                println!(
                    "sold out       demand exceeded supply; held + sold == total: {}",
                    if exact { "yes" } else { "NO" }
                );
            }
        }
        if let Some(q) = &self.queue {
            println!(
                "waiting room   {} joined, {} admitted, in join order: {}; {} orders without an admission; {} refused (queue_required)",
                q.joined,
                q.admitted,
                if q.in_join_order { "yes" } else { "NO" },
                q.booked_without_admission,
                q.refused_queue_required
            );
        }
        println!("result         {}", if self.ok() { "PASS" } else { "FAIL" });
    }
}
