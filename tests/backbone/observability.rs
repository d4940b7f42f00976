//! The dashboards and alert rules against a real Prometheus scraping a real Boxoffice (on Kafka,
//! MongoDB's protocol and SMTP, so the bridge panels have data): every PromQL expression in
//! `grafana/dashboards/` must return data, every rule in `prometheus/rules/` must evaluate
//! without error, and every metric they name must be in `/metrics`.
//!
//! Prometheus comes from Debian's packages (`scripts/observability.sh` installs it); the binary
//! is `BOXOFFICE_TEST_PROMETHEUS` or `prometheus` on the PATH.

use std::{collections::BTreeSet, time::Duration};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    Backbone, SERVERS, Services,
    common::{
        TestApp,
        prometheus::{Prometheus, dashboard_queries, metric_names, prometheus_binary, repo},
    },
};

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
    // The gRPC API's panels: a read that succeeds and one that is refused.
    use boxoffice_proto::v1::{GetEventRequest, catalog_service_client::CatalogServiceClient};
    let channel = tonic::transport::Channel::from_shared(app.grpc.clone()).unwrap().connect().await.unwrap();
    let mut catalog = CatalogServiceClient::new(channel);
    catalog.get_event(GetEventRequest { id: paid.to_string() }).await.expect("the event over gRPC");
    let refused = catalog.get_event(GetEventRequest { id: uuid::Uuid::now_v7().to_string() }).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound);
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
    let prometheus = Prometheus::start(&binary, &[app.base.trim_start_matches("http://")]).await;
    booking_load(&app, &backbone).await;

    let mut queries = Vec::new();
    for file in ["booking-overview.json", "runtime-and-bridge.json"] {
        let text = std::fs::read_to_string(repo().join("grafana/dashboards").join(file)).unwrap();
        let dashboard: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let found = dashboard_queries(&dashboard);
        assert!(found.len() >= 10, "{file} has only {} queries", found.len());
        queries.extend(found.into_iter().map(|(what, expr)| (format!("{file} {what}"), expr)));
    }

    // Scrapes arrive every second and rates need two of them; lag is reported every 5 s. The
    // Cluster row gets its data from three nodes, in tests/cluster.rs.
    let single: Vec<_> = queries.iter().filter(|(_, e)| !e.contains("boxoffice_cluster_")).cloned().collect();
    assert!(single.len() + 6 <= queries.len(), "the Cluster row is in the runtime dashboard");
    let failures = prometheus.wait_data(&single, Duration::from_secs(60)).await;
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
    // (The Cluster row's metrics: tests/cluster.rs, where three nodes forward calls.)
    let named: BTreeSet<String> = single
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
