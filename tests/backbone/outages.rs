//! Servers that go away: booking goes on, and everything is delivered once they are back.
//! These stop and start the shared servers, so each holds the servers lock exclusively.

use std::time::Duration;

use mongodb::bson::doc;
use reqwest::StatusCode;
use serde_json::json;

use crate::{Backbone, SERVERS, Services, receive_until};

async fn unpublished(app: &crate::common::TestApp) -> i64 {
    boxoffice::store::outbox::pending(&app.db).await.unwrap()
}

// Several workers: stopping and starting Kafka runs a script that blocks its thread for seconds,
// and the app's relay must go on proving its lock meanwhile, as it does in the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_published_while_kafka_is_down_are_all_delivered_once_in_order() {
    let Some(services) = Services::get() else { return };
    let _exclusive = SERVERS.write().await;
    let bb = Backbone::new(services.clone()).await;
    let app = bb.app().await;
    let (_, token) = app.signup(&bb.user("eve")).await;
    // 21 orders by one person: no per-person limit here.
    let event = app.event_limited(1000, 100, 600, 10, Some(0)).await;
    let mut orders = Vec::new();
    let (s, o) = app.order(&token, event, 1).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    orders.push(o["id"].as_str().unwrap().to_string());

    let lock_lost = async || {
        let text = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
        let line = text.lines().find(|l| l.starts_with("boxoffice_outbox_relay_lock_lost_total ")).map(str::to_owned);
        line.and_then(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok())).expect("the lock-lost counter")
    };
    let lost_before = lock_lost().await;
    let kafka = services.outage("kafka");
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
    kafka.end();

    app.eventually(90, "the outbox to drain", || async { unpublished(&app).await == 0 }).await;
    // On PostgreSQL the relay holds a lock: a publish waiting out the broker kept proving it (it
    // lost it to its session's idle timeout on every try before, issue 36).
    assert_eq!(lock_lost().await, lost_before, "the relay kept its lock through the outage");
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

    let smtp = services.outage("smtp");
    let mongodb = services.outage("mongodb");
    let (s, reg) = app.post("/api/v1/registrations", Some(&token), json!({"event_id": event})).await;
    assert_eq!(s, StatusCode::CREATED, "{reg}");
    // Both consumers are now failing and retrying; the person's notifications say so.
    let registration_mail = |status: &'static str| {
        let (app, token) = (&app, &token);
        async move {
            let (_, page) = app.get("/api/v1/notifications", Some(token)).await;
            page["items"].as_array().is_some_and(|items| {
                items.iter().any(|n| {
                    n["subject"].as_str().is_some_and(|s| s.starts_with("You are registered")) && n["status"] == status
                })
            })
        }
    };
    app.eventually(30, "the registration e-mail recorded as failed", || registration_mail("failed")).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    smtp.end();
    mongodb.end();

    app.eventually(60, "the registration e-mail after SMTP returned", || async {
        bb.mails_starting(&address, "You are registered").await > 0
    })
    .await;
    app.eventually(60, "the audit document after MongoDB returned", || async {
        bb.audit_docs(doc! {"eventType": "registration.created"}).await.len() == 1
    })
    .await;
    app.eventually(30, "the registration e-mail recorded as sent", || registration_mail("sent")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let subjects = bb.mail_subjects(&address).await;
    assert_eq!(subjects.iter().filter(|s| s.starts_with("You are registered")).count(), 1, "{subjects:?}");
    assert_eq!(bb.audit_docs(doc! {"eventType": "user.created", "data.username": &name}).await.len(), 1);
}

/// `/readyz`'s word on `key` (`kafka` or `audit_log`), with the status.
async fn readiness(app: &crate::common::TestApp, key: &str) -> (StatusCode, String) {
    let (s, body) = app.get("/readyz", None).await;
    (s, body[key].as_str().unwrap_or_default().to_string())
}

