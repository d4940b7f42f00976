use boxoffice::store::entities::{idempotency_keys, orders};
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestApp;

#[tokio::test]
async fn an_order_holds_seats_and_the_event_shows_live_counts() {
    let app = TestApp::spawn().await;
    let event = app.event(2500, 10, 600).await;
    let (user, token) = app.signup("ann").await;
    let (s, order) = app.order(&token, event, 3).await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    assert_eq!(order["status"], "pending");
    assert_eq!(order["quantity"], 3);
    assert_eq!(order["amount_cents"], 7500);
    assert!(order["expires_at"].is_string());
    assert_eq!(app.counts(event).await, (7, 3, 0, 10));
    let (s, read) = app.get(&format!("/api/v1/orders/{}", order["id"].as_str().unwrap()), Some(&token)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(read["user_id"], user.to_string());
    assert!(read.get("tickets").is_none(), "no tickets before payment");
}

#[tokio::test]
async fn a_new_order_and_registration_answer_the_same_view_a_later_read_shows() {
    let app = TestApp::spawn().await;
    let paid = app.event(2500, 10, 600).await;
    let free = app.event(0, 10, 600).await;
    let (_, token) = app.signup("ann").await;
    let (s, order) = app.order(&token, paid, 2).await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    let (s, registration) = app.post("/api/v1/registrations", Some(&token), json!({"event_id": free})).await;
    assert_eq!(s, StatusCode::CREATED, "{registration}");
    for (created, kind) in [(order, "order"), (registration, "registration")] {
        assert_eq!(created["kind"], kind, "{created}");
        let (s, mut read) = app.get(&format!("/api/v1/orders/{}", created["id"].as_str().unwrap()), Some(&token)).await;
        assert_eq!(s, StatusCode::OK);
        // The read adds the tickets of a confirmed order; everything else is the same, field for field.
        if let Some(obj) = read.as_object_mut() {
            obj.remove("tickets");
        }
        assert_eq!(created, read, "the 201 body is the OrderView the read shows");
    }
}

#[tokio::test]
async fn order_is_rejected_with_409_when_event_is_sold_out() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 5, 600).await;
    let (_, token) = app.signup("ann").await;
    assert_eq!(app.order(&token, event, 4).await.0, StatusCode::CREATED);
    let (s, body) = app.order(&token, event, 2).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("sold_out")), "{body}");
    assert_eq!(app.order(&token, event, 1).await.0, StatusCode::CREATED);
    assert_eq!(app.counts(event).await, (0, 5, 0, 5));
}

#[tokio::test]
async fn a_quantity_outside_one_to_max_per_order_is_422() {
    let app = TestApp::spawn().await;
    let event = app.event_with(1000, 50, 600, 4).await;
    let (_, token) = app.signup("ann").await;
    for q in [0, -1, 5, 1000] {
        let (s, body) = app.order(&token, event, q).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "quantity {q}: {body}");
        assert_eq!(body["error"]["field"], "quantity");
    }
    assert_eq!(app.counts(event).await, (50, 0, 0, 50));
}

#[tokio::test]
async fn customers_see_only_their_own_orders_and_admins_see_all() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 10, 600).await;
    let (_, ann) = app.signup("ann").await;
    let (_, bob) = app.signup("bob").await;
    let (_, ann_order) = app.order(&ann, event, 1).await;
    app.order(&bob, event, 1).await;
    let (_, mine) = app.get("/api/v1/orders", Some(&ann)).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let (s, _) = app.get(&format!("/api/v1/orders/{}", ann_order["id"].as_str().unwrap()), Some(&bob)).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "someone else's order is not revealed");
    let (_, all) = app.get("/api/v1/orders", Some(&app.admin_token)).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn cancelling_a_pending_order_releases_its_seats_and_a_second_cancel_is_409() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 10, 600).await;
    let (_, token) = app.signup("ann").await;
    let (_, order) = app.order(&token, event, 4).await;
    let id = order["id"].as_str().unwrap();
    let (s, body) = app.post(&format!("/api/v1/orders/{id}/cancel"), Some(&token), json!({})).await;
    assert_eq!((s, body["status"].as_str()), (StatusCode::OK, Some("cancelled")), "{body}");
    assert_eq!(app.counts(event).await, (10, 0, 0, 10));
    let (s, body) = app.post(&format!("/api/v1/orders/{id}/cancel"), Some(&token), json!({})).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("order_not_cancellable")));
}

