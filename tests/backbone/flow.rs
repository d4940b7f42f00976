//! Events through Kafka to the Notifier (SMTP) and the Auditor (MongoDB), and redelivery.

use std::time::Duration;

use mongodb::bson::doc;
use rdkafka::{
    ClientConfig,
    producer::{FutureProducer, FutureRecord},
};
use reqwest::StatusCode;
use serde_json::json;

use crate::{Backbone, SERVERS, Services, by_event_id, receive_until, wait_ready};

#[tokio::test]
async fn a_paid_order_reaches_kafka_one_email_and_the_audit_log() {
    let Some(services) = Services::get() else { return };
    let _shared = SERVERS.read().await;
    let bb = Backbone::new(services).await;
    let app = bb.app().await;
    let name = bb.user("ann");
    let (user, token) = app.signup(&name).await;
    let event = app.event(2500, 10, 600).await;
    let (s, order) = app.order(&token, event, 2).await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    let (s, paid) = app.pay(&token, &order, "tok_ok").await;
    assert_eq!(s, StatusCode::CREATED, "{paid}");
    let order_id = order["id"].as_str().unwrap();

    let consumer = bb.consumer(&["order.placed", "payment.succeeded", "order.confirmed"]);
    let got = receive_until(&consumer, 30, |got| {
        ["order.placed", "payment.succeeded", "order.confirmed"]
            .iter()
            .all(|t| got.iter().any(|m| m.headers["ce_type"] == *t && m.value["orderId"] == order_id))
    })
    .await;
    for m in got.iter().filter(|m| m.value["orderId"] == order_id) {
        let t = &m.headers["ce_type"];
        assert_eq!(m.topic, bb.topic(t));
        assert_eq!(m.headers["ce_specversion"], "1.0");
        assert_eq!(m.headers["ce_source"], "/boxoffice");
        assert_eq!(m.headers["content-type"], "application/json");
        assert!(chrono::DateTime::parse_from_rfc3339(&m.headers["ce_time"]).is_ok(), "{m:?}");
        assert!(uuid::Uuid::parse_str(&m.headers["ce_id"]).is_ok(), "{m:?}");
        // Keyed by the booking event, so one event's history stays on one partition, in order.
        assert_eq!(m.key, event.to_string(), "{m:?}");
        assert_eq!(m.value["userId"], user.to_string());
        assert_eq!(m.value["eventId"], event.to_string());
        assert_eq!(m.value["quantity"], 2);
        assert_eq!(m.value["amountCents"], 5000);
    }
    let confirmed = got.iter().find(|m| m.headers["ce_type"] == "order.confirmed").unwrap();
    assert_eq!(confirmed.value["tickets"].as_array().map(Vec::len), Some(2));

    let address = format!("{name}@example.com");
    app.eventually(30, "the confirmation e-mail", || async { bb.mails_starting(&address, "Your tickets").await > 0 })
        .await;
    for t in ["order.placed", "payment.succeeded", "order.confirmed"] {
        let ce_id = got.iter().find(|m| m.headers["ce_type"] == t).unwrap().headers["ce_id"].clone();
        app.eventually(30, "the audit document", || async { bb.audit_docs(by_event_id(&ce_id)).await.len() == 1 })
            .await;
        let docs = bb.audit_docs(by_event_id(&ce_id)).await;
        assert_eq!(docs[0].get_str("eventType").unwrap(), t);
        assert!(docs[0].get_datetime("occurredAt").is_ok() && docs[0].get_datetime("receivedAt").is_ok());
        assert_eq!(docs[0].get_document("data").unwrap().get_str("orderId").unwrap(), order_id);
    }
    // The API reads the audit log from MongoDB now.
    let listed = app.audit("order.confirmed").await;
    assert!(listed.iter().any(|a| a["data"]["orderId"] == order_id), "{listed:?}");
    // Exactly one confirmation, also after the consumers had time for any duplicate.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let subjects = bb.mail_subjects(&address).await;
    assert_eq!(subjects.iter().filter(|s| s.starts_with("Your tickets")).count(), 1, "{subjects:?}");
}

