//! What nodes say to each other: the one remotable message type, and the versioned envelope
//! inside it.
//!
//! ractor_cluster encodes a message field by field with `BytesConvertable`, whose `from_bytes`
//! may panic by contract, and it drops a message it cannot decode without telling anyone (a
//! dropped call then looks like a timeout). So [`ClusterMsg`] carries bytes only (`Vec<u8>`'s
//! conversion is the identity and cannot fail), and the bytes are an [`Envelope`] in JSON that the
//! receiving handler decodes itself: a malformed, unknown or future message becomes a
//! [`Response::BadRequest`] answer, never a panic and never silence.

use chrono::{DateTime, Utc};
use ractor::RpcReplyPort;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    actors::{
        inventory::{InventoryError, LineAnswer, LineOp, Reservation, ReserveRequest, Snapshot},
        saga::{PayRequest, SagaError},
    },
    domain::{DomainEvent, OrderConflict, events::PaymentSucceeded},
    store::entities::events,
};

/// The wire version this build speaks. A node answers an envelope of another version with
/// [`Response::BadRequest`], so a mixed-version cluster fails loudly, one call at a time.
pub const VERSION: u16 = 1;

/// The only message type a node accepts from another node.
#[derive(ractor_cluster::RactorClusterMessage)]
pub enum ClusterMsg {
    /// An [`Envelope<Request>`] in, an [`Envelope<Response>`] out.
    #[rpc]
    Call(Vec<u8>, RpcReplyPort<Vec<u8>>),
    /// An [`Envelope<Notice>`], answered by nobody.
    Notice(Vec<u8>),
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub v: u16,
    /// The sending node's name.
    pub from: String,
    /// Unix milliseconds after which the sender no longer waits: a node that wakes from a pause
    /// with a backlog drops what nobody waits for any more.
    pub deadline_ms: i64,
    pub body: T,
}

impl<T: Serialize> Envelope<T> {
    pub fn new(from: &str, deadline: DateTime<Utc>, body: T) -> Self {
        Self { v: VERSION, from: from.to_owned(), deadline_ms: deadline.timestamp_millis(), body }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // Our own plain data types: serialising them cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl<T: for<'de> Deserialize<'de>> Envelope<T> {
    /// Decodes and checks the version; the error says what was wrong, for the answer.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Version {
            v: u16,
        }
        let v = serde_json::from_slice::<Version>(bytes).map_err(|e| format!("not an envelope: {e}"))?.v;
        if v != VERSION {
            return Err(format!("wire version {v} is not {VERSION}"));
        }
        serde_json::from_slice(bytes).map_err(|e| format!("malformed message: {e}"))
    }

    pub fn expired(&self) -> bool {
        Utc::now().timestamp_millis() > self.deadline_ms
    }
}

/// What one node asks another.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Liveness: answered by the member actor itself.
    Ping,
    /// Hold or register seats on an event the receiver owns (or should own).
    Reserve { event_id: Uuid, request: ReserveRequest },
    /// An event's live counts.
    Snapshot { event_id: Uuid },
    /// Sell a hold whose payment went through (the saga ran where the event was owned before).
    Confirm { event_id: Uuid, paid: PaymentSucceeded },
    /// New terms for an event (`PUT /api/v1/events/{id}`).
    Reconfigure { event: events::Model },
    /// Pay an order in its saga on the event's owner; `timeout_ms` bounds the charge.
    Pay { order_id: Uuid, event_id: Uuid, request: PayRequest, timeout_ms: u64 },
    /// Cancel an order in its saga on the event's owner.
    Cancel { order_id: Uuid, event_id: Uuid },
    /// A person's place in the event's waiting room.
    Line { event_id: Uuid, line: LineOp },
}

/// What one node tells the others without waiting for an answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Notice {
    /// Domain events the sender just published (it leads the outbox relay), for the receiver's
    /// live streams.
    Published { events: Vec<DomainEvent> },
    /// The sender is shutting down: place nothing new on it (it hands its events over).
    Leaving,
}

