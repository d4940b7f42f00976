//! Odd input at every door (issue 36): texts are bounded before they are stored, hashed or
//! searched; control characters no field can hold are refused naming the field; integral numbers
//! written as floats are integers; and every refusal speaks JSON, not Rust. Each of these was a
//! 500, a disk filling up, or a refusal of a valid request before.

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::common::TestApp;

/// Rows in a table (to see that a refused request stored nothing).
async fn rows(app: &TestApp, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) AS n FROM {table}");
    let row = app.db.query_one_raw(Statement::from_string(app.db.get_database_backend(), sql)).await.unwrap().unwrap();
    row.try_get("", "n").unwrap()
}

fn field(body: &Value) -> &str {
    body["error"]["field"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_nul_or_other_control_character_is_422_naming_the_field_on_every_route_that_stores_text() {
    let app = TestApp::spawn().await;
    let (s, body) = app.post("/api/v1/auth/login", None, json!({"login": "ad\u{0}min", "password": "x"})).await;
    assert_eq!((s, field(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "login"), "{body}");
    let (s, body) = app.get("/api/v1/events?q=%00", None).await;
    assert_eq!((s, field(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "q"), "{body}");
    let (s, body) = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "nul@example.com", "username": "nul", "password": "a-long-secret-42", "first_name": "A\u{0}"}),
        )
        .await;
    assert_eq!((s, field(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "first_name"), "{body}");
    let admin = Some(app.admin_token.as_str());
    let (s, body) = app.post("/api/v1/categories", admin, json!({"name": "Bell\u{7}", "kind": "paid"})).await;
    assert_eq!((s, field(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "name"), "{body}");
    // A line break is no part of a name either (it is of no JSON-wide rule: a field may hold one).
    let (s, body) = app.post("/api/v1/categories", admin, json!({"name": "Two\nlines", "kind": "paid"})).await;
    assert_eq!((s, field(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "name"), "{body}");
    // Nested fields are named by their path, and form bodies (the compatibility routes) too.
    let (s, body) =
        app.post("/api/v1/orders", admin, json!({"event_id": "x", "note": {"lines": ["ok", "\u{1b}[31m"]}})).await;
    assert_eq!((s, field(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "note.lines[1]"), "{body}");
    let res = app
        .client
        .post(format!("{}/v1/login", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=ad%00min&password=x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = res.json().await.unwrap();
    assert_eq!(field(&body), "username", "{body}");
}

#[tokio::test]
async fn a_long_search_is_422_and_percent_and_underscore_are_searched_for_as_themselves() {
    let app = TestApp::spawn().await;
    let (s, body) = app.get(&format!("/api/v1/events?q={}", "a".repeat(50_000)), None).await;
    assert_eq!((s, field(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "query"), "the query string is bounded: {body}");
    let (s, body) = app.get(&format!("/api/v1/events?q={}", "a".repeat(101)), None).await;
    assert_eq!((s, field(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "q"), "{body}");

    let category = app.category("paid").await;
    for name in ["Sale 50% off", "Sale 500 off", "snake_case night", "snakeXcase night"] {
        let event = json!({"name": name, "category_id": category, "price_cents": 100, "currency": "EUR",
                           "starts_at": "2030-01-01T20:00:00Z", "total_slots": 5});
        let (s, body) = app.post("/api/v1/events", Some(&app.admin_token), event).await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
    }
    let names = async |q: &str| {
        let (s, body) = app.get(&format!("/api/v1/events?q={q}&limit=100"), None).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        body["items"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(names("50%25").await, ["Sale 50% off"]);
    assert_eq!(names("e_c").await, ["snake_case night"]);
}

#[tokio::test]
async fn huge_logins_are_refused_before_anything_is_stored_and_the_audit_keeps_only_a_prefix() {
    let app = TestApp::spawn().await;
    let (failures, outbox) = (rows(&app, "login_failures").await, rows(&app, "outbox").await);
    for _ in 0..20 {
        let (s, body) =
            app.post("/api/v1/auth/login", None, json!({"login": "a".repeat(60_000), "password": "x"})).await;
        assert_eq!((s, field(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "login"), "{body}");
        let (s, body) =
            app.post("/api/v1/auth/login", None, json!({"login": "ann", "password": "p".repeat(10_000)})).await;
        assert_eq!((s, field(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "password"), "{body}");
    }
    assert_eq!(rows(&app, "login_failures").await, failures, "nothing recorded for a refused text");
    assert_eq!(rows(&app, "outbox").await, outbox, "nothing announced for a refused text");

    // A login within bounds that fails is recorded, and the audit trail keeps its first 64 characters.
    let long = "b".repeat(200);
    let (s, _) = app.post("/api/v1/auth/login", None, json!({"login": long, "password": "wrong guess"})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let audited = async || {
        let failed = app.audit("user.login_failed").await;
        failed.iter().filter_map(|e| e["data"]["login"].as_str().map(str::to_owned)).find(|l| l.starts_with('b'))
    };
    app.eventually(10, "the refused login in the audit log", || async { audited().await.is_some() }).await;
    assert_eq!(audited().await, Some(format!("{}…", "b".repeat(64))));
}

#[tokio::test]
async fn integral_numbers_written_as_floats_are_integers_and_fractions_are_refused_in_plain_words() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 20, 600).await;
    let (_, token) = app.signup("ann").await;
    for quantity in [json!(2.0), json!(1e0)] {
        let (s, body) =
            app.post("/api/v1/orders", Some(&token), json!({"event_id": event, "quantity": quantity})).await;
        assert_eq!(s, StatusCode::CREATED, "{quantity}: {body}");
    }
    let (s, body) = app.post("/api/v1/orders", Some(&token), json!({"event_id": event, "quantity": 2.5})).await;
    assert_eq!((s, field(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "quantity"), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("expected a whole number"), "{message}");

    // No Rust type names in any refusal.
    let (s, body) = app.post("/api/v1/orders", Some(&token), json!([1, 2])).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (s, body2) = app.post("/api/v1/orders", Some(&token), json!({"event_id": event, "quantity": "two"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body2}");
    for b in [&body, &body2] {
        let m = b["error"]["message"].as_str().unwrap();
        for rust in ["struct", "i64", "u32", "u64", "i32", "CreateOrder"] {
            assert!(!m.contains(rust), "{m}");
        }
    }
}
