//! CPU time spent during the measured phase, by whom: the server (`--server-pid`), its database
//! (`--database-process`, every process of that name: PostgreSQL runs one per connection) and
//! the harness itself. On a 2-core machine where all three share the cores, throughput alone
//! hides who paid for a request; CPU per granted hold does not.
//!
//! Read from `/proc/<pid>/stat` (user + system time of the whole process, all threads), so Linux
//! only; elsewhere the figures are absent, not wrong.

use std::path::Path;

/// The kernel reports process times in `USER_HZ` ticks, which Linux fixes at 100 for user space.
const TICKS_PER_SECOND: f64 = 100.0;

/// Whom to measure.
#[derive(Debug, Clone, Default)]
pub struct Probes {
    pub server_pids: Vec<u32>,
    pub database_process: Option<String>,
}

/// CPU seconds used so far by each party.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    server: Option<f64>,
    database: Option<f64>,
    harness: Option<f64>,
}

impl Probes {
    pub fn sample(&self) -> Sample {
        let server = if self.server_pids.is_empty() {
            None
        } else {
            self.server_pids.iter().map(|pid| process_seconds(format!("/proc/{pid}/stat"))).sum()
        };
        Sample {
            server,
            database: self.database_process.as_deref().map(named_seconds),
            harness: process_seconds("/proc/self/stat"),
        }
    }
}

/// CPU used between two samples.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CpuUse {
    /// Server processes' CPU seconds (user + system), when `--server-pid` was given.
    pub server_s: Option<f64>,
    /// Database processes' CPU seconds, when `--database-process` was given.
    pub database_s: Option<f64>,
    /// This harness's own CPU seconds (the load generator shares the machine).
    pub harness_s: Option<f64>,
    /// Server CPU per granted booking (per request when nothing was granted), in microseconds.
    pub server_us_per_granted: Option<f64>,
    pub database_us_per_granted: Option<f64>,
    /// The harness's CPU per request sent, in microseconds.
    pub harness_us_per_request: Option<f64>,
}

impl CpuUse {
    pub fn between(before: Sample, after: Sample, granted: u64, requests: u64) -> Self {
        let spent = |a: Option<f64>, b: Option<f64>| Some((b? - a?).max(0.0));
        let per = |s: Option<f64>, n: u64| s.filter(|_| n > 0).map(|s| s * 1e6 / n as f64);
        let (server, database, harness) = (
            spent(before.server, after.server),
            spent(before.database, after.database),
            spent(before.harness, after.harness),
        );
        let per_booking = if granted > 0 { granted } else { requests };
        Self {
            server_s: server,
            database_s: database,
            harness_s: harness,
            server_us_per_granted: per(server, per_booking),
            database_us_per_granted: per(database, per_booking),
            harness_us_per_request: per(harness, requests),
        }
    }
}

impl CpuUse {
    /// One line for people: `server 68 µs/hold (8.1 s) · database … · harness 11 µs/request`.
    pub fn describe(&self) -> String {
        let part = |who: &str, per: Option<f64>, unit: &str, total: Option<f64>| {
            Some(format!("{who} {:.0} µs/{unit} ({:.2} s)", per?, total?))
        };
        let parts: Vec<String> = [
            part("server", self.server_us_per_granted, "booking", self.server_s),
            part("database", self.database_us_per_granted, "booking", self.database_s),
            part("harness", self.harness_us_per_request, "request", self.harness_s),
        ]
        .into_iter()
        .flatten()
        .collect();
        if parts.is_empty() { "not measured (no /proc)".into() } else { parts.join(" · ") }
    }
}

/// User + system seconds of one process, from its `stat` file.
fn process_seconds(stat: impl AsRef<Path>) -> Option<f64> {
    let text = std::fs::read_to_string(stat).ok()?;
    stat_seconds(&text)
}

/// utime and stime (fields 14 and 15) of a `/proc/<pid>/stat` line.
fn stat_seconds(line: &str) -> Option<f64> {
    two_fields_seconds(line, 14)
}

/// The sum of fields `n` and `n + 1` (1-based, as `man 5 proc` counts them), in seconds. The
/// command name (field 2) is in parentheses and may hold spaces, so fields are counted after its
/// last `)`.
fn two_fields_seconds(line: &str, n: usize) -> Option<f64> {
    let rest = &line[line.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(n - 3);
    let a: u64 = fields.next()?.parse().ok()?;
    let b: u64 = fields.next()?.parse().ok()?;
    Some((a + b) as f64 / TICKS_PER_SECOND)
}

/// The sum over every running process named `name` (its `comm`), with the CPU of the children
/// they have reaped: PostgreSQL's backends come and go with their connections, and the postmaster
/// collects each one's time when it exits, so the sum keeps counting what they used.
fn named_seconds(name: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0.0 };
    dir.filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter(|e| std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim_end() == name))
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|line| Some(stat_seconds(&line)? + children_seconds(&line)?))
        .sum()
}

/// cutime and cstime (fields 16 and 17): the CPU of the process's exited, reaped children.
fn children_seconds(line: &str) -> Option<f64> {
    two_fields_seconds(line, 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name_even_with_spaces_in_it() {
        let line = "4242 (tokio (worker) 1) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 567 0 0 20 0 8 0 99 0 0";
        assert_eq!(stat_seconds(line), Some(18.01));
        assert_eq!(children_seconds(line), Some(0.0));
        let reaped = "7 (postgres) S 1 7 7 0 -1 4194560 900 0 0 0 10 5 300 45 20 0 1 0 99 0 0";
        assert_eq!(children_seconds(reaped), Some(3.45));
        assert_eq!(stat_seconds("garbage"), None);
    }

    #[test]
    fn this_process_has_used_some_cpu_and_per_hold_figures_divide_by_grants() {
        let burn: u64 = (0..20_000_000u64).fold(0, |a, b| a.wrapping_add(b * b));
        assert!(burn > 0);
        let me = process_seconds("/proc/self/stat").expect("Linux has /proc/self/stat");
        assert!(me > 0.0, "a test that computed for a while has used CPU time");
        let before = Sample { server: Some(1.0), database: None, harness: Some(2.0) };
        let after = Sample { server: Some(3.0), database: None, harness: Some(2.5) };
        let used = CpuUse::between(before, after, 20_000, 25_000);
        assert_eq!(used.server_us_per_granted, Some(100.0));
        assert_eq!(used.harness_us_per_request, Some(20.0));
        assert_eq!(used.database_us_per_granted, None, "not measured is absent, not zero");
    }
}
