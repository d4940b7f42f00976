//! The bridge's errors: publishing (outbox, bus, Kafka), delivering to a consumer, and decoding
//! what comes back from the outbox or a topic. Each keeps its cause as a `#[source]`; the loops
//! that retry them log the whole chain with [`crate::error::Report`].

use rdkafka::{error::KafkaError, types::RDKafkaErrorCode};
use sea_orm::DbErr;

use crate::error::Cause;

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("reading the outbox")]
    ReadOutbox(#[source] DbErr),
    #[error("storing the outbox relay's position")]
    Advance(#[source] crate::store::committer::CommitError),
    #[error("delivering to {consumer}")]
    Delivery {
        consumer: String,
        #[source]
        source: DeliveryError,
    },
    #[error("kafka: {what}")]
    Kafka {
        what: String,
        #[source]
        source: KafkaError,
    },
    #[error("kafka: creating topic {topic}: {code}")]
    CreateTopic { topic: String, code: RDKafkaErrorCode },
}

impl BridgeError {
    pub fn kafka(what: impl Into<String>) -> impl FnOnce(KafkaError) -> Self {
        let what = what.into();
        move |source| Self::Kafka { what, source }
    }
}

/// Why a consumer did not take a batch (it is offered again).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The consumer ran and failed (SMTP or MongoDB away, the database busy...).
    #[error("the consumer failed")]
    Failed(#[source] Cause),
    #[error("the consumer did not answer in time")]
    NoAnswer,
    #[error("the consumer is not running")]
    Unreachable,
}

/// Why a stored outbox row or a received message is not a domain event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("unsupported ce_specversion {0}")]
    SpecVersion(String),
    #[error("ce_id is not a UUID")]
    Id(#[source] uuid::Error),
    #[error("unknown event type {0}")]
    UnknownType(String),
    #[error("ce_time is not RFC 3339")]
    Time(#[source] chrono::ParseError),
    #[error("missing key")]
    MissingKey,
    #[error("key is not an aggregate id")]
    Key,
    #[error("missing value")]
    MissingValue,
    #[error("value is not a {event_type} payload")]
    Payload {
        event_type: &'static str,
        #[source]
        source: serde_json::Error,
    },
}
