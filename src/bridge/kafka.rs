//! The Kafka transport: the outbox relay publishes through [`KafkaBridge`], and
//! [`run_consumer`] feeds each consumer group's messages to a [`Subscriber`] (the Notifier or the
//! Auditor actor).
//!
//! Wire format: one topic per domain event type (`<prefix>order.placed`, ...), key = the
//! aggregate id (the booking event for order and inventory events, so one event's history stays
//! in order on one partition), value = the JSON payload, and the CloudEvents Kafka binding in
//! binary mode for the envelope: headers `ce_specversion`, `ce_id`, `ce_type`, `ce_source`,
//! `ce_time` and `content-type`.
//!
//! Delivery is at least once end to end: the relay moves its position past outbox rows only after
//! the broker acknowledged them (idempotent producer, `acks=all`), and a consumer commits an offset only after
//! its side effect succeeded. Consumers are idempotent on `ce_id`. A message that can never be
//! decoded goes to `<topic>.dlq` with the reason in an `error` header, and the partition moves on.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    consumer::{CommitMode, Consumer, StreamConsumer},
    error::{KafkaError, RDKafkaErrorCode},
    message::{Header, Headers, OwnedHeaders, OwnedMessage},
    producer::{FutureProducer, FutureRecord, Producer},
    util::Timeout,
};
use tokio::sync::watch;
use uuid::Uuid;

use super::{
    bus::Subscriber,
    error::{BridgeError, DecodeError},
};
use crate::{
    config::KafkaConfig,
    domain::{DomainEvent, EventType, Payload},
    error::Report,
    instruments,
    retry::Backoff,
};

/// The `ce_source` of every event Boxoffice publishes.
pub const SOURCE: &str = "/boxoffice";
/// Most messages a consumer hands to its subscriber at once.
const CONSUMER_BATCH: usize = 256;
/// A metadata probe that takes longer than this counts as no answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often each consumer group reports its lag.
const LAG_EVERY: Duration = Duration::from_secs(5);

/// `<prefix><event type>`.
pub fn topic(prefix: &str, t: EventType) -> String {
    format!("{prefix}{}", t.as_str())
}

/// Where a topic's undecodable messages go.
pub fn dlq_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

fn base_config(c: &KafkaConfig) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", c.brokers.trim())
        .set("client.id", "boxoffice")
        // Find a broker that came back within a second, not librdkafka's default ten.
        .set("reconnect.backoff.max.ms", "1000");
    config
}

/// The producer side, shared by the outbox relay and the consumers' dead-letter writes.
pub struct KafkaBridge {
    /// Replaced when librdkafka reports a fatal error (the idempotent producer cannot go on
    /// after one; a new producer starts a new producer id and delivers the retried batch).
    producer: std::sync::RwLock<FutureProducer<QuietContext>>,
    config: KafkaConfig,
    /// True once every topic exists (start-up does not wait for the broker).
    topics_ready: AtomicBool,
    /// False after a publish failed, until one succeeds: the broker is away, the outbox grows.
    healthy: AtomicBool,
    /// Whether the cluster answered the last metadata probe ([`KafkaBridge::watch_health`]).
    reachable: AtomicBool,
}

impl KafkaBridge {
    pub fn new(c: &KafkaConfig) -> anyhow::Result<Self> {
        Ok(Self {
            producer: std::sync::RwLock::new(new_producer(c)?),
            config: c.clone(),
            topics_ready: AtomicBool::new(false),
            healthy: AtomicBool::new(true),
            reachable: AtomicBool::new(true),
        })
    }

