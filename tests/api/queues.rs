//! The virtual waiting room: places in join order, admissions paced at the event's rate, no
//! booking without an admission, expiry and rejoining, survival across a restart, the live place.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestApp;

/// An event with a waiting room admitting `per_second`; `price_cents` 0 makes it free.
async fn room(app: &TestApp, price_cents: i64, total: i64, per_second: i64) -> Uuid {
    let category = app.category(if price_cents == 0 { "free" } else { "paid" }).await;
    let event = json!({
        "name": format!("Rush {}", Uuid::new_v4().simple()), "category_id": category,
        "price_cents": price_cents, "currency": "EUR", "starts_at": "2030-01-01T20:00:00Z",
        "total_slots": total, "max_per_order": 4, "hold_seconds": 600,
        "waiting_room": true, "admit_per_second": per_second,
    });
    let (s, body) = app.post("/api/v1/events", Some(&app.admin_token), event).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!((body["waiting_room"].as_bool(), body["admit_per_second"].as_i64()), (Some(true), Some(per_second)));
    body["id"].as_str().unwrap().parse().unwrap()
}

async fn join(app: &TestApp, token: &str, event: Uuid) -> (StatusCode, Value) {
    app.post(&format!("/api/v1/events/{event}/queue"), Some(token), json!({})).await
}

async fn place(app: &TestApp, token: &str, event: Uuid) -> Value {
    let (s, body) = app.get(&format!("/api/v1/events/{event}/queue/me"), Some(token)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body
}

async fn people(app: &TestApp, n: usize) -> Vec<String> {
    let mut tokens = Vec::new();
    for i in 0..n {
        tokens.push(app.signup(&format!("fan{i}")).await.1);
    }
    tokens
}

/// Everyone's place at one moment: read until two reads in a row agree (an admission may fall
/// between the reads of one pass).
async fn snapshot(app: &TestApp, tokens: &[String], event: Uuid) -> Vec<Value> {
    loop {
        let mut a = Vec::new();
        let mut b = Vec::new();
        for t in tokens {
            a.push(place(app, t, event).await);
        }
        for t in tokens {
            b.push(place(app, t, event).await);
        }
        if a == b {
            return a;
        }
    }
}

/// Those admitted are the first ones in join order; the others wait at positions 1, 2, 3, ...
fn in_join_order(places: &[Value]) {
    let admitted = places.iter().take_while(|p| p["status"] == "admitted").count();
    for (i, p) in places.iter().enumerate().skip(admitted) {
        assert_eq!(p["status"], "waiting", "{places:?}");
        assert_eq!(p["position"].as_u64(), Some((i - admitted + 1) as u64), "{places:?}");
        assert!(p["admitted_until"].is_null(), "{places:?}");
    }
    for p in &places[..admitted] {
        assert!(p["position"].is_null() && p["admitted_until"].is_string(), "{places:?}");
    }
}

#[tokio::test]
async fn places_are_taken_in_join_order_once_per_person_and_an_event_without_a_room_says_so() {
    let app = TestApp::spawn().await;
    let event = room(&app, 1000, 100, 1).await;
    let fans = people(&app, 5).await;
    let (s, body) = app.get(&format!("/api/v1/events/{event}/queue/me"), Some(&fans[0])).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "never joined");
    for fan in &fans {
        let (s, body) = join(&app, fan, event).await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        assert!(["waiting", "admitted"].contains(&body["status"].as_str().unwrap()), "{body}");
    }
    let places = snapshot(&app, &fans, event).await;
    in_join_order(&places);
    assert!(places.iter().any(|p| p["status"] == "waiting"), "at one a second, not all five are through: {places:?}");
    // Joining again is the same place, answered 200.
    let last = &fans[4];
    let (s, again) = join(&app, last, event).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert!(again["status"] == "admitted" || again["position"].as_u64() <= places[4]["position"].as_u64(), "{again}");

    let plain = app.event(1000, 10, 600).await;
    let (s, body) = join(&app, &fans[0], plain).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("no_waiting_room")), "{body}");
    let (s, body) = join(&app, &fans[0], Uuid::now_v7()).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    let (s, _) = app.post(&format!("/api/v1/events/{event}/queue"), None, json!({})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn nobody_books_without_an_admission_and_positions_count_down_to_it_at_the_events_rate() {
    let app = TestApp::spawn().await;
    let paid = room(&app, 1000, 100, 2).await;
    let free = room(&app, 0, 100, 2).await;
    let fans = people(&app, 6).await;
    let stranger = app.signup("stranger").await.1;
    for fan in &fans {
        assert_eq!(join(&app, fan, paid).await.0, StatusCode::CREATED);
    }
    // Someone who never joined, and the last in line (several seconds from admission at two a
    // second), are both refused.
    for token in [&stranger, &fans[5]] {
        let (s, body) = app.order(token, paid, 1).await;
        assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("queue_required")), "{body}");
    }
    let (s, body) = app.post("/api/v1/registrations", Some(&stranger), json!({"event_id": free})).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("queue_required")), "{body}");

    // The last one's position only goes down, one admission at a time, to the admission.
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let p = place(&app, &fans[5], paid).await;
        if p["status"] == "admitted" {
            break;
        }
        let position = p["position"].as_u64().unwrap();
        if seen.last() != Some(&position) {
            seen.push(position);
        }
        assert!(tokio::time::Instant::now() < deadline, "never admitted: {seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen.windows(2).all(|w| w[1] < w[0]), "positions only count down: {seen:?}");
    assert!(seen.len() >= 3, "the countdown was seen: {seen:?}");

    // Admitted in join order, and no faster than two a second (one may be let through at once).
    let places = snapshot(&app, &fans, paid).await;
    let until: Vec<chrono::DateTime<chrono::Utc>> =
        places.iter().map(|p| p["admitted_until"].as_str().unwrap().parse().unwrap()).collect();
    assert!(until.windows(2).all(|w| w[0] <= w[1]), "admitted in join order: {until:?}");
    let span = (until[5] - until[1]).to_std().unwrap();
    assert!(span >= Duration::from_millis(1900), "four admissions at two a second took {span:?}");

    // Admitted: orders go through, as many as the other limits allow.
    for _ in 0..2 {
        let (s, body) = app.order(&fans[5], paid, 1).await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
    }
}

