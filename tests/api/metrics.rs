//! `GET /metrics`: Prometheus text with the booking, HTTP and bridge metrics after real traffic.

use reqwest::StatusCode;

use crate::common::TestApp;

#[tokio::test]
async fn metrics_show_the_traffic_the_slots_and_the_outcomes() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 3, 600).await;
    let (_, token) = app.signup("ann").await;
    let (s, order) = app.order(&token, event, 2).await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    let (s, _) = app.pay(&token, &order, "tok_ok").await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = app.order(&token, event, 2).await;
    assert_eq!(s, StatusCode::CONFLICT, "only one seat left");
    app.eventually(5, "the relay to publish", || async { !app.audit("order.confirmed").await.is_empty() }).await;

    let res = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = res.text().await.unwrap();
    let has = |needle: &str| text.lines().any(|l| !l.starts_with('#') && l.contains(needle));
    let id = event.to_string();
    for needle in [
        &format!(r#"boxoffice_event_slots{{event_id="{id}",state="sold"}} 2"#) as &str,
        &format!(r#"boxoffice_event_slots{{event_id="{id}",state="available"}} 1"#),
        &format!(r#"boxoffice_event_slots{{event_id="{id}",state="held"}} 0"#),
        r#"boxoffice_http_requests_total{route="/api/v1/orders",method="POST",status="201"}"#,
        r#"boxoffice_http_requests_total{route="/api/v1/orders",method="POST",status="409"}"#,
        r#"boxoffice_http_request_duration_seconds_bucket{route="/api/v1/orders",method="POST",le="0.005"}"#,
        r#"boxoffice_orders_total{outcome="placed"}"#,
        r#"boxoffice_orders_total{outcome="confirmed"}"#,
        r#"boxoffice_payments_total{outcome="succeeded"}"#,
        "boxoffice_reservations_rejected_total",
        r#"boxoffice_domain_events_published_total{type="inventory.changed"}"#,
        "boxoffice_outbox_publish_duration_seconds_count",
        "boxoffice_commit_batch_duration_seconds_count",
        r#"boxoffice_saga_duration_seconds_count{outcome="confirmed"}"#,
        r#"boxoffice_saga_duration_seconds_bucket{outcome="confirmed",le="1800"}"#,
        "boxoffice_inventory_queue_seconds_count",
        "process_resident_memory_bytes",
    ] {
        assert!(has(needle), "missing {needle} in:\n{text}");
    }
    // Registered at zero from the start (so alerts and dashboards have a series), and still zero.
    assert!(text.lines().any(|l| l == "boxoffice_invariant_violations_total 0"), "no violation was ever counted");
}

/// Issue 36: the gRPC series appeared only after each method's first call, so four dashboard
/// panels and any `absent()` alert saw nothing on a fresh server.
#[tokio::test]
async fn a_fresh_server_shows_every_grpc_method_at_zero() {
    let app = TestApp::spawn().await;
    let metrics = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    for method in boxoffice::grpc::METHODS {
        let calls = format!("boxoffice_grpc_requests_total{{method=\"{method}\",code=\"OK\"}}");
        assert!(metrics.lines().any(|l| l.starts_with(&calls)), "{calls} missing");
        let latency = format!("boxoffice_grpc_request_duration_seconds_count{{method=\"{method}\"}}");
        assert!(metrics.lines().any(|l| l.starts_with(&latency)), "{latency} missing");
    }
}