    fn producer(&self) -> FutureProducer<QuietContext> {
        self.producer.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// After a failed send: a producer in a fatal state is replaced, other errors are transient.
    fn recover(&self, failed: &FutureProducer<QuietContext>) {
        if let Some((code, reason)) = failed.client().fatal_error() {
            tracing::error!(%code, %reason, "kafka producer failed fatally; starting a new one");
            match new_producer(&self.config) {
                Ok(p) => *self.producer.write().unwrap_or_else(|p| p.into_inner()) = p,
                Err(e) => tracing::error!(error = %e, "kafka producer could not be recreated"),
            }
        }
    }

    pub fn topics_ready(&self) -> bool {
        self.topics_ready.load(Ordering::Relaxed)
    }

    /// Reachable, and the last publish (if any since it came back) succeeded.
    pub fn healthy(&self) -> bool {
        self.reachable.load(Ordering::Relaxed) && self.healthy.load(Ordering::Relaxed)
    }

    /// Asks the cluster for its metadata every few seconds until `stop`, so an outage shows while
    /// nothing is being published, and a return shows before the relay's next try.
    pub async fn watch_health(self: Arc<Self>, stop: watch::Receiver<bool>) {
        let this = self.clone();
        let probe = move || {
            let producer = this.producer();
            async move {
                let ask = move || producer.client().fetch_metadata(None, Timeout::After(PROBE_TIMEOUT)).is_ok();
                tokio::task::spawn_blocking(ask).await.unwrap_or(false)
            }
        };
        // Back: the relay's next publish will say whether publishing works again.
        let on_return = || self.healthy.store(true, Ordering::Relaxed);
        crate::retry::keep_probing("kafka", &self.reachable, probe, on_return, stop).await;
    }

    /// Every event topic and its dead-letter topic.
    pub fn all_topics(&self) -> Vec<String> {
        EventType::ALL.iter().map(|t| topic(&self.config.topic_prefix, *t)).flat_map(|t| [dlq_topic(&t), t]).collect()
    }

    /// Creates missing topics; existing ones are left alone.
    pub async fn ensure_topics(&self) -> Result<(), BridgeError> {
        let admin: AdminClient<QuietContext> = base_config(&self.config)
            .create_with_context(QuietContext::default())
            .map_err(BridgeError::kafka("creating the admin client"))?;
        let names = self.all_topics();
        let topics: Vec<NewTopic> = names
            .iter()
            .map(|n| NewTopic::new(n, self.config.partitions, TopicReplication::Fixed(self.config.replication_factor)))
            .collect();
        let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
        let results = admin.create_topics(&topics, &options).await.map_err(BridgeError::kafka("creating topics"))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(BridgeError::CreateTopic { topic, code }),
            }
        }
        self.topics_ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Ensures the topics, retrying with capped backoff until it works or `shutdown`.
    pub async fn ensure_topics_until_done(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Backoff::standard();
        loop {
            let delay = backoff.next_delay();
            match self.ensure_topics().await {
                Ok(()) => {
                    tracing::info!(brokers = %self.config.brokers, "kafka topics ready");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %Report(&e), retry_ms = delay.as_millis() as u64, "kafka not ready yet")
                }
            }
            if sleep_or_shutdown(delay, &mut shutdown).await {
                return;
            }
        }
    }

    /// Publishes a batch and waits for the broker to acknowledge every message. On error some
    /// may have been delivered; the caller offers the whole batch again (consumers deduplicate).
    pub async fn publish(&self, events: &[DomainEvent]) -> Result<(), BridgeError> {
        let encoded: Vec<Encoded> = events.iter().map(|e| encode(&self.config.topic_prefix, e)).collect();
        let producer = self.producer();
        // Queued in order (join_all polls them in order), so per-partition order holds.
        let sends = encoded.iter().map(|m| {
            let record = FutureRecord::to(&m.topic).key(&m.key).payload(&m.payload).headers(m.headers.clone());
            producer.send(record, Timeout::After(Duration::from_millis(self.config.message_timeout_ms)))
        });
        let results = futures::future::join_all(sends).await;
        let failed = results.iter().filter(|r| r.is_err()).count();
        if let Some(Err((e, _))) = results.into_iter().find(|r| r.is_err()) {
            self.healthy.store(false, Ordering::Relaxed);
            self.recover(&producer);
            return Err(BridgeError::kafka(format!("{failed} of {} messages not acknowledged", events.len()))(e));
        }
        self.healthy.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Sends an undecodable message to its topic's dead-letter topic, with the reason.
    async fn dead_letter(&self, msg: &OwnedMessage, group: &str, error: &str) -> Result<(), BridgeError> {
        let dlq = dlq_topic(msg.topic());
        let mut headers = OwnedHeaders::new();
        if let Some(h) = msg.headers() {
            for h in h.iter() {
                headers = headers.insert(Header { key: h.key, value: h.value });
            }
        }
        let headers = headers
            .insert(Header { key: "error", value: Some(error) })
            .insert(Header { key: "consumer_group", value: Some(group) })
            .insert(Header { key: "original_partition", value: Some(&msg.partition().to_string()) })
            .insert(Header { key: "original_offset", value: Some(&msg.offset().to_string()) });
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&dlq).headers(headers);
        if let Some(k) = msg.key() {
            record = record.key(k);
        }
        if let Some(p) = msg.payload() {
            record = record.payload(p);
        }
        self.producer()
            .send(record, Timeout::After(Duration::from_millis(self.config.message_timeout_ms)))
            .await
            .map(|_| metrics::counter!(instruments::DLQ_MESSAGES, "topic" => dlq.clone()).increment(1))
            .map_err(|(e, _)| BridgeError::kafka(format!("dead-lettering to {dlq}"))(e))
    }
}