/// What a node answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "r", rename_all = "snake_case")]
pub enum Response {
    Pong,
    Reserved {
        reservation: Reservation,
    },
    Snapshot {
        snapshot: Snapshot,
    },
    /// The inventory said no (sold out, limits): the same answer a local call gets.
    Refused {
        error: InventoryError,
    },
    /// Done (a confirmation, new terms, a cancellation).
    Done,
    Paid {
        payment_id: Uuid,
    },
    Line {
        answer: LineAnswer,
    },
    /// The order's saga said no (wrong state, wrong amount): the same answer a local call gets.
    OrderRefused {
        error: OrderRefusal,
    },
    /// Another node holds the event's lease: ask that one.
    NotOwner {
        owner: String,
    },
    NotFound,
    /// The receiver cannot serve it now (its store, its inventory, a timeout): 503.
    Unavailable {
        why: String,
    },
    /// The request could not be read (bad bytes, another wire version).
    BadRequest {
        why: String,
    },
}

/// A [`SagaError`] that crosses the wire (an unavailable part is answered
/// [`Response::Unavailable`] instead).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum OrderRefusal {
    NotFound,
    Conflict { conflict: OrderConflict },
    RefundedAfterExpiry,
    AmountMismatch { amount_cents: i64 },
}

impl Response {
    /// A saga's answer as this node sends it.
    pub fn from_saga<T>(result: Result<T, SagaError>, done: impl FnOnce(T) -> Response) -> Response {
        let refusal = match result {
            Ok(value) => return done(value),
            Err(SagaError::Unavailable(why)) => {
                return Response::Unavailable { why: crate::error::Report(&why).to_string() };
            }
            Err(SagaError::NotFound) => OrderRefusal::NotFound,
            Err(SagaError::Conflict(conflict)) => OrderRefusal::Conflict { conflict },
            Err(SagaError::RefundedAfterExpiry) => OrderRefusal::RefundedAfterExpiry,
            Err(SagaError::AmountMismatch(amount_cents)) => OrderRefusal::AmountMismatch { amount_cents },
        };
        Response::OrderRefused { error: refusal }
    }
}

impl From<OrderRefusal> for SagaError {
    fn from(r: OrderRefusal) -> Self {
        match r {
            OrderRefusal::NotFound => Self::NotFound,
            OrderRefusal::Conflict { conflict } => Self::Conflict(conflict),
            OrderRefusal::RefundedAfterExpiry => Self::RefundedAfterExpiry,
            OrderRefusal::AmountMismatch { amount_cents } => Self::AmountMismatch(amount_cents),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{OrderKind, OrderStatus};

    #[test]
    fn garbage_another_version_and_unknown_requests_are_errors_not_panics() {
        for bytes in
            [&b""[..], b"\xff\xfe", b"{}", b"[1,2]", b"{\"v\":1}", b"{\"v\":1,\"from\":\"a\",\"deadline_ms\":0}"]
        {
            assert!(Envelope::<Request>::from_bytes(bytes).is_err(), "{bytes:?}");
        }
        let future = br#"{"v":2,"from":"a","deadline_ms":0,"body":{"op":"ping"}}"#;
        assert!(Envelope::<Request>::from_bytes(future).unwrap_err().contains("version 2"));
        let unknown = br#"{"v":1,"from":"a","deadline_ms":0,"body":{"op":"launch_missiles"}}"#;
        assert!(Envelope::<Request>::from_bytes(unknown).is_err());
    }

    #[test]
    fn a_reservation_crosses_the_wire_intact() {
        let r = Reservation {
            order_id: Uuid::now_v7(),
            kind: OrderKind::Order,
            status: OrderStatus::Pending,
            amount_cents: 4200,
            currency: "EUR".into(),
            expires_at: Some(Utc::now()),
            created_at: Utc::now(),
        };
        let body = Response::Reserved { reservation: r.clone() };
        let bytes = Envelope::new("node-a", Utc::now(), body).to_bytes();
        let back = Envelope::<Response>::from_bytes(&bytes).unwrap();
        let Response::Reserved { reservation: back } = back.body else { panic!("{:?}", back.body) };
        assert_eq!((back.order_id, back.amount_cents, back.expires_at), (r.order_id, r.amount_cents, r.expires_at));
    }
}