#[tokio::test]
async fn an_unpaid_hold_expires_on_time_releases_its_seats_and_mails_the_customer() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 10, 1).await;
    let (_, token) = app.signup("ann").await;
    let (_, order) = app.order(&token, event, 2).await;
    assert_eq!(app.counts(event).await, (8, 2, 0, 10));
    let id = order["id"].as_str().unwrap().to_string();
    app.eventually(5, "the hold to expire", || async { app.counts(event).await == (10, 0, 0, 10) }).await;
    app.eventually(5, "the order to read expired", || async {
        app.get(&format!("/api/v1/orders/{id}"), Some(&token)).await.1["status"] == "expired"
    })
    .await;
    app.eventually(5, "the expiry e-mail", || async { app.mails().iter().any(|m| m.contains("hold expired")) }).await;
    // The auditor and the notifier consume the same event independently: wait for the audit row too.
    app.eventually(5, "order.expired audited", || async { app.audit("order.expired").await.len() == 1 }).await;
}

#[tokio::test]
async fn a_free_event_order_confirms_at_once_with_tickets() {
    let app = TestApp::spawn().await;
    let event = app.event(0, 10, 600).await;
    let (_, token) = app.signup("ann").await;
    let (s, order) = app.order(&token, event, 2).await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    assert_eq!(order["status"], "confirmed");
    assert_eq!(order["amount_cents"], 0);
    assert_eq!(app.counts(event).await, (8, 0, 2, 10));
    let (_, read) = app.get(&format!("/api/v1/orders/{}", order["id"].as_str().unwrap()), Some(&token)).await;
    assert_eq!(read["tickets"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn registration_takes_one_confirmed_seat_and_announces_registration_created() {
    let app = TestApp::spawn().await;
    let event = app.event(0, 3, 600).await;
    let (user, token) = app.signup("ann").await;
    // The original clients send camelCase.
    let (s, reg) = app.post("/api/v1/registrations", Some(&token), json!({"eventId": event})).await;
    assert_eq!(s, StatusCode::CREATED, "{reg}");
    assert_eq!(reg["status"], "confirmed");
    assert_eq!(reg["quantity"], 1);
    assert_eq!(app.counts(event).await, (2, 0, 1, 3));
    let (s, again) = app.post("/api/v1/registrations", Some(&token), json!({"event_id": event})).await;
    assert_eq!((s, again["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("already_registered")));

    app.eventually(5, "registration.created in the audit log", || async {
        !app.audit("registration.created").await.is_empty()
    })
    .await;
    let audit = app.audit("registration.created").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["data"]["userId"], user.to_string());
    assert_eq!(audit[0]["data"]["eventId"], event.to_string());
    app.eventually(5, "the registration e-mail", || async {
        app.mails().iter().any(|m| m.contains("You are registered") && m.contains("ann@example.com"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_simultaneous_registrations_by_one_person_take_exactly_one_seat() {
    let app = TestApp::spawn().await;
    let (user, token) = app.signup("ann").await;
    // Several rounds, each a fresh event: one round can be lucky, a race shows within a few.
    for _ in 0..5 {
        let event = app.event(0, 50, 600).await;
        // Twenty open connections first, so the twenty attempts leave together.
        let path = format!("/api/v1/events/{event}");
        futures::future::join_all((0..20).map(|_| app.get(&path, None))).await;
        let attempts = (0..20).map(|_| app.post("/api/v1/registrations", Some(&token), json!({"event_id": event})));
        let answers = futures::future::join_all(attempts).await;
        let created = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
        assert_eq!(created, 1, "{answers:?}");
        for (s, body) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
            // The answer a later repeat gets, never a 5xx.
            let answer = (*s, body["error"]["code"].as_str());
            assert_eq!(answer, (StatusCode::CONFLICT, Some("already_registered")), "{body}");
        }
        assert_eq!(app.counts(event).await, (49, 0, 1, 50));
        let rows = orders::Entity::find()
            .filter(orders::Column::UserId.eq(user))
            .filter(orders::Column::EventId.eq(event))
            .all(&app.db)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "one order row: {rows:?}");
    }
}

#[tokio::test]
async fn the_database_refuses_a_second_confirmed_registration_but_not_after_a_cancellation() {
    let app = TestApp::spawn().await;
    let event = app.event(0, 5, 600).await;
    let (_, token) = app.signup("ann").await;
    let (s, reg) = app.post("/api/v1/registrations", Some(&token), json!({"event_id": event})).await;
    assert_eq!(s, StatusCode::CREATED, "{reg}");
    let first = orders::Entity::find_by_id(Uuid::parse_str(reg["id"].as_str().unwrap()).unwrap())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    use boxoffice::domain::OrderStatus;
    let copy = |status| orders::Model { id: Uuid::now_v7(), status, ..first.clone() };
    // Written straight to the database, past the HTTP layer: the unique index is the guarantee.
    let duplicate = orders::ActiveModel::from(copy(OrderStatus::Confirmed)).insert(&app.db).await;
    assert!(duplicate.is_err(), "a second confirmed registration was stored");
    orders::ActiveModel::from(copy(OrderStatus::Cancelled))
        .insert(&app.db)
        .await
        .expect("cancelled ones are not limited");
}

#[tokio::test]
async fn registering_for_a_paid_event_is_409_and_for_a_full_one_sold_out() {
    let app = TestApp::spawn().await;
    let paid = app.event(1000, 3, 600).await;
    let full = app.event(0, 1, 600).await;
    let (_, ann) = app.signup("ann").await;
    let (_, bob) = app.signup("bob").await;
    let (s, body) = app.post("/api/v1/registrations", Some(&ann), json!({"event_id": paid})).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("not_free")));
    assert_eq!(app.post("/api/v1/registrations", Some(&ann), json!({"event_id": full})).await.0, StatusCode::CREATED);
    let (s, body) = app.post("/api/v1/registrations", Some(&bob), json!({"event_id": full})).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("sold_out")));
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_response_and_rejects_a_different_body() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 10, 600).await;
    let (_, token) = app.signup("ann").await;
    let send = |quantity: i64| {
        app.client
            .post(format!("{}/api/v1/orders", app.base))
            .bearer_auth(&token)
            .header("Idempotency-Key", "order-attempt-1")
            .json(&json!({"event_id": event, "quantity": quantity}))
            .send()
    };
    let first = send(2).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: serde_json::Value = first.json().await.unwrap();
    let second = send(2).await.unwrap();
    assert_eq!(second.status(), StatusCode::CREATED);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let second: serde_json::Value = second.json().await.unwrap();
    assert_eq!(first, second, "same order, not a second one");
    assert_eq!(app.counts(event).await, (8, 2, 0, 10));
    let third = send(3).await.unwrap();
    assert_eq!(third.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn an_idempotency_key_left_unanswered_by_a_crash_is_taken_over_once_older_than_the_request_timeout() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 10, 600).await;
    let (user, token) = app.signup("ann").await;
    let body = json!({"event_id": event, "quantity": 2});
    let send = || {
        app.client
            .post(format!("{}/api/v1/orders", app.base))
            .bearer_auth(&token)
            .header("Idempotency-Key", "crashed-attempt")
            .json(&body)
            .send()
    };
    // What a process that died between claiming the key and storing the answer leaves behind.
    let claim = |age: chrono::Duration| idempotency_keys::ActiveModel {
        user_id: Set(user),
        route: Set("orders".into()),
        key: Set("crashed-attempt".into()),
        request_hash: Set(boxoffice::auth::sha256_hex(&body.to_string())),
        status_code: Set(None),
        response_body: Set(None),
        created_at: Set(chrono::Utc::now() - age),
    };
    claim(chrono::Duration::zero()).insert(&app.db).await.unwrap();
    let running = send().await.unwrap();
    assert_eq!(running.status(), StatusCode::CONFLICT, "a fresh claim may still be running");
    let running: serde_json::Value = running.json().await.unwrap();
    assert_eq!(running["error"]["code"], "request_in_progress");

    let timeout = chrono::Duration::milliseconds(app.config.http.request_timeout_ms as i64);
    claim(timeout + chrono::Duration::seconds(1)).update(&app.db).await.unwrap();
    let retried = send().await.unwrap();
    assert_eq!(retried.status(), StatusCode::CREATED, "an abandoned claim is taken over");
    let retried: serde_json::Value = retried.json().await.unwrap();
    let replayed = send().await.unwrap();
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    assert_eq!(replayed.json::<serde_json::Value>().await.unwrap(), retried, "and its answer is remembered");
    assert_eq!(app.counts(event).await, (8, 2, 0, 10), "one order");
}

#[tokio::test]
async fn cancelling_someone_elses_order_is_404_and_leaves_it_alone() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 10, 600).await;
    let (_, ann) = app.signup("ann").await;
    let (_, bob) = app.signup("bob").await;
    let (_, order) = app.order(&ann, event, 2).await;
    let id = order["id"].as_str().unwrap();
    let (s, body) = app.post(&format!("/api/v1/orders/{id}/cancel"), Some(&bob), json!({})).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{body}");
    let (_, read) = app.get(&format!("/api/v1/orders/{id}"), Some(&ann)).await;
    assert_eq!(read["status"], "pending");
    assert_eq!(app.counts(event).await, (8, 2, 0, 10));
}

#[tokio::test]
async fn an_idempotency_key_on_registrations_replays_the_201_and_rejects_another_event() {
    let app = TestApp::spawn().await;
    let event = app.event(0, 10, 600).await;
    let other = app.event(0, 10, 600).await;
    let (_, token) = app.signup("ann").await;
    let send = |event: Uuid| {
        app.client
            .post(format!("{}/api/v1/registrations", app.base))
            .bearer_auth(&token)
            .header("Idempotency-Key", "register-once")
            .json(&json!({"event_id": event}))
            .send()
    };
    let first = send(event).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: serde_json::Value = first.json().await.unwrap();
    // A retry of the same click gets the first answer, not 409 already_registered.
    let again = send(event).await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<serde_json::Value>().await.unwrap(), first);
    let elsewhere = send(other).await.unwrap();
    assert_eq!(elsewhere.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let elsewhere: serde_json::Value = elsewhere.json().await.unwrap();
    assert_eq!(elsewhere["error"]["field"], "Idempotency-Key");
    assert_eq!(app.counts(event).await, (9, 0, 1, 10));
    assert_eq!(app.counts(other).await, (10, 0, 0, 10));
}

#[tokio::test]
async fn a_price_outside_zero_to_a_billion_cents_is_422_so_no_total_can_wrap() {
    let app = TestApp::spawn().await;
    let category = app.category("paid").await;
    let event = |price: i64| {
        json!({"name": "Overpriced", "category_id": category, "price_cents": price, "currency": "EUR",
               "starts_at": "2030-01-01T20:00:00Z", "total_slots": 10})
    };
    // 4611686018427387905 × 4 wrapped to 4 cents, and (2^63 − 1) × 2 to −2, before prices were bounded.
    for price in [4_611_686_018_427_387_905_i64, i64::MAX, 1_000_000_001] {
        let (s, body) = app.post("/api/v1/events", Some(&app.admin_token), event(price)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "price {price}: {body}");
        assert_eq!(body["error"]["field"], "price_cents");
    }
    let (s, body) = app.post("/api/v1/events", Some(&app.admin_token), event(1_000_000_000)).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let id = Uuid::parse_str(body["id"].as_str().unwrap()).unwrap();
    let (_, token) = app.signup("ann").await;
    let (s, order) = app.order(&token, id, 10).await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    assert_eq!(order["amount_cents"], 10_000_000_000_i64, "the exact total, not a wrapped one");
}

/// An event with `max_per_person` set to `max` (0: none) and room for more than that.
async fn limited_event(app: &TestApp, max: Option<i64>) -> (Uuid, Value) {
    let category = app.category("paid").await;
    let mut body = json!({"name": "Limited", "category_id": category, "price_cents": 1000, "currency": "EUR",
        "starts_at": "2030-01-01T20:00:00Z", "total_slots": 1000, "max_per_order": 10});
    if let Some(max) = max {
        body["max_per_person"] = json!(max);
    }
    let (s, event) = app.post("/api/v1/events", Some(&app.admin_token), body).await;
    assert_eq!(s, StatusCode::CREATED, "{event}");
    (Uuid::parse_str(event["id"].as_str().unwrap()).unwrap(), event)
}

#[tokio::test]
async fn one_person_cannot_hold_a_whole_event_the_default_limit_is_twenty_seats() {
    let app = TestApp::spawn().await;
    let (event, created) = limited_event(&app, None).await;
    assert_eq!(created["max_per_person"], 20, "{created}");
    assert_eq!(app.get(&format!("/api/v1/events/{event}"), None).await.1["max_per_person"], 20);
    let (_, ann) = app.signup("ann").await;
    assert_eq!(app.order(&ann, event, 10).await.0, StatusCode::CREATED);
    assert_eq!(app.order(&ann, event, 10).await.0, StatusCode::CREATED);
    let (s, body) = app.order(&ann, event, 1).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("person_limit")), "{body}");
    // Someone else is not affected.
    let (_, bob) = app.signup("bob").await;
    assert_eq!(app.order(&bob, event, 10).await.0, StatusCode::CREATED);
    assert_eq!(app.counts(event).await, (970, 30, 0, 1000));
}

