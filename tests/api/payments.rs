use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;

use boxoffice::store::entities::payments;

use crate::common::TestApp;

#[tokio::test]
async fn paying_confirms_the_order_issues_tickets_and_mails_them() {
    let app = TestApp::spawn().await;
    let event = app.event(4500, 10, 600).await;
    let (_, token) = app.signup("ann").await;
    let (_, order) = app.order(&token, event, 2).await;
    let (s, payment) = app.pay(&token, &order, "tok_ok").await;
    assert_eq!(s, StatusCode::CREATED, "{payment}");
    assert_eq!(payment["status"], "succeeded");
    assert_eq!(payment["amount_cents"], 9000);
    let history: Vec<_> = payment["history"].as_array().unwrap().iter().map(|h| h["status"].clone()).collect();
    assert_eq!(history, vec![json!("pending"), json!("succeeded")]);
    assert_eq!(app.counts(event).await, (8, 0, 2, 10));

    let id = order["id"].as_str().unwrap();
    let (_, read) = app.get(&format!("/api/v1/orders/{id}"), Some(&token)).await;
    assert_eq!(read["status"], "confirmed");
    let tickets = read["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 2);
    let code = tickets[0]["code"].as_str().unwrap().to_string();

    app.eventually(5, "the confirmation e-mail", || async { app.mails().iter().any(|m| m.contains(&code)) }).await;
    let confirmations = app.mails().into_iter().filter(|m| m.contains("Your tickets for")).count();
    assert_eq!(confirmations, 1, "exactly one confirmation e-mail");
    for t in ["order.placed", "payment.started", "payment.succeeded", "order.confirmed"] {
        app.eventually(5, t, || async { app.audit(t).await.len() == 1 }).await;
    }
    let pid = payment["id"].as_str().unwrap();
    let (s, read) = app.get(&format!("/api/v1/payments/{pid}"), Some(&token)).await;
    assert_eq!((s, read["status"].as_str()), (StatusCode::OK, Some("succeeded")));
    let (_, list) = app.get("/api/v1/payments", Some(&token)).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_declined_card_is_201_failed_and_the_order_can_still_be_paid() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 10, 600).await;
    let (_, token) = app.signup("ann").await;
    let (_, order) = app.order(&token, event, 1).await;
    let (s, declined) = app.pay(&token, &order, "tok_declined").await;
    assert_eq!(s, StatusCode::CREATED, "{declined}");
    assert_eq!(declined["status"], "failed");
    assert_eq!(declined["failure_reason"], "card_declined");
    assert_eq!(app.counts(event).await, (9, 1, 0, 10), "the hold survives a declined card");
    let (s, ok) = app.pay(&token, &order, "tok_ok").await;
    assert_eq!((s, ok["status"].as_str()), (StatusCode::CREATED, Some("succeeded")), "{ok}");
    let (s, again) = app.pay(&token, &order, "tok_ok").await;
    assert_eq!((s, again["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("already_paid")));
    app.eventually(5, "payment.failed audited", || async { app.audit("payment.failed").await.len() == 1 }).await;
}

#[tokio::test]
async fn a_payment_with_the_wrong_amount_is_422_and_charges_nothing() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 10, 600).await;
    let (_, token) = app.signup("ann").await;
    let (_, order) = app.order(&token, event, 1).await;
    let (s, body) = app
        .post(
            "/api/v1/payments",
            Some(&token),
            json!({"order_id": order["id"], "amount_cents": 1, "card_token": "tok_ok"}),
        )
        .await;
    assert_eq!((s, body["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("amount_cents")));
    let (s, _) = app
        .post(
            "/api/v1/payments",
            Some(&token),
            json!({"order_id": order["id"], "amount_cents": 1000, "card_token": "visa"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(payments::Entity::find().count(&app.db).await.unwrap(), 0);
}

#[tokio::test]
async fn a_payment_after_the_hold_expired_is_409_and_never_charged() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 10, 1).await;
    let (_, token) = app.signup("ann").await;
    let (_, order) = app.order(&token, event, 1).await;
    app.eventually(5, "the hold to expire", || async { app.counts(event).await.1 == 0 }).await;
    let (s, body) = app.pay(&token, &order, "tok_ok").await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("hold_expired")), "{body}");
    let oid = Uuid::parse_str(order["id"].as_str().unwrap()).unwrap();
    let charged = payments::Entity::find().filter(payments::Column::OrderId.eq(oid)).count(&app.db).await.unwrap();
    assert_eq!(charged, 0, "no payment was even attempted");
}

#[tokio::test]
async fn a_slow_payment_pins_the_hold_past_its_expiry_and_confirms() {
    // Hold for 1 s, the provider answers after 1.5 s: the hold must wait for it.
    let app = TestApp::spawn().await;
    let event = app.event(1000, 10, 1).await;
    let (_, token) = app.signup("ann").await;
    let (_, order) = app.order(&token, event, 1).await;
    let (s, body) = app.pay(&token, &order, "tok_slow").await;
    assert_eq!((s, body["status"].as_str()), (StatusCode::CREATED, Some("succeeded")), "{body}");
    assert_eq!(app.counts(event).await, (9, 0, 1, 10));
}

#[tokio::test]
async fn a_payment_outliving_the_pin_bound_is_refunded_and_both_charge_and_refund_are_audited() {
    // Hold for 1 s, pinned for at most 1 s, the provider answers after 3 s: the seats go back
    // before the charge succeeds, so the charge is refunded.
    let app = TestApp::spawn_with(|c| {
        c.booking.payment_pin_max_seconds = 1;
        c.payment.slow_ms = 3_000;
    })
    .await;
    let event = app.event(1000, 10, 1).await;
    let (_, token) = app.signup("ann").await;
    let (_, order) = app.order(&token, event, 1).await;
    let (s, body) = app.pay(&token, &order, "tok_slow").await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("hold_expired")), "{body}");
    assert_eq!(app.counts(event).await, (10, 0, 0, 10));
    let oid = Uuid::parse_str(order["id"].as_str().unwrap()).unwrap();
    let payment = payments::Entity::find().filter(payments::Column::OrderId.eq(oid)).one(&app.db).await.unwrap();
    assert_eq!(payment.as_ref().map(|p| p.status.as_str()), Some("refunded"));
    let (_, read) = app.get(&format!("/api/v1/orders/{oid}"), Some(&token)).await;
    assert_eq!((read["status"].as_str(), read["refund_cents"].as_i64()), (Some("expired"), Some(1000)), "{read}");
    for t in ["payment.started", "payment.succeeded", "payment.refunded"] {
        app.eventually(5, t, || async { app.audit(t).await.len() == 1 }).await;
    }
    let refunded = &app.audit("payment.refunded").await[0]["data"];
    assert_eq!((refunded["orderId"].as_str(), refunded["refundCents"].as_i64()), (order["id"].as_str(), Some(1000)));
}

#[tokio::test]
async fn an_idempotency_key_on_payments_replays_the_payment_and_rejects_another_body() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 10, 600).await;
    let (_, token) = app.signup("ann").await;
    let (_, order) = app.order(&token, event, 1).await;
    let send = |card: &str| {
        app.client
            .post(format!("{}/api/v1/payments", app.base))
            .bearer_auth(&token)
            .header("Idempotency-Key", "pay-once")
            .json(&json!({"order_id": order["id"], "amount_cents": 1000, "card_token": card}))
            .send()
    };
    let first = send("tok_ok").await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: serde_json::Value = first.json().await.unwrap();
    assert_eq!(first["status"], "succeeded");
    // Not 409 already_paid: the retry gets the first payment back.
    let again = send("tok_ok").await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<serde_json::Value>().await.unwrap()["id"], first["id"]);
    let other = send("tok_declined").await.unwrap();
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other.json::<serde_json::Value>().await.unwrap()["error"]["field"], "Idempotency-Key");
    let oid = Uuid::parse_str(order["id"].as_str().unwrap()).unwrap();
    let charged = payments::Entity::find().filter(payments::Column::OrderId.eq(oid)).count(&app.db).await.unwrap();
    assert_eq!(charged, 1, "one payment");
}

