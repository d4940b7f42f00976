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

/// A request on a connection of its own, written and read raw: the whole answer until close.
async fn raw_get(addr: &str, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: boxoffice\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// Before, 20,050 open streams took every descriptor and `/healthz` stopped answering (issue 36).
#[tokio::test]
async fn past_max_connections_requests_get_a_fast_503_while_health_still_answers_and_past_the_reserve_a_bare_503() {
    let app = TestApp::spawn_with(|c| c.http.max_connections = 5).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    // Five idle connections fill the cap (the test client's own pooled one may be among them).
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = raw_get(&addr, "/api/v1/events").await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.to_ascii_lowercase().contains("retry-after:"), "{refused}");
    assert!(refused.contains("\"code\":\"overloaded\""), "{refused}");
    let health = raw_get(&addr, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "the reserve serves health: {health}");

    // The reserve full too: the next connection is told 503 and closed, without a request.
    for _ in 0..boxoffice::http::serve::RESERVED_CONNECTIONS {
        held.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bare = raw_get(&addr, "/healthz").await;
    assert!(bare.starts_with("HTTP/1.1 503"), "{bare}");
    assert!(bare.contains("\"overloaded\""), "{bare}");

    // Connections closed, room again.
    drop(held);
    let mut back = String::new();
    for _ in 0..50 {
        back = raw_get(&addr, "/api/v1/events").await;
        if back.starts_with("HTTP/1.1 200") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back.starts_with("HTTP/1.1 200"), "{back}");
}

#[tokio::test]
async fn live_streams_are_capped_per_client_address_with_429_and_a_closed_one_frees_its_slot() {
    let app = TestApp::spawn_with(|c| {
        c.limits.streams_per_address = 3;
        c.limits.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let event = app.event(1000, 20, 600).await;
    let url = format!("{}/api/v1/events/{event}/availability/stream", app.base);
    let open = async |client: &str| {
        // A client of its own per stream: each holds its connection.
        let c = reqwest::Client::new();
        c.get(&url).header("x-forwarded-for", client).send().await.unwrap()
    };
    let mut streams = Vec::new();
    for _ in 0..3 {
        let s = open("198.51.100.1").await;
        assert_eq!(s.status(), StatusCode::OK);
        streams.push(s);
    }
    let over = open("198.51.100.1").await;
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(over.headers().contains_key("retry-after"));
    let body: serde_json::Value = over.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert_eq!(open("198.51.100.2").await.status(), StatusCode::OK, "another address has its own");

    // One closed (the server sees it at its next write at the latest, a 15 s keep-alive).
    streams.pop();
    let mut status = StatusCode::TOO_MANY_REQUESTS;
    for _ in 0..100 {
        let again = open("198.51.100.1").await;
        status = again.status();
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(status, StatusCode::OK, "the closed stream's slot came back");
}