#[tokio::test]
async fn a_free_registration_is_one_event_one_email_one_audit_document() {
    let Some(services) = Services::get() else { return };
    let _shared = SERVERS.read().await;
    let bb = Backbone::new(services).await;
    let app = bb.app().await;
    let name = bb.user("bob");
    let (user, token) = app.signup(&name).await;
    let event = app.event(0, 50, 600).await;
    let (s, reg) = app.post("/api/v1/registrations", Some(&token), json!({"event_id": event})).await;
    assert_eq!(s, StatusCode::CREATED, "{reg}");

    let consumer = bb.consumer(&["registration.created"]);
    let got = receive_until(&consumer, 30, |got| !got.is_empty()).await;
    assert_eq!(got[0].value["userId"], user.to_string());
    assert_eq!(got[0].value["eventId"], event.to_string());
    let ce_id = got[0].headers["ce_id"].clone();

    let address = format!("{name}@example.com");
    app.eventually(30, "the registration e-mail", || async {
        bb.mails_starting(&address, "You are registered").await > 0
    })
    .await;
    app.eventually(30, "the audit document", || async { !bb.audit_docs(by_event_id(&ce_id)).await.is_empty() }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let docs = bb.audit_docs(doc! {"eventType": "registration.created"}).await;
    assert_eq!(docs.len(), 1);
    let subjects = bb.mail_subjects(&address).await;
    assert_eq!(subjects.iter().filter(|s| s.starts_with("You are registered")).count(), 1, "{subjects:?}");
}

/// Seed 000's own request, `POST /registrations {"userId", "eventId"}`, made by staff at the door
/// for someone else: the message on `registration.created` carries the `userId` and `eventId` its
/// consumers read, the person gets the confirmation e-mail, and MongoDB's `auditlogs` the
/// document `{"eventType": "registration.created", "data": {"userId", "eventId"}}`.
#[tokio::test]
async fn the_event_registration_systems_request_reaches_kafka_mail_and_mongodb_as_it_promised() {
    let Some(services) = Services::get() else { return };
    let _shared = SERVERS.read().await;
    let bb = Backbone::new(services).await;
    let app = bb.app().await;
    let name = bb.user("cleo");
    let (user, _) = app.signup(&name).await;
    let event = app.event(0, 50, 600).await;
    // The admin may register others, as staff may.
    let (s, reg) =
        app.post("/registrations", Some(&app.admin_token), json!({"userId": name.clone(), "eventId": event})).await;
    assert_eq!(s, StatusCode::CREATED, "{reg}");
    assert_eq!(reg["userId"], user.to_string());

    let consumer = bb.consumer(&["registration.created"]);
    let got = receive_until(&consumer, 30, |got| got.iter().any(|m| m.value["userId"] == user.to_string())).await;
    let message = got.iter().find(|m| m.value["userId"] == user.to_string()).unwrap();
    assert_eq!(message.topic, bb.topic("registration.created"));
    assert_eq!(message.value["eventId"], event.to_string());
    let address = format!("{name}@example.com");
    app.eventually(30, "the registration e-mail", || async {
        bb.mails_starting(&address, "You are registered").await > 0
    })
    .await;
    let ce_id = message.headers["ce_id"].clone();
    app.eventually(30, "the audit document", || async { !bb.audit_docs(by_event_id(&ce_id)).await.is_empty() }).await;
    let docs = bb.audit_docs(by_event_id(&ce_id)).await;
    assert_eq!(docs[0].get_str("eventType").unwrap(), "registration.created");
    let data = docs[0].get_document("data").unwrap();
    assert_eq!(data.get_str("userId").unwrap(), user.to_string());
    assert_eq!(data.get_str("eventId").unwrap(), event.to_string());
    assert_eq!(app.counts(event).await.2, 1, "one seat taken");
}

#[tokio::test]
async fn replaying_the_consumer_groups_sends_no_second_email_and_no_second_audit_document() {
    let Some(services) = Services::get() else { return };
    let _shared = SERVERS.read().await;
    let bb = Backbone::new(services).await;
    let app = bb.app().await;
    let name = bb.user("cy");
    let address = format!("{name}@example.com");
    let (_, token) = app.signup(&name).await;
    let event = app.event(0, 50, 600).await;
    let (s, _) = app.order(&token, event, 1).await;
    assert_eq!(s, StatusCode::CREATED);
    app.eventually(30, "the first e-mail", || async { bb.mails_starting(&address, "Your tickets").await > 0 }).await;
    app.eventually(30, "the first audit document", || async {
        !bb.audit_docs(doc! {"eventType": "order.confirmed"}).await.is_empty()
    })
    .await;

    // Restart with new consumer groups: they start from the beginning of every topic, which
    // redelivers everything the first groups already handled.
    let (mut config, dir) = app.stop().await;
    config.kafka.notifier_group = format!("notifier-replay-{}", bb.id);
    config.kafka.auditor_group = format!("auditor-replay-{}", bb.id);
    let app = crate::common::TestApp::start(config, dir).await;
    wait_ready(&app).await;
    // A second order on the same event: same key, same partition, after the first in the log,
    // so once its e-mail and audit document exist, the replayed first one has been handled.
    let (s, _) = app.order(&token, event, 1).await;
    assert_eq!(s, StatusCode::CREATED);
    app.eventually(30, "the second e-mail", || async { bb.mails_starting(&address, "Your tickets").await >= 2 }).await;
    app.eventually(30, "the second audit document", || async {
        bb.audit_docs(doc! {"eventType": "order.confirmed"}).await.len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let subjects = bb.mail_subjects(&address).await;
    assert_eq!(subjects.iter().filter(|s| s.starts_with("Your tickets")).count(), 2, "{subjects:?}");
    assert_eq!(subjects.iter().filter(|s| s.starts_with("Welcome")).count(), 1, "{subjects:?}");
    assert_eq!(bb.audit_docs(doc! {"eventType": "order.confirmed"}).await.len(), 2);
    assert_eq!(bb.audit_docs(doc! {"eventType": "user.created", "data.username": &name}).await.len(), 1);
}

#[tokio::test]
async fn a_poison_message_is_dead_lettered_and_the_consumers_keep_going() {
    let Some(services) = Services::get() else { return };
    let _shared = SERVERS.read().await;
    let bb = Backbone::new(services).await;
    let app = bb.app().await;
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &bb.services.kafka).create().unwrap();
    let topic = bb.topic("order.confirmed");
    producer
        .send(FutureRecord::to(&topic).key("not-an-id").payload("{definitely not json"), Duration::from_secs(10))
        .await
        .unwrap();
    // After the poison message: a real event that both consumers must still handle.
    let name = bb.user("dee");
    app.signup(&name).await;
    let address = format!("{name}@example.com");
    app.eventually(30, "the welcome e-mail", || async { !bb.mail_subjects(&address).await.is_empty() }).await;
    app.eventually(30, "the user.created audit", || async {
        bb.audit_docs(doc! {"eventType": "user.created", "data.username": &name}).await.len() == 1
    })
    .await;

    let dlq = bb.consumer(&["order.confirmed.dlq"]);
    let got = receive_until(&dlq, 30, |got| got.len() >= 2).await;
    let mut groups: Vec<_> = got.iter().map(|m| m.headers["consumer_group"].clone()).collect();
    groups.sort();
    assert_eq!(groups, vec![format!("auditor-{}", bb.id), format!("notifier-{}", bb.id)]);
    for m in &got {
        assert_eq!(m.key, "not-an-id");
        assert_eq!(m.headers["error"], "missing header ce_specversion", "{m:?}");
    }
}