#[tokio::test]
async fn an_admission_expires_and_a_new_join_goes_to_the_back() {
    let app = TestApp::spawn_with(|c| c.booking.admission_seconds = 1).await;
    let event = room(&app, 1000, 100, 1).await;
    let fans = people(&app, 3).await;
    assert_eq!(join(&app, &fans[0], event).await.0, StatusCode::CREATED);
    app.eventually(5, "the first one admitted", || async {
        place(&app, &fans[0], event).await["status"] == "admitted"
    })
    .await;
    assert_eq!(app.order(&fans[0], event, 1).await.0, StatusCode::CREATED);
    for fan in &fans[1..] {
        assert_eq!(join(&app, fan, event).await.0, StatusCode::CREATED);
    }
    app.eventually(5, "the admission expired", || async { place(&app, &fans[0], event).await["status"] == "expired" })
        .await;
    let (s, body) = app.order(&fans[0], event, 1).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("queue_required")), "{body}");
    // Back of the line: behind whoever of the other two still waits.
    let (s, body) = join(&app, &fans[0], event).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let places = snapshot(&app, &[fans[1].clone(), fans[2].clone(), fans[0].clone()], event).await;
    let waiting_ahead = places[..2].iter().filter(|p| p["status"] == "waiting").count() as u64;
    if places[2]["status"] == "waiting" {
        assert_eq!(places[2]["position"].as_u64(), Some(waiting_ahead + 1), "{places:?}");
    } else {
        assert!(places[..2].iter().all(|p| p["status"] != "waiting"), "admitted before those ahead: {places:?}");
    }
}