#[tokio::test]
async fn the_person_limit_counts_held_and_bought_seats_and_frees_what_is_cancelled() {
    let app = TestApp::spawn().await;
    let (event, _) = limited_event(&app, Some(3)).await;
    let (_, ann) = app.signup("ann").await;
    let (_, first) = app.order(&ann, event, 2).await;
    assert_eq!(app.pay(&ann, &first, "tok_ok").await.0, StatusCode::CREATED, "bought 2");
    let (s, body) = app.order(&ann, event, 2).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("person_limit")), "{body}");
    let (s, held) = app.order(&ann, event, 1).await;
    assert_eq!(s, StatusCode::CREATED, "2 bought + 1 held = 3: {held}");
    assert_eq!(app.order(&ann, event, 1).await.1["error"]["code"], "person_limit");
    let id = held["id"].as_str().unwrap();
    assert_eq!(app.post(&format!("/api/v1/orders/{id}/cancel"), Some(&ann), json!({})).await.0, StatusCode::OK);
    assert_eq!(app.order(&ann, event, 1).await.0, StatusCode::CREATED, "the cancelled seat counts no more");
}

#[tokio::test]
async fn a_person_limit_of_zero_means_none_and_a_put_can_set_one() {
    let app = TestApp::spawn().await;
    let (event, created) = limited_event(&app, Some(0)).await;
    let (_, ann) = app.signup("ann").await;
    for _ in 0..3 {
        assert_eq!(app.order(&ann, event, 10).await.0, StatusCode::CREATED);
    }
    let mut input = created.clone();
    for k in ["id", "created_at", "updated_at", "available_slots", "held_slots", "sold_slots"] {
        input.as_object_mut().unwrap().remove(k);
    }
    input["max_per_person"] = json!(31);
    let (s, body) = app.put(&format!("/api/v1/events/{event}"), Some(&app.admin_token), input.clone()).await;
    assert_eq!((s, &body["max_per_person"]), (StatusCode::OK, &json!(31)), "{body}");
    assert_eq!(app.order(&ann, event, 1).await.0, StatusCode::CREATED);
    assert_eq!(app.order(&ann, event, 1).await.1["error"]["code"], "person_limit");
    input["max_per_person"] = json!(-1);
    let (s, body) = app.put(&format!("/api/v1/events/{event}"), Some(&app.admin_token), input).await;
    assert_eq!((s, &body["error"]["field"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("max_per_person")));
}

#[tokio::test]
async fn the_person_limit_is_rebuilt_after_a_restart_and_an_expired_hold_frees_it() {
    let app = TestApp::spawn().await;
    let (event, _) = limited_event(&app, Some(3)).await;
    let (_, ann) = app.signup("ann").await;
    let (_, first) = app.order(&ann, event, 1).await;
    assert_eq!(app.pay(&ann, &first, "tok_ok").await.0, StatusCode::CREATED);
    assert_eq!(app.order(&ann, event, 2).await.0, StatusCode::CREATED);
    let (config, dir) = app.stop().await;
    let app = TestApp::start(config, dir).await;
    let ann = app.login("ann", "password-123").await;
    let (s, body) = app.order(&ann, event, 1).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("person_limit")), "{body}");

    let short = app.event_limited(1000, 10, 1, 10, Some(2)).await;
    assert_eq!(app.order(&ann, short, 2).await.0, StatusCode::CREATED);
    assert_eq!(app.order(&ann, short, 1).await.1["error"]["code"], "person_limit");
    app.eventually(5, "the hold to expire", || async { app.counts(short).await == (10, 0, 0, 10) }).await;
    assert_eq!(app.order(&ann, short, 2).await.0, StatusCode::CREATED, "expired seats count no more");
}

#[tokio::test]
async fn a_stored_price_too_large_to_multiply_is_refused_not_wrapped() {
    use boxoffice::store::entities::events;
    use sea_orm::sea_query::Expr;
    let app = TestApp::spawn().await;
    let event = app.event_limited(1000, 10, 600, 10, Some(0)).await;
    // A price written before prices were bounded; the inventory reads it on its next start.
    events::Entity::update_many()
        .col_expr(events::Column::PriceCents, Expr::value(4_611_686_018_427_387_905_i64))
        .filter(events::Column::Id.eq(event))
        .exec(&app.db)
        .await
        .unwrap();
    let (config, dir) = app.stop().await;
    let app = TestApp::start(config, dir).await;
    let (_, ann) = app.signup("ann").await;
    let (s, body) = app.order(&ann, event, 4).await;
    assert_eq!((s, body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("quantity")), "{body}");
    assert_eq!(app.counts(event).await, (10, 0, 0, 10), "nothing held");
}