#[tokio::test]
async fn after_a_kafka_outage_both_consumers_deliver_the_backlog_within_30_seconds_and_readiness_follows_it() {
    let Some(services) = Services::get() else { return };
    let _exclusive = SERVERS.write().await;
    let bb = Backbone::new(services.clone()).await;
    let app = bb.app().await;
    let name = bb.user("gus");
    let address = format!("{name}@example.com");
    let (_, token) = app.signup(&name).await;
    // Both groups are consuming before the outage.
    app.eventually(60, "the welcome e-mail", || async { !bb.mail_subjects(&address).await.is_empty() }).await;
    app.eventually(60, "user.created audited", || async {
        bb.audit_docs(doc! {"eventType": "user.created", "data.username": &name}).await.len() == 1
    })
    .await;
    let mut events = Vec::new();
    for _ in 0..5 {
        events.push(app.event(0, 10, 600).await);
    }

    let kafka = services.outage("kafka");
    let down = std::time::Instant::now();
    // Idle: nothing is published, yet readiness must see the outage by probing.
    app.eventually(5, "readiness to say kafka is degraded", || async {
        let (s, kafka) = readiness(&app, "kafka").await;
        s == StatusCode::OK && kafka.starts_with("degraded")
    })
    .await;
    for event in &events {
        let (s, reg) = app.post("/api/v1/registrations", Some(&token), json!({"event_id": event})).await;
        assert_eq!(s, StatusCode::CREATED, "booking goes on without the broker: {reg}");
    }
    // A long enough outage for librdkafka to queue many connection errors in each consumer.
    tokio::time::sleep(Duration::from_secs(25).saturating_sub(down.elapsed())).await;
    kafka.end();
    let back = std::time::Instant::now();

    app.eventually(5, "readiness to say kafka is ok", || async { readiness(&app, "kafka").await.1 == "ok" }).await;
    app.eventually(30, "the registration e-mails of the outage", || async {
        bb.mails_starting(&address, "You are registered").await == events.len()
    })
    .await;
    app.eventually(30, "the registrations of the outage audited", || async {
        bb.audit_docs(doc! {"eventType": "registration.created"}).await.len() == events.len()
    })
    .await;
    eprintln!("backlog delivered {:?} after the broker returned", back.elapsed());
    assert!(back.elapsed() < Duration::from_secs(31), "the backlog took {:?}", back.elapsed());
}

#[tokio::test]
async fn readiness_says_mongodb_is_degraded_within_seconds_and_stays_200() {
    let Some(services) = Services::get() else { return };
    let _exclusive = SERVERS.write().await;
    let bb = Backbone::new(services.clone()).await;
    let app = bb.app().await;
    assert_eq!(readiness(&app, "audit_log").await, (StatusCode::OK, "mongodb".to_string()));
    let mongodb = services.outage("mongodb");
    let outage = async {
        app.eventually(5, "readiness to say mongodb is degraded", || async {
            let (s, audit) = readiness(&app, "audit_log").await;
            s == StatusCode::OK && audit.starts_with("mongodb: degraded")
        })
        .await;
    };
    outage.await;
    mongodb.end();
    app.eventually(5, "readiness to say mongodb again", || async {
        readiness(&app, "audit_log").await == (StatusCode::OK, "mongodb".to_string())
    })
    .await;
}