fn new_producer(c: &KafkaConfig) -> rdkafka::error::KafkaResult<FutureProducer<QuietContext>> {
    base_config(c)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", c.message_timeout_ms.to_string())
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .create_with_context(QuietContext::default())
}

/// How long a librdkafka error or error-level log line is not repeated.
const QUIET_FOR: Duration = Duration::from_secs(60);

/// Every Kafka client's context: librdkafka's errors and error-level log lines, each kind logged
/// once and then at most once per [`QUIET_FOR`] (with the count of those left out). While the
/// brokers are away librdkafka reports `AllBrokersDown` and the refused connection on every
/// reconnect of every client: 375 identical ERROR lines in 75 s before. The outage itself is
/// logged once by [`KafkaBridge::watch_health`], when it begins and when it ends.
#[derive(Default)]
pub struct QuietContext {
    seen: std::sync::Mutex<Repeats>,
}

/// When each kind of message was last logged, and how many of it were left out since.
#[derive(Default)]
struct Repeats(HashMap<String, (std::time::Instant, u64)>);

impl Repeats {
    /// Whether a message of `kind` at `now` is logged, and how many were left out before it.
    fn admit(&mut self, kind: &str, now: std::time::Instant) -> Option<u64> {
        match self.0.get_mut(kind) {
            Some((last, skipped)) if now.duration_since(*last) < QUIET_FOR => {
                *skipped += 1;
                None
            }
            Some((last, skipped)) => {
                *last = now;
                Some(std::mem::take(skipped))
            }
            None => {
                self.0.insert(kind.to_owned(), (now, 0));
                Some(0)
            }
        }
    }
}

impl QuietContext {
    fn admit(&self, kind: &str) -> Option<u64> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).admit(kind, std::time::Instant::now())
    }
}