#[tokio::test]
async fn the_queue_keeps_its_order_and_admissions_across_a_restart() {
    let app = TestApp::spawn().await;
    let event = room(&app, 1000, 100, 1).await;
    let fans = people(&app, 5).await;
    for fan in &fans {
        assert_eq!(join(&app, fan, event).await.0, StatusCode::CREATED);
    }
    let before = snapshot(&app, &fans, event).await;
    let (config, dir) = app.stop().await;
    let app = TestApp::start(config, dir).await;
    let after = snapshot(&app, &fans, event).await;
    in_join_order(&after);
    // Whoever was admitted still is (same admission), and nobody overtook anybody.
    for (b, a) in before.iter().zip(&after) {
        if b["status"] == "admitted" {
            assert_eq!(a["admitted_until"], b["admitted_until"], "{before:?} {after:?}");
        }
    }
    app.eventually(15, "everyone admitted after the restart", || async {
        snapshot(&app, &fans, event).await.iter().all(|p| p["status"] == "admitted")
    })
    .await;
    let places = snapshot(&app, &fans, event).await;
    let until: Vec<&str> = places.iter().map(|p| p["admitted_until"].as_str().unwrap()).collect();
    let parsed: Vec<chrono::DateTime<chrono::Utc>> = until.iter().map(|u| u.parse().unwrap()).collect();
    assert!(parsed.windows(2).all(|w| w[0] <= w[1]), "admitted in join order across the restart: {until:?}");
}

#[tokio::test]
async fn the_live_place_counts_down_then_says_admitted() {
    let app = TestApp::spawn().await;
    let event = room(&app, 1000, 100, 2).await;
    let fans = people(&app, 5).await;
    for fan in &fans {
        assert_eq!(join(&app, fan, event).await.0, StatusCode::CREATED);
    }
    // As a browser's EventSource asks: the token in the query, no header.
    let res = app
        .client
        .get(format!("{}/api/v1/events/{event}/queue/me/stream?access_token={}", app.base, fans[4]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let seen =
        crate::streams::sse_events(res, "queue", |seen| seen.last().is_some_and(|p| p["status"] == "admitted")).await;
    let positions: Vec<u64> = seen.iter().filter_map(|p| p["position"].as_u64()).collect();
    assert!(positions.windows(2).all(|w| w[1] < w[0]), "the position only counts down: {seen:?}");
    assert!(positions.len() >= 2, "changes were pushed before the admission: {seen:?}");
    assert!(seen.last().unwrap()["admitted_until"].is_string(), "{seen:?}");
    let (s, body) = app.get(&format!("/api/v1/events/{event}/queue/me/stream"), Some(&app.admin_token)).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "the admin never joined: {body}");
    let (s, _) = app.get(&format!("/api/v1/events/{event}/queue/me/stream"), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_room_is_part_of_the_event_and_its_rate_is_checked() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 10, 600).await;
    let (_, body) = app.get(&format!("/api/v1/events/{event}"), None).await;
    assert_eq!((body["waiting_room"].as_bool(), body["admit_per_second"].as_i64()), (Some(false), Some(10)), "{body}");
    let category = app.category("paid").await;
    for bad in [0, 10_001] {
        let input = json!({
            "name": "Bad rate", "category_id": category, "price_cents": 100, "currency": "EUR",
            "starts_at": "2030-01-01T20:00:00Z", "total_slots": 10, "waiting_room": true, "admit_per_second": bad,
        });
        let (s, body) = app.post("/api/v1/events", Some(&app.admin_token), input).await;
        assert_eq!((s, body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("admit_per_second")));
    }
    // Turning the room on for an event on sale: from then on, bookings need an admission.
    let (_, current) = app.get(&format!("/api/v1/events/{event}"), None).await;
    let fan = app.signup("ann").await.1;
    assert_eq!(app.order(&fan, event, 1).await.0, StatusCode::CREATED);
    let update = json!({
        "name": current["name"], "category_id": current["category_id"], "price_cents": 1000, "currency": "EUR",
        "starts_at": current["starts_at"], "total_slots": 10, "waiting_room": true, "admit_per_second": 50,
    });
    let (s, body) = app.put(&format!("/api/v1/events/{event}"), Some(&app.admin_token), update).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!((body["waiting_room"].as_bool(), body["admit_per_second"].as_i64()), (Some(true), Some(50)));
    let (s, body) = app.order(&fan, event, 1).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("queue_required")), "{body}");
    assert_eq!(join(&app, &fan, event).await.0, StatusCode::CREATED);
    app.eventually(5, "admitted", || async { place(&app, &fan, event).await["status"] == "admitted" }).await;
    assert_eq!(app.order(&fan, event, 1).await.0, StatusCode::CREATED);
}
