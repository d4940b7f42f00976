//! The audit log on MongoDB (any server speaking its wire protocol, e.g. FerretDB): collection
//! `auditlogs` with documents `{eventType, data, eventId, occurredAt, receivedAt}` and a unique
//! index on `eventId`, so recording a redelivered event changes nothing.
//!
//! The client connects lazily, so start-up does not wait for MongoDB; the index is ensured
//! before the first write and again after a failure.

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::{
    Client, Collection, IndexModel,
    bson::{self, Bson, Document, doc, oid::ObjectId},
    error::{ErrorKind, WriteFailure},
    options::{ClientOptions, IndexOptions},
};
use uuid::Uuid;

use crate::domain::DomainEvent;

/// A probe that takes longer than this counts as no answer.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// MongoDB's error code for a duplicate key.
const DUPLICATE_KEY: i32 = 11000;

/// A MongoDB call that failed, and what it was for.
#[derive(Debug, Clone, thiserror::Error)]
#[error("mongodb: {what}")]
pub struct AuditLogError {
    what: &'static str,
    #[source]
    source: mongodb::error::Error,
}

/// Tags a MongoDB result with what the call was for.
fn doing(what: &'static str) -> impl FnOnce(mongodb::error::Error) -> AuditLogError {
    move |source| AuditLogError { what, source }
}

pub struct MongoAuditLog {
    coll: Collection<Document>,
    indexed: AtomicBool,
    /// Whether the server answered the last probe ([`MongoAuditLog::watch_health`]).
    reachable: AtomicBool,
}

/// One audit document as read back.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub id: ObjectId,
    pub event_type: String,
    pub data: serde_json::Value,
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
}

impl MongoAuditLog {
    /// Parses the URL; does not contact the server.
    pub async fn new(url: &str, database: &str) -> Result<Self, AuditLogError> {
        let mut options = ClientOptions::parse(url).await.map_err(doing("parsing mongodb.url"))?;
        options.app_name = Some("boxoffice".into());
        // Fail a call within seconds when the server is away; the caller retries with backoff.
        options.server_selection_timeout.get_or_insert(std::time::Duration::from_secs(5));
        options.connect_timeout.get_or_insert(std::time::Duration::from_secs(5));
        let client = Client::with_options(options).map_err(doing("creating the client for mongodb.url"))?;
        Ok(Self {
            coll: client.database(database).collection("auditlogs"),
            indexed: AtomicBool::new(false),
            reachable: AtomicBool::new(true),
        })
    }

    /// Whether MongoDB answered its last probe.
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// Pings the server until `stop` (see [`crate::retry::keep_probing`]).
    pub async fn watch_health(self: std::sync::Arc<Self>, stop: tokio::sync::watch::Receiver<bool>) {
        let this = self.clone();
        let ping = move || {
            let db = this.coll.client().database("admin");
            async move {
                let ping = db.run_command(doc! {"ping": 1});
                matches!(tokio::time::timeout(PROBE_TIMEOUT, ping).await, Ok(Ok(_)))
            }
        };
        crate::retry::keep_probing("mongodb", &self.reachable, ping, || {}, stop).await;
    }

    async fn ensure_index(&self) -> Result<(), AuditLogError> {
        if self.indexed.load(Ordering::Relaxed) {
            return Ok(());
        }
        let unique = IndexModel::builder()
            .keys(doc! {"eventId": 1})
            .options(IndexOptions::builder().unique(true).name("eventId_unique".to_string()).build())
            .build();
        self.coll.create_index(unique).await.map_err(doing("creating the eventId index"))?;
        self.indexed.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Inserts one document per event; events already recorded are skipped.
    pub async fn record(&self, events: &[DomainEvent]) -> Result<(), AuditLogError> {
        if events.is_empty() {
            return Ok(());
        }
        self.ensure_index().await?;
        let received = bson::DateTime::from_chrono(Utc::now());
        let docs = events.iter().map(|e| {
            doc! {
                "eventType": e.event_type().as_str(),
                "data": bson::to_bson(&e.payload).unwrap_or(Bson::Null),
                "eventId": e.id.to_string(),
                "occurredAt": bson::DateTime::from_chrono(e.occurred_at),
                "receivedAt": received,
            }
        });
        match self.coll.insert_many(docs).ordered(false).await {
            Ok(_) => Ok(()),
            Err(e) if only_duplicates(&e) => Ok(()),
            Err(e) => {
                self.indexed.store(false, Ordering::Relaxed);
                Err(doing("inserting audit documents")(e))
            }
        }
    }

    /// Up to `limit` documents in insertion order after `after`, or (with `before`) the
    /// `limit` documents just before it, oldest first.
    pub async fn page(
        &self,
        event_type: Option<&str>,
        after: Option<ObjectId>,
        before: Option<ObjectId>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, AuditLogError> {
        let mut filter = Document::new();
        if let Some(t) = event_type {
            filter.insert("eventType", t);
        }
        // Both bounds: the records between them, from the first.
        let backwards = before.is_some() && after.is_none();
        match (after, before) {
            (Some(a), Some(b)) => filter.insert("_id", doc! {"$gt": a, "$lt": b}),
            (Some(a), None) => filter.insert("_id", doc! {"$gt": a}),
            (None, Some(b)) => filter.insert("_id", doc! {"$lt": b}),
            (None, None) => None,
        };
        let sort = if backwards {
            doc! {"_id": -1}
        } else {
            doc! {"_id": 1}
        };
        let cursor = self.coll.find(filter).sort(sort).limit(limit).await.map_err(doing("reading the audit log"))?;
        let docs: Vec<Document> = cursor.try_collect().await.map_err(doing("reading the audit log"))?;
        let mut out: Vec<AuditRecord> = docs.iter().filter_map(read_record).collect();
        if backwards {
            out.reverse();
        }
        Ok(out)
    }
}

fn only_duplicates(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::InsertMany(m) => {
            m.write_concern_error.is_none()
                && m.write_errors.as_ref().is_some_and(|w| w.iter().all(|w| w.code == DUPLICATE_KEY))
        }
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        _ => false,
    }
}

fn read_record(d: &Document) -> Option<AuditRecord> {
    Some(AuditRecord {
        id: d.get_object_id("_id").ok()?,
        event_type: d.get_str("eventType").ok()?.to_string(),
        data: d.get("data").map(|b| b.clone().into_relaxed_extjson()).unwrap_or(serde_json::Value::Null),
        event_id: Uuid::parse_str(d.get_str("eventId").ok()?).ok()?,
        occurred_at: d.get_datetime("occurredAt").ok()?.to_chrono(),
        received_at: d.get_datetime("receivedAt").ok()?.to_chrono(),
    })
}
