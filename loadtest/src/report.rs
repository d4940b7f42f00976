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
    pub invariant: Option<InvariantCheck>,
}

impl Report {
    /// True when nothing was oversold and no 5xx or transport error was seen.
    pub fn ok(&self) -> bool {
        let five_xx = self.statuses.iter().any(|(s, n)| s.starts_with('5') && *n > 0);
        let invariant = self.invariant.as_ref().is_none_or(|i| i.holds && i.exhausted_exactly != Some(false));
        !five_xx && self.errors == 0 && invariant
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
        println!("result         {}", if self.ok() { "PASS" } else { "FAIL" });
    }
}
