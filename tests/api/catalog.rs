use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::common::TestApp;

#[tokio::test]
async fn only_admins_create_categories_and_events() {
    let app = TestApp::spawn().await;
    let (_, token) = app.signup("ann").await;
    let (s, _) = app.post("/api/v1/categories", Some(&token), json!({"name": "Jazz", "kind": "paid"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, cat) =
        app.post("/api/v1/categories", Some(&app.admin_token), json!({"name": "Jazz", "kind": "paid"})).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = app.post("/api/v1/categories", Some(&app.admin_token), json!({"name": "Jazz", "kind": "paid"})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    // The new category is audited once (the refused duplicate is not).
    app.eventually(5, "category.created audited", || async { !app.audit("category.created").await.is_empty() }).await;
    let audit = app.audit("category.created").await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!((&audit[0]["data"]["categoryId"], &audit[0]["data"]["name"]), (&cat["id"], &json!("Jazz")));
    let (s, body) = app.post("/api/v1/categories", Some(&app.admin_token), json!({"name": "X", "kind": "cheap"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (s, list) = app.get("/api/v1/categories", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(list.as_array().unwrap().iter().any(|c| c["id"] == cat["id"]));

    let event = json!({"name": "Gig", "category_id": cat["id"], "price_cents": 1000, "currency": "eur",
                       "starts_at": "2030-05-01T19:00:00Z", "total_slots": 10});
    let (s, _) = app.post("/api/v1/events", Some(&token), event.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, body) = app.post("/api/v1/events", Some(&app.admin_token), event).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["currency"], "EUR");
    assert_eq!(
        (body["available_slots"].as_u64(), body["held_slots"].as_u64(), body["sold_slots"].as_u64()),
        (Some(10), Some(0), Some(0))
    );
    assert_eq!(body["hold_seconds"], 600, "default hold time from config");
}

#[tokio::test]
async fn invalid_event_fields_are_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let paid = app.category("paid").await;
    let free = app.category("free").await;
    let base = json!({"name": "Gig", "category_id": paid, "price_cents": 1000, "currency": "EUR",
                      "starts_at": "2030-05-01T19:00:00Z", "total_slots": 10});
    let cases = [
        ("price_cents", json!(-1)),
        ("currency", json!("EURO")),
        ("total_slots", json!(0)),
        ("max_per_order", json!(0)),
        ("hold_seconds", json!(999_999)),
        ("name", json!("  ")),
    ];
    for (field, value) in cases {
        let mut body = base.clone();
        body[field] = value;
        let (s, resp) = app.post("/api/v1/events", Some(&app.admin_token), body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {resp}");
        assert_eq!(resp["error"]["field"], field, "{resp}");
    }
    // A category that does not exist is not found, as an unknown event is for an order.
    let mut unknown = base.clone();
    unknown["category_id"] = json!(Uuid::new_v4());
    let (s, resp) = app.post("/api/v1/events", Some(&app.admin_token), unknown).await;
    assert_eq!((s, resp["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{resp}");
    let mut priced_free = base.clone();
    priced_free["category_id"] = json!(free);
    let (s, resp) = app.post("/api/v1/events", Some(&app.admin_token), priced_free).await;
    assert_eq!((s, resp["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("price_cents")));
    let mut wrong_type = base.clone();
    wrong_type["total_slots"] = json!("ten");
    let (s, resp) = app.post("/api/v1/events", Some(&app.admin_token), wrong_type).await;
    assert_eq!((s, resp["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("total_slots")), "{resp}");
}

#[tokio::test]
async fn events_are_searchable_by_text_category_and_date_and_paginated() {
    let app = TestApp::spawn().await;
    let jazz = app.category("paid").await;
    let talks = app.category("free").await;
    for (name, cat, price, day) in [
        ("Blue Note Night", jazz, 2000, "2030-01-10"),
        ("Late Jazz Session", jazz, 2500, "2030-02-10"),
        ("Rust Talk", talks, 0, "2030-03-10"),
    ] {
        let (s, b) = app
            .post(
                "/api/v1/events",
                Some(&app.admin_token),
                json!({"name": name, "category_id": cat, "price_cents": price, "currency": "EUR",
                       "starts_at": format!("{day}T19:00:00Z"), "total_slots": 5}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["items"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_string()).collect()
    };
    let (_, r) = app.get("/api/v1/events?q=jazz", None).await;
    assert_eq!(names(&r), vec!["Late Jazz Session"]);
    let (_, r) = app.get(&format!("/api/v1/events?category={jazz}"), None).await;
    assert_eq!(names(&r).len(), 2);
    let (_, r) = app.get("/api/v1/events?from=2030-02-01T00:00:00Z&to=2030-12-31T00:00:00Z", None).await;
    assert_eq!(names(&r), vec!["Late Jazz Session", "Rust Talk"]);
    let (_, p1) = app.get("/api/v1/events?limit=2", None).await;
    assert_eq!(names(&p1).len(), 2);
    let next = p1["next_token"].as_str().unwrap();
    let (_, p2) = app.get(&format!("/api/v1/events?limit=2&next_token={next}"), None).await;
    assert_eq!(names(&p2), vec!["Rust Talk"]);
    assert!(p2["next_token"].is_null());
    let (s, r) = app.get("/api/v1/events?next_token=garbage!", None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    let (s, _) = app.get("/api/v1/events?from=yesterday", None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn an_unknown_event_is_404() {
    let app = TestApp::spawn().await;
    let (s, body) = app.get(&format!("/api/v1/events/{}", Uuid::new_v4()), None).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (_, token) = app.signup("ann").await;
    let (s, _) = app.order(&token, Uuid::new_v4(), 1).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn capacity_cannot_drop_below_held_plus_sold_but_may_grow() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 10, 600).await;
    let (_, token) = app.signup("ann").await;
    let (s, _) = app.order(&token, event, 4).await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, e) = app.get(&format!("/api/v1/events/{event}"), None).await;
    let mut body = json!({"name": e["name"], "category_id": e["category_id"], "price_cents": 1000, "currency": "EUR",
                          "starts_at": e["starts_at"], "total_slots": 3});
    let (s, resp) = app.put(&format!("/api/v1/events/{event}"), Some(&app.admin_token), body.clone()).await;
    assert_eq!((s, resp["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("capacity_below_committed")), "{resp}");
    body["total_slots"] = json!(20);
    body["name"] = json!("Bigger venue");
    let (s, resp) = app.put(&format!("/api/v1/events/{event}"), Some(&app.admin_token), body).await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    assert_eq!(app.counts(event).await, (16, 4, 0, 20));
    assert_eq!(resp["name"], "Bigger venue");
}

/// Text with quotes, backslashes and non-ASCII survives the committer's writes exactly, in the
/// row and in the outbox payload (the SQLite committer encodes values itself).
#[tokio::test]
async fn an_event_renamed_to_awkward_text_reads_back_exactly() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 10, 600).await;
    let (_, e) = app.get(&format!("/api/v1/events/{event}"), None).await;
    let name = r#"Rock 'n' Roll \ "Live"; DROP TABLE orders; -- ünïcødé 🎸 \x41 $1 E'\''"#;
    let body = json!({"name": name, "category_id": e["category_id"], "price_cents": 1000, "currency": "EUR",
                      "starts_at": e["starts_at"], "total_slots": 12});
    let (s, resp) = app.put(&format!("/api/v1/events/{event}"), Some(&app.admin_token), body).await;
    assert_eq!(s, StatusCode::OK, "{resp}");
    let (_, stored) = app.get(&format!("/api/v1/events/{event}"), None).await;
    assert_eq!(stored["name"], name, "the row, read back");
    assert_eq!(app.counts(event).await, (12, 0, 0, 12));
    let updated = app.audit("event.updated").await;
    assert!(updated.iter().any(|a| a["data"]["name"] == name), "the outbox payload, read back: {updated:?}");
}

#[tokio::test]
async fn the_demo_seed_announces_its_categories_and_events_like_any_other() {
    let app = TestApp::spawn_with(|c| c.seed.demo_data = true).await;
    let (_, events) = app.get("/api/v1/events", None).await;
    assert_eq!(events["items"].as_array().map(Vec::len), Some(3), "{events}");
    for t in ["category.created", "event.created"] {
        app.eventually(5, t, || async { app.audit(t).await.len() == 3 }).await;
    }
}

#[tokio::test]
async fn updating_an_event_is_403_for_a_customer_and_404_for_an_unknown_id() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 10, 600).await;
    let (_, token) = app.signup("ann").await;
    let (_, e) = app.get(&format!("/api/v1/events/{event}"), None).await;
    let body = json!({"name": "Renamed", "category_id": e["category_id"], "price_cents": 1000, "currency": "EUR",
                      "starts_at": e["starts_at"], "total_slots": 10});
    let (s, resp) = app.put(&format!("/api/v1/events/{event}"), Some(&token), body.clone()).await;
    assert_eq!((s, resp["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{resp}");
    let (_, unchanged) = app.get(&format!("/api/v1/events/{event}"), None).await;
    assert_eq!(unchanged["name"], e["name"]);
    let (s, resp) = app.put(&format!("/api/v1/events/{}", Uuid::new_v4()), Some(&app.admin_token), body).await;
    assert_eq!((s, resp["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{resp}");
}