#[tokio::test]
async fn two_concurrent_payments_for_one_order_charge_once() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 10, 600).await;
    let (_, token) = app.signup("ann").await;
    let (_, order) = app.order(&token, event, 1).await;
    let (a, b) = tokio::join!(app.pay(&token, &order, "tok_slow"), app.pay(&token, &order, "tok_slow"));
    let statuses = [a.0, b.0];
    assert!(statuses.contains(&StatusCode::CREATED), "{a:?} {b:?}");
    assert!(statuses.contains(&StatusCode::CONFLICT), "{a:?} {b:?}");
    let oid = Uuid::parse_str(order["id"].as_str().unwrap()).unwrap();
    let paid = payments::Entity::find()
        .filter(payments::Column::OrderId.eq(oid))
        .filter(payments::Column::Status.eq("succeeded"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(paid, 1);
}

#[tokio::test]
async fn cancelling_a_confirmed_order_releases_its_seats_and_records_a_refund() {
    let app = TestApp::spawn().await;
    let event = app.event(3000, 10, 600).await;
    let (_, token) = app.signup("ann").await;
    let (_, order) = app.order(&token, event, 2).await;
    let (_, payment) = app.pay(&token, &order, "tok_ok").await;
    assert_eq!(app.counts(event).await, (8, 0, 2, 10));
    let id = order["id"].as_str().unwrap();
    let (s, cancelled) = app.post(&format!("/api/v1/orders/{id}/cancel"), Some(&token), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["refund_cents"], 6000);
    assert_eq!(app.counts(event).await, (10, 0, 0, 10));
    let (_, p) = app.get(&format!("/api/v1/payments/{}", payment["id"].as_str().unwrap()), Some(&token)).await;
    assert_eq!(p["status"], "refunded");
    assert_eq!(p["history"].as_array().unwrap().last().unwrap()["status"], "refunded");
    app.eventually(5, "the cancellation e-mail", || async {
        app.mails().iter().any(|m| m.contains("Order cancelled"))
    })
    .await;
}

#[tokio::test]
async fn someone_elses_order_cannot_be_paid_and_their_payment_cannot_be_read() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 10, 600).await;
    let (_, ann) = app.signup("ann").await;
    let (_, bob) = app.signup("bob").await;
    let (_, order) = app.order(&ann, event, 1).await;
    let (s, _) = app.pay(&bob, &order, "tok_ok").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, payment) = app.pay(&ann, &order, "tok_ok").await;
    let (s, _) = app.get(&format!("/api/v1/payments/{}", payment["id"].as_str().unwrap()), Some(&bob)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) =
        app.get(&format!("/api/v1/payments/{}", payment["id"].as_str().unwrap()), Some(&app.admin_token)).await;
    assert_eq!(s, StatusCode::OK);
}