#[tokio::test]
async fn sigterm_with_kafka_down_ends_the_process_within_the_shutdown_timeout() {
    let Some(services) = Services::get() else { return };
    let _exclusive = SERVERS.write().await;
    let bb = Backbone::new(services.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut config = crate::common::test_config(crate::common::sqlite_database(dir.path()), dir.path().join("mail"));
    bb.configure(&mut config);
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_boxoffice"))
        .arg("serve")
        .current_dir(dir.path())
        .env("BOXOFFICE_CONFIG", dir.path().join("none.toml"))
        .env("BOXOFFICE_HTTP__ADDR", format!("127.0.0.1:{port}"))
        .env("BOXOFFICE_GRPC__ADDR", "127.0.0.1:0")
        .env("BOXOFFICE_HTTP__SHUTDOWN_TIMEOUT_MS", "3000")
        .env("BOXOFFICE_DATABASE__URL", config.database.url.expose())
        .env("BOXOFFICE_KAFKA__BROKERS", &config.kafka.brokers)
        .env("BOXOFFICE_KAFKA__TOPIC_PREFIX", &config.kafka.topic_prefix)
        .env("BOXOFFICE_KAFKA__NOTIFIER_GROUP", &config.kafka.notifier_group)
        .env("BOXOFFICE_KAFKA__AUDITOR_GROUP", &config.kafka.auditor_group)
        .env("BOXOFFICE_MONGODB__URL", config.mongodb.url.expose())
        .env("BOXOFFICE_MONGODB__DATABASE", &config.mongodb.database)
        .env("BOXOFFICE_SEED__DEMO_DATA", "false")
        .env("BOXOFFICE_AUTH__ARGON2_MEMORY_KIB", "64")
        .env("BOXOFFICE_AUTH__ARGON2_ITERATIONS", "1")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..600 {
        if client.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status() == StatusCode::OK) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the server did not become ready");

    let kafka = services.outage("kafka");
    let outage = async {
        // Something for the relay to retry, and consumers that have lost their broker.
        let body = json!({"email": format!("{}@example.com", bb.user("hal")), "username": bb.user("hal"),
                          "password": "long enough phrase"});
        let res = client.post(format!("{base}/api/v1/auth/register")).json(&body).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let pid = server.id().unwrap();
        let sent = std::time::Instant::now();
        let kill = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
        assert!(kill.success());
        let exited = tokio::time::timeout(Duration::from_secs(15), server.wait()).await;
        (exited.is_ok(), sent.elapsed())
    };
    let (exited, took) = outage.await;
    kafka.end();
    assert!(exited, "still running 15 s after SIGTERM");
    eprintln!("stopped {took:?} after SIGTERM with Kafka down");
    assert!(took < Duration::from_secs(5), "shutdown took {took:?} (timeout 3 s)");
}

/// The group's lag on `topic` as the broker sees it: the end of each partition less the group's
/// committed offset (or the start, with nothing committed).
fn broker_lag(bb: &Backbone, group: &str, topic: &str) -> Option<i64> {
    use rdkafka::{
        ClientConfig, Offset, TopicPartitionList,
        consumer::{BaseConsumer, Consumer},
    };
    let timeout = Duration::from_secs(5);
    // A client in the group that never subscribes: it only reads the group's committed offsets.
    let reader: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", &bb.services.kafka).set("group.id", group).create().ok()?;
    let metadata = reader.fetch_metadata(Some(topic), timeout).ok()?;
    let mut partitions = TopicPartitionList::new();
    for p in metadata.topics().first()?.partitions() {
        partitions.add_partition(topic, p.id());
    }
    let committed = reader.committed_offsets(partitions, timeout).ok()?;
    let mut lag = 0;
    for p in committed.elements() {
        let (low, high) = reader.fetch_watermarks(topic, p.partition(), timeout).ok()?;
        let done = match p.offset() {
            Offset::Offset(o) => o.max(low),
            _ => low,
        };
        lag += (high - done).max(0);
    }
    Some(lag)
}

/// `boxoffice_consumer_lag_messages` for one group and topic, from `/metrics`.
async fn reported_lag(app: &crate::common::TestApp, group: &str, topic: &str) -> Option<i64> {
    let text = app.client.get(format!("{}/metrics", app.base)).send().await.ok()?.text().await.ok()?;
    let series = format!("boxoffice_consumer_lag_messages{{group=\"{group}\",topic=\"{topic}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&series)).and_then(|v| v.trim().parse::<f64>().ok()).map(|v| v as i64)
}

#[tokio::test]
async fn the_consumer_lag_metric_matches_the_brokers_view_while_mail_waits() {
    let Some(services) = Services::get() else { return };
    let _exclusive = SERVERS.write().await;
    let bb = Backbone::new(services.clone()).await;
    let app = bb.app().await;
    let first = bb.user("ivy");
    app.signup(&first).await;
    app.eventually(60, "the first welcome e-mail", || async {
        !bb.mail_subjects(&format!("{first}@example.com")).await.is_empty()
    })
    .await;
    let group = format!("notifier-{}", bb.id);
    let topic = bb.topic("user.created");
    let smtp = services.outage("smtp");
    for n in 0..4 {
        app.signup(&bb.user(&format!("jo{n}"))).await;
    }
    // The notifier is stuck retrying its batch: the broker sees the new users waiting.
    app.eventually(30, "the reported lag to match the broker's", || async {
        let broker = broker_lag(&bb, &group, &topic);
        let reported = reported_lag(&app, &group, &topic).await;
        broker.is_some_and(|b| b >= 4) && reported == broker
    })
    .await;
    smtp.end();
    app.eventually(60, "the lag to drain to 0", || async {
        broker_lag(&bb, &group, &topic) == Some(0) && reported_lag(&app, &group, &topic).await == Some(0)
    })
    .await;
}
