//! A real Prometheus for the tests that check dashboards and alert rules (Debian's package;
//! `scripts/observability.sh` installs it), and the dashboard parsing they share.

// Only the backbone and cluster suites use it; the others include `common` too.
#![allow(dead_code)]

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use reqwest::StatusCode;
use serde_json::Value;

/// A Prometheus server on loopback, killed when dropped.
pub struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn prometheus_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BOXOFFICE_TEST_PROMETHEUS").filter(|p| !p.is_empty()) {
        return Some(p.into());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("prometheus")).find(|p| p.is_file())
}

impl Prometheus {
    /// Scrapes `targets` (host:port) every second and evaluates the repository's rules.
    pub async fn start(binary: &Path, targets: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let rules = repo().join("prometheus/rules/*.yml");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: boxoffice\n    static_configs:\n      - targets: {targets:?}\n",
            rules.display()
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        let me = Self { child, url: format!("http://127.0.0.1:{port}"), _dir: dir };
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(r) = client.get(format!("{}/-/ready", me.url)).send().await
                && r.status() == StatusCode::OK
            {
                return me;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = std::fs::read_to_string(me._dir.path().join("prometheus.log")).unwrap_or_default();
        panic!("prometheus did not become ready:\n{log}");
    }

    pub async fn api(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let res = reqwest::Client::new().get(format!("{}{path}", self.url)).query(query).send().await.unwrap();
        res.json().await.unwrap()
    }

    /// An alert rule's state as Prometheus evaluates it: `inactive`, `pending` or `firing`.
    pub async fn rule_state(&self, name: &str) -> Option<String> {
        let body = self.api("/api/v1/rules", &[]).await;
        let groups = body["data"]["groups"].as_array()?;
        let rule =
            groups.iter().flat_map(|g| g["rules"].as_array().into_iter().flatten()).find(|r| r["name"] == name)?;
        rule["state"].as_str().map(str::to_owned)
    }

    /// Waits up to `within` for the rule to reach one of `states`; answers the state it ended in.
    pub async fn wait_rule(&self, name: &str, states: &[&str], within: Duration) -> Option<String> {
        let until = tokio::time::Instant::now() + within;
        loop {
            let state = self.rule_state(name).await;
            if state.as_deref().is_some_and(|s| states.contains(&s)) || tokio::time::Instant::now() > until {
                return state;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits up to `within` for every expression to return data; answers those still without.
    pub async fn wait_data(&self, queries: &[(String, String)], within: Duration) -> Vec<String> {
        let until = tokio::time::Instant::now() + within;
        loop {
            let mut failures = Vec::new();
            for (what, expr) in queries {
                match self.series(&grafana_expand(expr)).await {
                    Ok(0) => failures.push(format!("{what}: no data for {expr}")),
                    Ok(_) => {}
                    Err(e) => failures.push(format!("{what}: error {e} for {expr}")),
                }
            }
            if failures.is_empty() || tokio::time::Instant::now() > until {
                return failures;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// An instant query: Ok(number of series) or Err(Prometheus's error).
    pub async fn series(&self, expr: &str) -> Result<usize, String> {
        let body = self.api("/api/v1/query", &[("query", expr)]).await;
        if body["status"] != "success" {
            return Err(format!("{}: {}", body["errorType"], body["error"]));
        }
        Ok(body["data"]["result"].as_array().map_or(0, Vec::len))
    }
}

/// Every PromQL expression of a dashboard: panel targets (rows included) and query variables.
pub fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut panels: Vec<&Value> = dashboard["panels"].as_array().unwrap().iter().collect();
    while let Some(p) = panels.pop() {
        panels.extend(p["panels"].as_array().into_iter().flatten());
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("every target has a PromQL expr");
            out.push((format!("panel {:?}", p["title"].as_str().unwrap_or_default()), expr.to_string()));
        }
    }
    for v in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        let q = v["query"]["query"].as_str().or(v["query"].as_str()).unwrap_or_default();
        // label_values(metric, label) is Grafana's; the series query behind it is the metric.
        if let Some(args) = q.strip_prefix("label_values(").and_then(|a| a.strip_suffix(')')) {
            let (metric, label) = args.split_once(',').unwrap();
            out.push((format!("variable {:?}", v["name"]), format!("count by ({}) ({metric})", label.trim())));
        }
    }
    out
}

/// What Grafana substitutes before sending a query (all values selected).
pub fn grafana_expand(expr: &str) -> String {
    expr.replace("$__rate_interval", "30s")
        .replace("$__interval", "5s")
        .replace("$instance", ".+")
        .replace("$event_id", ".+")
}

/// Metric names in a PromQL expression that Boxoffice itself exports (not `up` and friends).
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut in_quotes = false;
    let mut token = String::new();
    for c in expr.chars().chain([' ']) {
        if c == '"' {
            in_quotes = !in_quotes;
        }
        if !in_quotes && (c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            token.push(c);
            continue;
        }
        if token.starts_with("boxoffice_") || token.starts_with("process_") {
            names.insert(std::mem::take(&mut token));
        }
        token.clear();
    }
    names
}
