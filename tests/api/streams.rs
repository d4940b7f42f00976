//! Live streams: the WebSocket log of every published domain event and the SSE availability
//! streams of one event and of several.

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

use crate::common::TestApp;

/// Reads SSE frames from a streaming body until `n` `availability` events were seen.
async fn availability_events(res: reqwest::Response, n: usize) -> Vec<Value> {
    sse_events(res, "availability", |seen| seen.len() >= n).await
}

/// The data of each `kind` event of an SSE body, read until `done` says enough (15 s at most).
pub async fn sse_events(res: reqwest::Response, kind: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut body = res.bytes_stream();
    let mut buf = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    let wanted = format!("event: {kind}");
    while !done(&out) {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .unwrap_or_else(|_| panic!("{kind} events in time; seen {out:?}"))
            .expect("stream still open")
            .unwrap();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            if frame.lines().any(|l| l == wanted) {
                let data = frame.lines().find_map(|l| l.strip_prefix("data: ")).expect("a data line");
                out.push(serde_json::from_str(data).unwrap());
            }
        }
    }
    out
}

#[tokio::test]
async fn the_availability_stream_sends_the_counts_then_every_change() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 10, 600).await;
    let res = app.client.get(format!("{}/api/v1/events/{event}/availability/stream", app.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let (_, token) = app.signup("ann").await;
    let (s, order) = app.order(&token, event, 2).await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    let (s, _) = app
        .post(&format!("/api/v1/orders/{}/cancel", order["id"].as_str().unwrap()), Some(&token), serde_json::json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let seen = availability_events(res, 3).await;
    let counts: Vec<_> =
        seen.iter().map(|v| (v["available"].as_u64(), v["held"].as_u64(), v["sold"].as_u64())).collect();
    assert_eq!(counts, vec![(Some(10), Some(0), Some(0)), (Some(8), Some(2), Some(0)), (Some(10), Some(0), Some(0))]);
    assert!(seen.iter().all(|v| v["eventId"] == event.to_string() && v["total"] == 10));
}

#[tokio::test]
async fn the_availability_stream_of_an_unknown_event_is_404() {
    let app = TestApp::spawn().await;
    let (s, body) = app.get(&format!("/api/v1/events/{}/availability/stream", uuid::Uuid::new_v4()), None).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{body}");
}

#[tokio::test]
async fn one_stream_follows_several_events_and_only_those() {
    let app = TestApp::spawn().await;
    let (a, b, other) = (app.event(1000, 5, 600).await, app.event(0, 3, 600).await, app.event(1000, 4, 600).await);
    let url = format!("{}/api/v1/availability/stream?events={a},{b},{a}", app.base);
    let res = app.client.get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (_, token) = app.signup("ann").await;
    // A change to an event not asked for must not appear between the ones that were.
    assert_eq!(app.order(&token, other, 1).await.0, StatusCode::CREATED);
    assert_eq!(app.order(&token, a, 2).await.0, StatusCode::CREATED);
    let (s, body) = app.post("/api/v1/registrations", Some(&token), serde_json::json!({ "event_id": b })).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let seen = availability_events(res, 4).await;
    let got: Vec<_> =
        seen.iter().map(|v| (v["eventId"].as_str().unwrap().to_string(), v["available"].as_u64().unwrap())).collect();
    // Each event's counts first (a repeated id streams once), then the two changes in order.
    let (a, b) = (a.to_string(), b.to_string());
    assert_eq!(got, vec![(a.clone(), 5), (b.clone(), 3), (a, 3), (b, 2)]);
}

#[tokio::test]
async fn the_multi_event_stream_rejects_bad_unknown_and_missing_ids() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 5, 600).await;
    for (query, status, code) in [
        (format!("?events={event},nope"), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (format!("?events={event},{}", uuid::Uuid::new_v4()), StatusCode::NOT_FOUND, "not_found"),
        (String::new(), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
    ] {
        let (s, body) = app.get(&format!("/api/v1/availability/stream{query}"), None).await;
        assert_eq!((s, body["error"]["code"].as_str()), (status, Some(code)), "{query}: {body}");
    }
}

fn ws_url(app: &TestApp, query: &str) -> String {
    format!("{}/ws/logs{query}", app.base.replace("http://", "ws://"))
}

#[tokio::test]
async fn the_log_socket_streams_each_published_event_as_json_to_admins() {
    let app = TestApp::spawn().await;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(ws_url(&app, &format!("?access_token={}", app.admin_token))).await.unwrap();
    let (user, _) = app.signup("ann").await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.expect("user.created in time").unwrap().unwrap();
        let Message::Text(text) = msg else { continue };
        let line: Value = serde_json::from_str(&text).unwrap();
        if line["type"] == "user.created" && line["aggregateId"] == user.to_string() {
            assert!(line["id"].is_string() && line["occurredAt"].is_string(), "{line}");
            assert_eq!(line["data"]["username"], "ann", "{line}");
            break;
        }
    }
}

#[tokio::test]
async fn the_log_socket_wants_an_admin_token() {
    let app = TestApp::spawn().await;
    let (_, token) = app.signup("ann").await;
    for (query, status) in
        [("".to_string(), 401), ("?access_token=nonsense".into(), 401), (format!("?access_token={token}"), 403)]
    {
        let request = ws_url(&app, &query).into_client_request().unwrap();
        match tokio_tungstenite::connect_async(request).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                assert_eq!(res.status().as_u16(), status, "{query}")
            }
            other => panic!("{query}: expected HTTP {status}, got {other:?}"),
        }
    }
    // With a header instead of the query parameter, too.
    let mut request = ws_url(&app, "").into_client_request().unwrap();
    request.headers_mut().insert("Authorization", format!("Bearer {}", app.admin_token).parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_ok());
}

#[tokio::test]
async fn the_log_socket_closes_within_seconds_once_its_token_is_revoked() {
    let app = TestApp::spawn().await;
    let pair = app.post(
        "/api/v1/auth/login",
        None,
        serde_json::json!({"login": app.config.admin.username, "password": app.admin_password()}),
    );
    let (_, pair) = pair.await;
    let token = pair["access_token"].as_str().unwrap().to_string();
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url(&app, &format!("?access_token={token}"))).await.unwrap();
    let res = app
        .client
        .post(format!("{}/api/v1/auth/logout", app.base))
        .bearer_auth(&token)
        .json(&serde_json::json!({"refresh_token": pair["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::NO_CONTENT);
    let closed = tokio::time::timeout(std::time::Duration::from_secs(6), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the socket still streams to a logged-out admin");
}
