//! The waiting list of a sold-out event: entries in the order asked, seats that come back offered
//! to the first person they fit (a hold for a paid event, a registration for a free one), a lapsed
//! offer passed on, and the order kept across a restart.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestApp;

async fn ask(app: &TestApp, token: &str, event: Uuid, quantity: i64) -> (StatusCode, Value) {
    app.post(&format!("/api/v1/events/{event}/waitlist"), Some(token), json!({ "quantity": quantity })).await
}

async fn entry(app: &TestApp, token: &str, event: Uuid) -> (StatusCode, Value) {
    app.get(&format!("/api/v1/events/{event}/waitlist/me"), Some(token)).await
}

async fn leave(app: &TestApp, token: &str, event: Uuid) -> StatusCode {
    app.request(reqwest::Method::DELETE, &format!("/api/v1/events/{event}/waitlist/me"), Some(token), None).await.0
}

/// The caller's orders for `event`.
async fn orders_for(app: &TestApp, token: &str, event: Uuid) -> Vec<Value> {
    let (s, body) = app.get("/api/v1/orders?limit=100", Some(token)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body["items"].as_array().unwrap().iter().filter(|o| o["event_id"] == event.to_string()).cloned().collect()
}

async fn cancel(app: &TestApp, token: &str, order: &Value) {
    let (s, body) =
        app.post(&format!("/api/v1/orders/{}/cancel", order["id"].as_str().unwrap()), Some(token), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn the_list_takes_requests_only_for_seats_the_event_cannot_serve_one_entry_per_person() {
    let app = TestApp::spawn().await;
    let event = app.event_with(1000, 2, 600, 4).await;
    let (ann, bob, cat) = (app.signup("ann").await.1, app.signup("bob").await.1, app.signup("cat").await.1);
    let (s, body) = ask(&app, &ann, event, 1).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("seats_available")), "{body}");
    for bad in [0, 5] {
        let (s, body) = ask(&app, &ann, event, bad).await;
        assert_eq!((s, body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("quantity")));
    }
    assert_eq!(app.order(&bob, event, 2).await.0, StatusCode::CREATED);

    let (s, body) = ask(&app, &ann, event, 1).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body, json!({"position": 1, "status": "waiting", "quantity": 1}));
    let (s, again) = ask(&app, &ann, event, 1).await;
    assert_eq!((s, &again), (StatusCode::OK, &body), "the same entry");
    let (s, body) = ask(&app, &cat, event, 2).await;
    assert_eq!((s, body["position"].as_u64()), (StatusCode::CREATED, Some(2)), "{body}");
    assert_eq!(entry(&app, &ann, event).await.1["position"], 1);

    assert_eq!(leave(&app, &ann, event).await, StatusCode::NO_CONTENT);
    assert_eq!(entry(&app, &ann, event).await.0, StatusCode::NOT_FOUND);
    assert_eq!(leave(&app, &ann, event).await, StatusCode::NOT_FOUND);
    assert_eq!(entry(&app, &cat, event).await.1["position"], 1, "moved up");
    assert_eq!(entry(&app, &bob, event).await.0, StatusCode::NOT_FOUND, "never listed");
    assert_eq!(app.audit("waitlist.joined").await.len(), 2);
    app.eventually(10, "waitlist.left audited", || async { app.audit("waitlist.left").await.len() == 1 }).await;

    let free = app.event(0, 1, 600).await;
    let (s, body) = ask(&app, &ann, free, 2).await;
    assert_eq!((s, body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("quantity")), "{body}");
    assert_eq!(ask(&app, &ann, Uuid::now_v7(), 1).await.0, StatusCode::NOT_FOUND);
    let (s, _) = app.post(&format!("/api/v1/events/{event}/waitlist"), None, json!({"quantity": 1})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn returned_seats_are_held_for_the_first_person_they_fit_who_is_mailed_and_can_pay() {
    let app = TestApp::spawn().await;
    let event = app.event_with(1000, 3, 600, 4).await;
    let (bob, bea) = (app.signup("bob").await.1, app.signup("bea").await.1);
    let (s, two) = app.order(&bob, event, 2).await;
    assert_eq!(s, StatusCode::CREATED, "{two}");
    let (s, one) = app.order(&bea, event, 1).await;
    assert_eq!(s, StatusCode::CREATED, "{one}");
    let (cat, dan, eve) = (app.signup("cat").await.1, app.signup("dan").await.1, app.signup("eve").await.1);
    assert_eq!(ask(&app, &cat, event, 2).await.0, StatusCode::CREATED);
    assert_eq!(ask(&app, &dan, event, 1).await.0, StatusCode::CREATED);
    assert_eq!(ask(&app, &eve, event, 1).await.0, StatusCode::CREATED);

    // One seat back: too few for cat (2), so dan, the first it fits, gets a hold.
    cancel(&app, &bea, &one).await;
    let held = orders_for(&app, &dan, event).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!((held[0]["status"].as_str(), held[0]["quantity"].as_u64()), (Some("pending"), Some(1)));
    assert_eq!(entry(&app, &dan, event).await.1, json!({"position": null, "status": "offered", "quantity": 1}));
    assert_eq!(entry(&app, &cat, event).await.1["position"], 1);
    assert_eq!(entry(&app, &eve, event).await.1["position"], 2);
    assert_eq!(app.counts(event).await, (0, 3, 0, 3), "the seat went to dan's hold, not back on sale");
    app.eventually(10, "dan is mailed", || async {
        app.mails().iter().any(|m| m.contains("From the waiting list") && m.contains("dan"))
    })
    .await;
    app.eventually(10, "waitlist.offered audited", || async {
        app.audit("waitlist.offered").await.iter().any(|e| e["data"]["orderId"] == held[0]["id"])
    })
    .await;
    let (s, paid) = app.pay(&dan, &held[0], "tok_ok").await;
    assert_eq!(s, StatusCode::CREATED, "{paid}");

    // Two back: cat's turn.
    cancel(&app, &bob, &two).await;
    let held = orders_for(&app, &cat, event).await;
    assert_eq!((held.len(), held[0]["quantity"].as_u64()), (1, Some(2)), "{held:?}");
    assert_eq!(entry(&app, &eve, event).await.1["position"], 1, "still waiting: nothing left");
}

#[tokio::test]
async fn an_expired_hold_goes_to_the_list_and_an_offer_not_taken_goes_to_the_next_person() {
    let app = TestApp::spawn().await;
    let event = app.event_with(1000, 1, 1, 4).await;
    let bob = app.signup("bob").await.1;
    assert_eq!(app.order(&bob, event, 1).await.0, StatusCode::CREATED);
    let (cat, dan) = (app.signup("cat").await.1, app.signup("dan").await.1);
    assert_eq!(ask(&app, &cat, event, 1).await.0, StatusCode::CREATED);
    assert_eq!(ask(&app, &dan, event, 1).await.0, StatusCode::CREATED);
    // Bob's hold lapses: cat is offered it.
    app.eventually(10, "cat offered", || async { orders_for(&app, &cat, event).await.len() == 1 }).await;
    assert_eq!(entry(&app, &dan, event).await.1["position"], 1);
    // Cat does not pay within the hold time: the seat goes on to dan.
    app.eventually(10, "dan offered", || async { orders_for(&app, &dan, event).await.len() == 1 }).await;
    let cats = orders_for(&app, &cat, event).await;
    app.eventually(5, "cat's offer expired", || async {
        orders_for(&app, &cat, event).await[0]["status"] == "expired"
    })
    .await;
    assert_eq!(cats.len(), 1);
    let dans = orders_for(&app, &dan, event).await;
    assert!(["pending", "expired"].contains(&dans[0]["status"].as_str().unwrap()), "{dans:?}");
    let (available, held, sold, total) = app.counts(event).await;
    assert_eq!(available + held + sold, total);
}

#[tokio::test]
async fn a_free_events_list_gets_registrations() {
    let app = TestApp::spawn().await;
    let event = app.event(0, 1, 600).await;
    let bob = app.signup("bob").await.1;
    let (s, reg) = app.post("/api/v1/registrations", Some(&bob), json!({"event_id": event})).await;
    assert_eq!(s, StatusCode::CREATED, "{reg}");
    let cat = app.signup("cat").await.1;
    let (s, body) = ask(&app, &cat, event, 1).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    cancel(&app, &bob, &reg).await;
    let got = orders_for(&app, &cat, event).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0]["status"].as_str(), got[0]["kind"].as_str()), (Some("confirmed"), Some("registration")));
    assert_eq!(entry(&app, &cat, event).await.1["status"], "offered");
    assert_eq!(app.counts(event).await, (0, 0, 1, 1));
    // Cat is registered now: a second registration is refused as usual.
    let (s, body) = app.post("/api/v1/registrations", Some(&cat), json!({"event_id": event})).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("already_registered")), "{body}");
}

#[tokio::test]
async fn the_list_keeps_its_order_across_a_restart() {
    let app = TestApp::spawn().await;
    let event = app.event_with(1000, 1, 600, 4).await;
    let bob = app.signup("bob").await.1;
    let (s, held) = app.order(&bob, event, 1).await;
    assert_eq!(s, StatusCode::CREATED, "{held}");
    let mut fans = Vec::new();
    for name in ["cat", "dan", "eve"] {
        let token = app.signup(name).await.1;
        assert_eq!(ask(&app, &token, event, 1).await.0, StatusCode::CREATED);
        fans.push(token);
    }
    let (config, dir) = app.stop().await;
    let app = TestApp::start(config, dir).await;
    for (i, fan) in fans.iter().enumerate() {
        assert_eq!(entry(&app, fan, event).await.1["position"], i + 1);
    }
    cancel(&app, &bob, &held).await;
    assert_eq!(orders_for(&app, &fans[0], event).await.len(), 1, "the first in line is offered the seat");
    assert_eq!(entry(&app, &fans[2], event).await.1["position"], 2);
}
