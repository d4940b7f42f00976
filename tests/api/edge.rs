//! The HTTP edge: body and header limits, headers every answer carries, the metrics token.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::TestApp;

#[tokio::test]
async fn a_body_over_the_limit_is_413_payload_too_large_not_malformed_json() {
    let app = TestApp::spawn().await;
    let huge = format!("{{\"login\": \"{}\", \"password\": \"x\"}}", "a".repeat(10 * 1024 * 1024));
    let res = app
        .client
        .post(format!("{}/api/v1/auth/login", app.base))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_disconnected_after_the_header_timeout() {
    let app = TestApp::spawn_with(|c| c.http.header_timeout_ms = 500).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: boxoffice\r\n").await.unwrap();
    let started = Instant::now();
    // Never finish the head: the server must close the connection, not wait forever.
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the connection was still open after 5 s");
    assert!(started.elapsed() < Duration::from_secs(3), "closed after {:?}", started.elapsed());
    // A client that sends its head in time is served as usual.
    assert_eq!(app.get("/healthz", None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn every_answer_says_nosniff_and_token_answers_say_no_store() {
    let app = TestApp::spawn().await;
    app.signup("ann").await;
    let get = |path: &'static str| app.client.get(format!("{}{path}", app.base)).send();
    for res in [get("/healthz").await.unwrap(), get("/api/v1/nowhere").await.unwrap(), get("/").await.unwrap()] {
        let url = res.url().to_string();
        assert_eq!(res.headers().get("x-content-type-options").map(|v| v.to_str().unwrap()), Some("nosniff"), "{url}");
    }
    let login = app
        .client
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"login": "ann", "password": "password-123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    assert_eq!(login.headers().get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store"));
    let pair: serde_json::Value = login.json().await.unwrap();
    let refresh = app
        .client
        .post(format!("{}/api/v1/auth/refresh", app.base))
        .json(&json!({"refresh_token": pair["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), StatusCode::OK);
    assert_eq!(refresh.headers().get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store"));
}

#[tokio::test]
async fn with_a_metrics_token_set_metrics_need_it_as_a_bearer() {
    let app = TestApp::spawn_with(|c| c.http.metrics_token = "scrape-token-0123456789".into()).await;
    let metrics = |token: Option<&'static str>| {
        let mut req = app.client.get(format!("{}/metrics", app.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    for wrong in [None, Some("scrape-token-012345678"), Some("nope")] {
        let res = metrics(wrong).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{wrong:?}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    let res = metrics(Some("scrape-token-0123456789")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("boxoffice_http_requests_total"));
    // Without a token configured, /metrics stays open (the default; see the metrics suite).
    let open = TestApp::spawn().await;
    assert_eq!(open.client.get(format!("{}/metrics", open.base)).send().await.unwrap().status(), StatusCode::OK);
}
