//! The real backbone servers (Kafka, a MongoDB wire-protocol server, Mailpit for SMTP) as the
//! tests see them: where they are, one test's private slice of them (topic prefix, consumer
//! groups, MongoDB database), and readers for what reached each. Shared by the backbone suite and
//! the cluster tests.

use std::{collections::HashMap, path::PathBuf, time::Duration};

use boxoffice::Config;
use mongodb::bson::{Document, doc};
use rdkafka::{
    ClientConfig, Message,
    consumer::{Consumer, StreamConsumer},
    message::Headers,
};
use serde_json::Value;
use uuid::Uuid;

use crate::common::TestApp;

/// Where the real servers are.
#[derive(Clone)]
pub struct Services {
    pub kafka: String,
    pub mongodb: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub mailpit: String,
}

impl Services {
    /// From the environment; without it the test cannot run, which fails loudly in CI.
    pub fn get() -> Option<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let all = (|| {
            let smtp = var("BOXOFFICE_TEST_SMTP")?;
            let (host, port) = smtp.rsplit_once(':')?;
            Some(Self {
                kafka: var("BOXOFFICE_TEST_KAFKA_BROKERS")?,
                mongodb: var("BOXOFFICE_TEST_MONGODB_URL")?,
                smtp_host: host.to_string(),
                smtp_port: port.parse().ok()?,
                mailpit: var("BOXOFFICE_TEST_MAILPIT_URL")?,
            })
        })();
        if all.is_none() {
            assert!(
                std::env::var("CI").is_err(),
                "CI must run the backbone tests: run scripts/services.sh up and export what scripts/services.sh env prints"
            );
            eprintln!("skipped: the real services are not configured (see scripts/services.sh env)");
        }
        all
    }

    /// Runs `scripts/services.sh <cmd> <name>` (the outage tests stop and start servers).
    pub fn script(&self, cmd: &str, name: &str) {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/services.sh");
        let out = std::process::Command::new("bash").arg(script).args([cmd, name]).output().unwrap();
        assert!(out.status.success(), "services.sh {cmd} {name}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Stops server `name` until the returned guard is ended or dropped, so a failing assertion
    /// during the outage does not leave it down for the tests after it.
    pub fn outage(&self, name: &'static str) -> Outage {
        self.script("down", name);
        Outage { services: self.clone(), name, over: false }
    }
}

/// A stopped server, started again by [`Outage::end`] or on drop.
pub struct Outage {
    services: Services,
    name: &'static str,
    over: bool,
}

impl Outage {
    pub fn end(mut self) {
        self.over = true;
        self.services.script("up", self.name);
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        if !self.over {
            let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/services.sh");
            let _ = std::process::Command::new("bash").arg(script).args(["up", self.name]).output();
        }
    }
}

/// One test's private slice of the servers.
pub struct Backbone {
    pub services: Services,
    pub id: String,
    pub prefix: String,
    pub mongo: mongodb::Database,
}

impl Backbone {
    pub async fn new(services: Services) -> Self {
        let id = Uuid::new_v4().simple().to_string()[..12].to_string();
        let client = mongodb::Client::with_uri_str(&services.mongodb).await.unwrap();
        let mongo = client.database(&format!("bx_{id}"));
        Self { prefix: format!("t{id}."), services, id, mongo }
    }

    /// Points a configuration at the real servers, with this test's names.
    pub fn configure(&self, c: &mut Config) {
        c.kafka.brokers = self.services.kafka.clone();
        c.kafka.topic_prefix = self.prefix.clone();
        c.kafka.partitions = 2;
        c.kafka.notifier_group = format!("notifier-{}", self.id);
        c.kafka.auditor_group = format!("auditor-{}", self.id);
        c.mongodb.url = self.services.mongodb.clone().into();
        c.mongodb.database = format!("bx_{}", self.id);
        c.mail.transport = "smtp".into();
        c.mail.smtp_host = self.services.smtp_host.clone();
        c.mail.smtp_port = self.services.smtp_port;
    }

    /// The same configuration as environment variables, for a `boxoffice` process.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("BOXOFFICE_KAFKA__BROKERS", self.services.kafka.clone()),
            ("BOXOFFICE_KAFKA__TOPIC_PREFIX", self.prefix.clone()),
            ("BOXOFFICE_KAFKA__PARTITIONS", "2".into()),
            ("BOXOFFICE_KAFKA__NOTIFIER_GROUP", format!("notifier-{}", self.id)),
            ("BOXOFFICE_KAFKA__AUDITOR_GROUP", format!("auditor-{}", self.id)),
            ("BOXOFFICE_MONGODB__URL", self.services.mongodb.clone()),
            ("BOXOFFICE_MONGODB__DATABASE", format!("bx_{}", self.id)),
            ("BOXOFFICE_MAIL__TRANSPORT", "smtp".into()),
            ("BOXOFFICE_MAIL__SMTP_HOST", self.services.smtp_host.clone()),
            ("BOXOFFICE_MAIL__SMTP_PORT", self.services.smtp_port.to_string()),
        ]
    }

    /// The app on these servers, once Kafka's topics exist (readiness says so).
    pub async fn app(&self) -> TestApp {
        let app = TestApp::spawn_with(|c| self.configure(c)).await;
        wait_ready(&app).await;
        app
    }

    /// A user name unique across tests (they share Mailpit).
    pub fn user(&self, name: &str) -> String {
        format!("{name}_{}", self.id)
    }

    pub fn topic(&self, event_type: &str) -> String {
        format!("{}{event_type}", self.prefix)
    }

    /// Audit documents matching `filter`.
    pub async fn audit_docs(&self, filter: Document) -> Vec<Document> {
        use futures::TryStreamExt;
        let cursor = self.mongo.collection::<Document>("auditlogs").find(filter).await.unwrap();
        cursor.try_collect().await.unwrap()
    }

    /// What Mailpit received for `address`: each message's summary (`Subject`, `MessageID`,
    /// `Created`, ...).
    pub async fn mail_messages(&self, address: &str) -> Vec<Value> {
        let url = format!("{}/api/v1/search?query=to:{address}&limit=200", self.services.mailpit);
        let body: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        body["messages"].as_array().unwrap().clone()
    }

    /// The subjects of the e-mails Mailpit received for `address`.
    pub async fn mail_subjects(&self, address: &str) -> Vec<String> {
        let messages = self.mail_messages(address).await;
        messages.iter().map(|m| m["Subject"].as_str().unwrap_or_default().to_string()).collect()
    }

    /// How many e-mails to `address` have a subject starting with `prefix`.
    pub async fn mails_starting(&self, address: &str, prefix: &str) -> usize {
        self.mail_subjects(address).await.iter().filter(|s| s.starts_with(prefix)).count()
    }

    /// A consumer of this test's topics from the beginning, in a group of its own.
    pub fn consumer(&self, event_types: &[&str]) -> StreamConsumer {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.services.kafka)
            .set("group.id", format!("test-{}", Uuid::new_v4().simple()))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let topics: Vec<String> = event_types.iter().map(|t| self.topic(t)).collect();
        consumer.subscribe(&topics.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
        consumer
    }
}

/// One received Kafka message, decoded for assertions.
#[derive(Debug, Clone)]
pub struct Received {
    pub topic: String,
    pub key: String,
    pub headers: HashMap<String, String>,
    pub value: Value,
}

/// Receives until `done` says the collection is complete, or fails after `secs`.
pub async fn receive_until(
    consumer: &StreamConsumer,
    secs: u64,
    mut done: impl FnMut(&[Received]) -> bool,
) -> Vec<Received> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done(&got) {
        let m = match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Err(_) => panic!("timed out; received so far: {got:#?}"),
            Ok(Ok(m)) => m,
            // Metadata of just-created topics may reach this client a moment later.
            Ok(Err(e)) => {
                eprintln!("test consumer: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        got.push(Received {
            topic: m.topic().to_string(),
            key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
            headers,
            value: serde_json::from_slice(m.payload().unwrap_or_default()).unwrap_or(Value::Null),
        });
    }
    got
}

pub async fn wait_ready(app: &TestApp) {
    app.eventually(60, "readiness with Kafka topics", || async { app.get("/readyz", None).await.0 == 200 }).await;
}

pub fn by_event_id(id: &str) -> Document {
    doc! {"eventId": id}
}