impl rdkafka::ClientContext for QuietContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error | L::Warning => {
                // The facility and the message's start (without the broker's changing details).
                let kind = format!("{fac}:{}", message.split(':').next().unwrap_or(message));
                if let Some(left_out) = self.admit(&kind) {
                    tracing::warn!(target: "librdkafka", facility = fac, left_out, "{message}");
                }
            }
            L::Notice | L::Info => tracing::info!(target: "librdkafka", facility = fac, "{message}"),
            L::Debug => tracing::debug!(target: "librdkafka", facility = fac, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let kind = error.rdkafka_error_code().map_or_else(|| error.to_string(), |code| format!("{code:?}"));
        if let Some(left_out) = self.admit(&kind) {
            tracing::warn!(target: "librdkafka", %error, reason, left_out, "kafka client error");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for QuietContext {}

/// A domain event ready for the producer.
struct Encoded {
    topic: String,
    key: String,
    payload: String,
    headers: OwnedHeaders,
}

fn encode(prefix: &str, e: &DomainEvent) -> Encoded {
    let headers = OwnedHeaders::new_with_capacity(6)
        .insert(Header { key: "ce_specversion", value: Some("1.0") })
        .insert(Header { key: "ce_id", value: Some(&e.id.to_string()) })
        .insert(Header { key: "ce_type", value: Some(e.event_type().as_str()) })
        .insert(Header { key: "ce_source", value: Some(SOURCE) })
        .insert(Header { key: "ce_time", value: Some(&e.occurred_at.to_rfc3339()) })
        .insert(Header { key: "content-type", value: Some("application/json") });
    Encoded {
        topic: topic(prefix, e.event_type()),
        key: e.aggregate_id.to_string(),
        payload: e.payload.to_json(),
        headers,
    }
}

/// Reads a message back into a domain event; the error says what is wrong with it.
pub fn decode(msg: &impl Message) -> Result<DomainEvent, DecodeError> {
    let header = |name: &'static str| -> Result<String, DecodeError> {
        msg.headers()
            .and_then(|h| h.iter().find(|h| h.key == name))
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .ok_or(DecodeError::MissingHeader(name))
    };
    let spec = header("ce_specversion")?;
    if spec != "1.0" {
        return Err(DecodeError::SpecVersion(spec));
    }
    let id = Uuid::parse_str(&header("ce_id")?).map_err(DecodeError::Id)?;
    let type_name = header("ce_type")?;
    let event_type = EventType::parse(&type_name).ok_or(DecodeError::UnknownType(type_name))?;
    let occurred_at = DateTime::parse_from_rfc3339(&header("ce_time")?).map_err(DecodeError::Time)?.with_timezone(&Utc);
    let key = msg.key().ok_or(DecodeError::MissingKey)?;
    let aggregate_id = std::str::from_utf8(key).ok().and_then(|k| Uuid::parse_str(k).ok()).ok_or(DecodeError::Key)?;
    let payload = Payload::decode(event_type, msg.payload().ok_or(DecodeError::MissingValue)?)
        .map_err(|source| DecodeError::Payload { event_type: event_type.as_str(), source })?;
    Ok(DomainEvent { id, aggregate_id, occurred_at, payload })
}

/// One consumer group feeding one subscriber, until `shutdown`.
///
/// Per batch: undecodable messages are dead-lettered, the rest are handed to the subscriber
/// (retried with capped backoff until it succeeds), and only then are the offsets committed.
pub async fn run_consumer(
    bridge: Arc<KafkaBridge>,
    group: String,
    subscriber: Arc<dyn Subscriber>,
    mut shutdown: watch::Receiver<bool>,
) {
    let consumer: Arc<StreamConsumer<QuietContext>> = match base_config(&bridge.config)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        // A subscriber may be retrying for a long while (SMTP or MongoDB away) between polls.
        .set("max.poll.interval.ms", "600000")
        .create_with_context(QuietContext::default())
    {
        Ok(c) => Arc::new(c),
        Err(e) => {
            tracing::error!(group, error = %e, "kafka consumer could not be created");
            return;
        }
    };
    let topics: Vec<String> = EventType::ALL.iter().map(|t| topic(&bridge.config.topic_prefix, *t)).collect();
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    if let Err(e) = consumer.subscribe(&refs) {
        tracing::error!(group, error = %e, "kafka subscribe failed");
        return;
    }
    tracing::info!(group, subscriber = subscriber.name(), "kafka consumer started");
    {
        let (consumer, group, topics, shutdown) = (consumer.clone(), group.clone(), topics.clone(), shutdown.clone());
        crate::retry::supervised("kafka_lag", move || {
            watch_lag(consumer.clone(), group.clone(), topics.clone(), shutdown.clone())
        });
    }
    for t in &topics {
        metrics::counter!(instruments::DLQ_MESSAGES, "topic" => dlq_topic(t)).increment(0);
    }
    // Errors in a row: only the first of a streak is a warning.
    let mut failing = 0u64;
    loop {
        let first = tokio::select! {
            m = consumer.recv() => m,
            _ = shutdown.changed() => return,
        };
        let first = match first {
            Ok(m) => {
                if failing > 0 {
                    tracing::info!(group, errors = failing, "kafka receiving again");
                    failing = 0;
                }
                m.detach()
            }
            Err(e) => {
                // librdkafka queues an error event per failed connection attempt while the broker
                // is away, and hands them over one by one before the messages behind them. They
                // are reports, not a reason to wait: sleeping after each (500 ms, as this loop
                // once did) replayed a 71 s outage's errors for ten minutes after the broker was
                // back. librdkafka reconnects by itself; this loop only has to keep reading.
                if failing == 0 {
                    tracing::warn!(group, error = %e, "kafka receive failed; librdkafka keeps reconnecting");
                } else {
                    tracing::debug!(group, error = %e, "kafka receive failed");
                }
                failing += 1;
                tokio::task::yield_now().await;
                continue;
            }
        };
        let mut batch = vec![first];
        while batch.len() < CONSUMER_BATCH {
            match tokio::time::timeout(Duration::from_millis(2), consumer.recv()).await {
                Ok(Ok(m)) => batch.push(m.detach()),
                _ => break,
            }
        }
        let mut events = Vec::with_capacity(batch.len());
        for msg in &batch {
            match decode(msg) {
                Ok(e) => events.push(e),
                Err(reason) => {
                    let reason = Report(&reason).to_string();
                    tracing::error!(group, topic = msg.topic(), offset = msg.offset(), %reason, "poison message");
                    if !retry(&mut shutdown, "dead-letter", || bridge.dead_letter(msg, &group, &reason)).await {
                        return;
                    }
                }
            }
        }
        if !events.is_empty() && !retry(&mut shutdown, subscriber.name(), || subscriber.deliver(&events)).await {
            return;
        }
        let mut next: HashMap<(&str, i32), i64> = HashMap::new();
        for msg in &batch {
            let e = next.entry((msg.topic(), msg.partition())).or_insert(0);
            *e = (*e).max(msg.offset() + 1);
        }
        let mut tpl = TopicPartitionList::new();
        for ((t, p), offset) in next {
            let _ = tpl.add_partition_offset(t, p, Offset::Offset(offset));
        }
        if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
            // The side effects are done and idempotent: a redelivery after this is harmless.
            tracing::warn!(group, error = %e, "offset commit failed");
        }
    }
}

