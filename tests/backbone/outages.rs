//! Servers that go away: booking goes on, and everything is delivered once they are back.
//! These stop and start the shared servers, so each holds the servers lock exclusively.

use std::time::Duration;

use mongodb::bson::doc;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::{Backbone, SERVERS, Services, receive_until};

async fn unpublished(app: &crate::common::TestApp) -> i64 {
    let backend = app.db.get_database_backend();
    let row = app
        .db
        .query_one_raw(Statement::from_string(backend, "SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL"))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

#[tokio::test]
async fn events_published_while_kafka_is_down_are_all_delivered_once_in_order() {
    let Some(services) = Services::get() else { return };
    let _exclusive = SERVERS.write().await;
    let bb = Backbone::new(services.clone()).await;
    let app = bb.app().await;
    let (_, token) = app.signup(&bb.user("eve")).await;
    let event = app.event(1000, 100, 600).await;
    let mut orders = Vec::new();
    let (s, o) = app.order(&token, event, 1).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    orders.push(o["id"].as_str().unwrap().to_string());

    services.script("down", "kafka");
    let outage = async {
        for _ in 0..20 {
            let (s, o) = app.order(&token, event, 1).await;
            // Booking goes on without the broker.
            assert_eq!(s, StatusCode::CREATED, "{o}");
            orders.push(o["id"].as_str().unwrap().to_string());
        }
        app.eventually(30, "the relay to notice the outage", || async {
            app.get("/readyz", None).await.1["kafka"].as_str().is_some_and(|k| k.starts_with("degraded"))
        })
        .await;
        assert!(unpublished(&app).await > 0, "the outbox holds the events while Kafka is away");
        // Still ready: the instance keeps taking bookings.
        assert_eq!(app.get("/readyz", None).await.0, StatusCode::OK);
    };
    outage.await;
    services.script("up", "kafka");

    app.eventually(90, "the outbox to drain", || async { unpublished(&app).await == 0 }).await;
    app.eventually(120, "every order.placed audited", || async {
        bb.audit_docs(doc! {"eventType": "order.placed"}).await.len() >= orders.len()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let docs = bb.audit_docs(doc! {"eventType": "order.placed"}).await;
    let mut audited: Vec<String> =
        docs.iter().map(|d| d.get_document("data").unwrap().get_str("orderId").unwrap().to_string()).collect();
    audited.sort();
    let mut expected = orders.clone();
    expected.sort();
    assert_eq!(audited, expected, "each order audited exactly once");

    // On Kafka, one event's orders are on one partition in the order they were placed.
    let consumer = bb.consumer(&["order.placed"]);
    let got = receive_until(&consumer, 120, |got| {
        orders.iter().all(|o| got.iter().any(|m| m.value["orderId"].as_str() == Some(o.as_str())))
    })
    .await;
    let mut seen: Vec<String> = Vec::new();
    for m in &got {
        let id = m.value["orderId"].as_str().unwrap().to_string();
        if !seen.contains(&id) {
            seen.push(id);
        }
    }
    assert_eq!(seen, orders, "per-key order holds across the outage");
}

#[tokio::test]
async fn smtp_and_mongodb_outages_delay_mail_and_audit_but_lose_nothing() {
    let Some(services) = Services::get() else { return };
    let _exclusive = SERVERS.write().await;
    let bb = Backbone::new(services.clone()).await;
    let app = bb.app().await;
    let name = bb.user("fay");
    let address = format!("{name}@example.com");
    let (_, token) = app.signup(&name).await;
    app.eventually(30, "the welcome e-mail", || async { !bb.mail_subjects(&address).await.is_empty() }).await;
    let event = app.event(0, 10, 600).await;

    services.script("down", "smtp");
    services.script("down", "mongodb");
    let (s, reg) = app.post("/api/v1/registrations", Some(&token), json!({"event_id": event})).await;
    assert_eq!(s, StatusCode::CREATED, "{reg}");
    // Both consumers are now failing and retrying.
    tokio::time::sleep(Duration::from_secs(3)).await;
    services.script("up", "smtp");
    services.script("up", "mongodb");

    app.eventually(60, "the registration e-mail after SMTP returned", || async {
        bb.mails_starting(&address, "You are registered").await > 0
    })
    .await;
    app.eventually(60, "the audit document after MongoDB returned", || async {
        bb.audit_docs(doc! {"eventType": "registration.created"}).await.len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let subjects = bb.mail_subjects(&address).await;
    assert_eq!(subjects.iter().filter(|s| s.starts_with("You are registered")).count(), 1, "{subjects:?}");
    assert_eq!(bb.audit_docs(doc! {"eventType": "user.created", "data.username": &name}).await.len(), 1);
}
