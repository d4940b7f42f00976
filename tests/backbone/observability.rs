//! The dashboards and alert rules against a real Prometheus scraping a real Boxoffice (on Kafka,
//! MongoDB's protocol and SMTP, so the bridge panels have data): every PromQL expression in
//! `grafana/dashboards/` must return data, every rule in `prometheus/rules/` must evaluate
//! without error, and every metric they name must be in `/metrics`.
//!
//! Prometheus comes from Debian's packages (`scripts/observability.sh` installs it); the binary
//! is `BOXOFFICE_TEST_PROMETHEUS` or `prometheus` on the PATH.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{Backbone, SERVERS, Services, common::TestApp};

/// A Prometheus server on loopback, killed when dropped.
struct Prometheus {
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

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn prometheus_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BOXOFFICE_TEST_PROMETHEUS").filter(|p| !p.is_empty()) {
        return Some(p.into());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("prometheus")).find(|p| p.is_file())
}

impl Prometheus {
    /// Scrapes `target` (host:port) every second and evaluates the repository's rules.
    async fn start(binary: &Path, target: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let rules = repo().join("prometheus/rules/*.yml");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: boxoffice\n    static_configs:\n      - targets: [\"{target}\"]\n",
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

    async fn api(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let res = reqwest::Client::new().get(format!("{}{path}", self.url)).query(query).send().await.unwrap();
        res.json().await.unwrap()
    }

    /// An instant query: Ok(number of series) or Err(Prometheus's error).
    async fn series(&self, expr: &str) -> Result<usize, String> {
        let body = self.api("/api/v1/query", &[("query", expr)]).await;
        if body["status"] != "success" {
            return Err(format!("{}: {}", body["errorType"], body["error"]));
        }
        Ok(body["data"]["result"].as_array().map_or(0, Vec::len))
    }
}

/// Every PromQL expression of a dashboard: panel targets (rows included) and query variables.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
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
fn grafana_expand(expr: &str) -> String {
    expr.replace("$__rate_interval", "30s")
        .replace("$__interval", "5s")
        .replace("$instance", ".+")
        .replace("$event_id", ".+")
}

/// Metric names in a PromQL expression that Boxoffice itself exports (not `up` and friends).
fn metric_names(expr: &str) -> BTreeSet<String> {
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

/// Bookings of every kind, so every panel has something to show: holds that are paid, declined,
/// cancelled and left to expire; sold-out rejections; free registrations; bad requests.
async fn booking_load(app: &TestApp, backbone: &Backbone) {
    let paid = app.event(1500, 6, 2).await;
    let free = app.event(0, 50, 600).await;
    let mut buyers = Vec::new();
    for i in 0..4 {
        buyers.push(app.signup(&backbone.user(&format!("obs{i}"))).await.1);
    }
    let mut orders = Vec::new();
    for (i, token) in buyers.iter().enumerate() {
        let (s, order) = app.order(token, paid, 1).await;
        assert_eq!(s, StatusCode::CREATED, "{order}");
        orders.push((token, order));
        let (s, body) = app.post("/api/v1/registrations", Some(token), json!({ "event_id": free })).await;
        assert_eq!(s, StatusCode::CREATED, "registration {i}: {body}");
    }
    let (s, body) = app.order(&buyers[0], paid, 3).await;
    assert_eq!(s, StatusCode::CONFLICT, "only two seats left: {body}");
    let (s, _) = app.pay(orders[0].0, &orders[0].1, "tok_ok").await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = app.pay(orders[1].0, &orders[1].1, "tok_ok").await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, declined) = app.pay(orders[2].0, &orders[2].1, "tok_declined").await;
    assert_eq!(declined["status"], "failed", "{s} {declined}");
    let cancel = format!("/api/v1/orders/{}/cancel", orders[1].1["id"].as_str().unwrap());
    let (s, body) = app.post(&cancel, Some(orders[1].0), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, _) = app.post("/api/v1/orders", Some(&buyers[3]), json!({ "event_id": "nope" })).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Orders 2 (declined) and 3 (never paid) expire after their two seconds.
    app.eventually(20, "two holds to expire", || async { app.counts(paid).await.1 == 0 }).await;
}

#[tokio::test]
async fn every_dashboard_query_and_alert_rule_works_on_a_real_prometheus() {
    let Some(services) = Services::get() else { return };
    let Some(binary) = prometheus_binary() else {
        assert!(std::env::var("CI").is_err(), "CI must run this test: scripts/observability.sh installs Prometheus");
        eprintln!("skipped: no prometheus binary (scripts/observability.sh installs it)");
        return;
    };
    let _shared = SERVERS.read().await;
    let backbone = Backbone::new(services).await;
    let app = backbone.app().await;
    let prometheus = Prometheus::start(&binary, app.base.trim_start_matches("http://")).await;
    booking_load(&app, &backbone).await;

    let mut queries = Vec::new();
    for file in ["booking-overview.json", "runtime-and-bridge.json"] {
        let text = std::fs::read_to_string(repo().join("grafana/dashboards").join(file)).unwrap();
        let dashboard: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let found = dashboard_queries(&dashboard);
        assert!(found.len() >= 10, "{file} has only {} queries", found.len());
        queries.extend(found.into_iter().map(|(what, expr)| (format!("{file} {what}"), expr)));
    }

    // Scrapes arrive every second and rates need two of them; lag is reported every 5 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let failures = loop {
        let mut failures = Vec::new();
        for (what, expr) in &queries {
            match prometheus.series(&grafana_expand(expr)).await {
                Ok(0) => failures.push(format!("{what}: no data for {expr}")),
                Ok(_) => {}
                Err(e) => failures.push(format!("{what}: error {e} for {expr}")),
            }
        }
        if failures.is_empty() || tokio::time::Instant::now() > deadline {
            break failures;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(failures.is_empty(), "dashboard queries without data:\n{}", failures.join("\n"));

    // The rules as Prometheus loaded them: every one evaluated, none in error.
    let body = prometheus.api("/api/v1/rules", &[]).await;
    let rules: Vec<Value> = body["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .collect();
    assert!(rules.len() >= 6, "the alert rules were loaded: {body}");
    for r in &rules {
        assert_eq!(r["health"], "ok", "rule {} does not evaluate: {r}", r["name"]);
    }
    let violations = rules.iter().find(|r| r["name"] == "BoxofficeInvariantViolation").unwrap();
    assert_eq!(violations["state"], "inactive", "no invariant violation under this load");

    // Every metric the dashboards and rules name is one Boxoffice exports.
    let exported: BTreeSet<String> = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect();
    let named: BTreeSet<String> = queries
        .iter()
        .map(|(_, e)| e.as_str())
        .chain(rules.iter().map(|r| r["query"].as_str().unwrap()))
        .flat_map(metric_names)
        .collect();
    assert!(named.len() >= 20, "the dashboards and rules name {} metrics: {named:?}", named.len());
    let unknown: Vec<&String> = named.difference(&exported).collect();
    assert!(unknown.is_empty(), "named in grafana/ or prometheus/ but not exported: {unknown:?}");
}

#[test]
fn metric_names_are_found_outside_label_values() {
    let names = metric_names(
        r#"sum(rate(boxoffice_orders_total{type="boxoffice_fake", outcome="placed"}[5m])) / process_open_fds"#,
    );
    assert_eq!(names.into_iter().collect::<Vec<_>>(), ["boxoffice_orders_total", "process_open_fds"]);
}