/// Runs `op` until it succeeds, with capped backoff; false when shutdown came first.
async fn retry<F, Fut, E>(shutdown: &mut watch::Receiver<bool>, what: &str, mut op: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::error::Error + 'static,
{
    let mut backoff = Backoff::standard();
    loop {
        match op().await {
            Ok(()) => return true,
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(consumer = what, error = %Report(&e), retry_ms = delay.as_millis() as u64, "delivery failed; retrying");
                if sleep_or_shutdown(delay, shutdown).await {
                    return false;
                }
            }
        }
    }
}

/// Reports how far the group is behind the end of each topic it consumes, as the broker sees it.
/// It runs beside the consumer loop (on a blocking thread: the offset queries block), so the lag
/// keeps being reported while the loop is stuck retrying a subscriber, which is when it matters.
async fn watch_lag(
    consumer: Arc<StreamConsumer<QuietContext>>,
    group: String,
    topics: Vec<String>,
    mut shutdown: watch::Receiver<bool>,
) {
    while !sleep_or_shutdown(LAG_EVERY, &mut shutdown).await {
        let (c, t) = (consumer.clone(), topics.clone());
        let lags = match tokio::task::spawn_blocking(move || lag_by_topic(&c, &t)).await {
            Ok(Ok(lags)) => lags,
            Ok(Err(e)) => {
                tracing::debug!(group, error = %e, "consumer lag unknown");
                continue;
            }
            Err(_) => continue,
        };
        for (topic, lag) in &lags {
            metrics::gauge!(instruments::CONSUMER_LAG, "group" => group.clone(), "topic" => topic.clone())
                .set(*lag as f64);
        }
    }
}

/// The group's lag per topic as the broker sees it (what `kafka-consumer-groups --describe`
/// sums): over every partition of the topics, between the group's committed offset and the end.
///
/// Every partition counts, whichever instance (if any) holds it now: counting only this
/// instance's assignment reported 0 for a group whose assignment was lost in a broker outage
/// while the broker showed 29 messages waiting. Several instances of one group therefore report
/// the same lag (take `max by (group, topic)`). A topic whose offsets cannot all be read now is
/// not reported this round (its gauge keeps the last full reading).
fn lag_by_topic(
    consumer: &StreamConsumer<QuietContext>,
    topics: &[String],
) -> rdkafka::error::KafkaResult<HashMap<String, i64>> {
    const TIMEOUT: Duration = Duration::from_secs(2);
    // One metadata request for all topics: one per topic took about half a second each (the
    // client paces its metadata requests), which with twenty-odd topics outlasted the period.
    let wanted: std::collections::HashSet<&str> = topics.iter().map(String::as_str).collect();
    let metadata = consumer.fetch_metadata(None, TIMEOUT)?;
    let mut all = TopicPartitionList::new();
    for t in metadata.topics().iter().filter(|t| wanted.contains(t.name())) {
        for p in t.partitions() {
            all.add_partition(t.name(), p.id());
        }
    }
    let committed = consumer.committed_offsets(all, TIMEOUT)?;
    let partitions: Vec<(String, i32, Offset)> =
        committed.elements().iter().map(|p| (p.topic().to_owned(), p.partition(), p.offset())).collect();
    // One watermark request per partition, a few hundred milliseconds each: asked all at once
    // (the client is thread-safe), or sixty-odd partitions take twenty seconds in a row.
    let watermarks: Vec<_> = std::thread::scope(|scope| {
        let asks: Vec<_> = partitions
            .iter()
            .map(|(topic, partition, _)| scope.spawn(move || consumer.fetch_watermarks(topic, *partition, TIMEOUT)))
            .collect();
        asks.into_iter().map(|a| a.join().unwrap_or(Err(rdkafka::error::KafkaError::NoMessageReceived))).collect()
    });
    let mut lags = HashMap::new();
    let mut unreadable = Vec::new();
    for ((topic, _, offset), marks) in partitions.into_iter().zip(watermarks) {
        let Ok((low, high)) = marks else {
            unreadable.push(topic);
            continue;
        };
        // Nothing committed yet, or retention deleted past the commit: count from the oldest
        // message still on the partition.
        let done = match offset {
            Offset::Offset(o) => o.max(low),
            _ => low,
        };
        *lags.entry(topic).or_insert(0) += (high - done).max(0);
    }
    for topic in unreadable {
        lags.remove(&topic);
    }
    Ok(lags)
}

/// Sleeps; true when shutdown was asked for meanwhile.
async fn sleep_or_shutdown(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_repeated_client_error_is_logged_once_a_minute_with_the_count_left_out() {
        let mut seen = super::Repeats::default();
        let t0 = std::time::Instant::now();
        let at = |s: u64| t0 + std::time::Duration::from_secs(s);
        assert_eq!(seen.admit("AllBrokersDown", at(0)), Some(0), "the first is logged");
        for s in 1..59 {
            assert_eq!(seen.admit("AllBrokersDown", at(s)), None, "repeats within the minute are not");
        }
        assert_eq!(seen.admit("Transport", at(30)), Some(0), "another kind is");
        assert_eq!(seen.admit("AllBrokersDown", at(61)), Some(58), "a minute later, with the count left out");
    }

    use rdkafka::message::OwnedMessage;

    use super::*;
    use crate::domain::{OrderFacts, OrderStatus, events::OrderPlaced};

    fn placed() -> DomainEvent {
        DomainEvent::new(Payload::OrderPlaced(OrderPlaced {
            order: OrderFacts::sample(),
            status: OrderStatus::Pending,
            expires_at: Some(Utc::now()),
        }))
    }

    fn as_message(e: &Encoded) -> OwnedMessage {
        OwnedMessage::new(
            Some(e.payload.clone().into_bytes()),
            Some(e.key.clone().into_bytes()),
            e.topic.clone(),
            rdkafka::Timestamp::NotAvailable,
            0,
            7,
            Some(e.headers.clone()),
        )
    }

    #[test]
    fn an_event_survives_the_wire_format() {
        let event = placed();
        let encoded = encode("bx.", &event);
        assert_eq!(encoded.topic, "bx.order.placed");
        assert_eq!(encoded.key, event.aggregate_id.to_string());
        let back = decode(&as_message(&encoded)).unwrap();
        // RFC 3339 keeps the instant to the nanosecond.
        assert_eq!(back, event);
    }

    #[test]
    fn a_message_without_cloudevents_headers_is_rejected_with_the_reason() {
        let event = placed();
        let mut encoded = encode("", &event);
        encoded.headers = OwnedHeaders::new().insert(Header { key: "ce_specversion", value: Some("1.0") });
        assert_eq!(decode(&as_message(&encoded)).unwrap_err().to_string(), "missing header ce_id");
        let mut encoded = encode("", &event);
        encoded.payload = "{not json".into();
        let why = Report(&decode(&as_message(&encoded)).unwrap_err()).to_string();
        assert!(why.starts_with("value is not a order.placed payload: "), "{why}");
        let mut encoded = encode("", &event);
        encoded.payload = r#"{"orderId": "x", "quantity": 2}"#.into();
        let why = Report(&decode(&as_message(&encoded)).unwrap_err()).to_string();
        assert!(why.starts_with("value is not a order.placed payload: "), "{why}");
    }
}
