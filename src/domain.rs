//! Domain vocabulary shared by actors, store and HTTP: statuses, domain events, and the
//! validated newtypes the HTTP layer parses input into (actors only ever see valid data).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

/// Lifecycle of an order. `Pending` and `Paying` hold slots; `Confirmed` has sold them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Paying,
    Confirmed,
    Cancelled,
    Expired,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paying => "paying",
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "paying" => Self::Paying,
            "confirmed" => Self::Confirmed,
            "cancelled" => Self::Cancelled,
            "expired" => Self::Expired,
            _ => return None,
        })
    }

    /// Whether an order in this state occupies slots as a hold.
    pub fn is_hold(self) -> bool {
        matches!(self, Self::Pending | Self::Paying)
    }
}

/// Why a hold or a sale gave its slots back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseReason {
    Expired,
    Cancelled,
}

impl ReleaseReason {
    pub fn status(self) -> OrderStatus {
        match self {
            Self::Expired => OrderStatus::Expired,
            Self::Cancelled => OrderStatus::Cancelled,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Pending,
    Succeeded,
    Failed,
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Refunded => "refunded",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CategoryKind {
    Free,
    Paid,
}

impl CategoryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Paid => "paid",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }
}

/// Every kind of domain event; the string is the event type (and, with the bridge, the topic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    RegistrationCreated,
    OrderPlaced,
    OrderConfirmed,
    OrderCancelled,
    OrderExpired,
    /// A payment began: the payment row exists and the order moved from pending to paying.
    PaymentStarted,
    PaymentSucceeded,
    PaymentFailed,
    /// A charge was given back (the hold ran out while the payment was in flight).
    PaymentRefunded,
    UserCreated,
    UserUpdated,
    UserDeleted,
    CategoryCreated,
    EventCreated,
    EventUpdated,
    /// An event's available/held/sold counts changed (the live availability streams use it).
    InventoryChanged,
}

impl EventType {
    pub const ALL: [EventType; 16] = [
        Self::RegistrationCreated,
        Self::OrderPlaced,
        Self::OrderConfirmed,
        Self::OrderCancelled,
        Self::OrderExpired,
        Self::PaymentStarted,
        Self::PaymentSucceeded,
        Self::PaymentFailed,
        Self::PaymentRefunded,
        Self::UserCreated,
        Self::UserUpdated,
        Self::UserDeleted,
        Self::CategoryCreated,
        Self::EventCreated,
        Self::EventUpdated,
        Self::InventoryChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RegistrationCreated => "registration.created",
            Self::OrderPlaced => "order.placed",
            Self::OrderConfirmed => "order.confirmed",
            Self::OrderCancelled => "order.cancelled",
            Self::OrderExpired => "order.expired",
            Self::PaymentStarted => "payment.started",
            Self::PaymentSucceeded => "payment.succeeded",
            Self::PaymentFailed => "payment.failed",
            Self::PaymentRefunded => "payment.refunded",
            Self::UserCreated => "user.created",
            Self::UserUpdated => "user.updated",
            Self::UserDeleted => "user.deleted",
            Self::CategoryCreated => "category.created",
            Self::EventCreated => "event.created",
            Self::EventUpdated => "event.updated",
            Self::InventoryChanged => "inventory.changed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A fact that happened, written to the outbox in the same transaction as the change itself.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainEvent {
    /// Unique per event; consumers deduplicate on it.
    pub id: Uuid,
    pub event_type: EventType,
    /// The entity the event is about (the booking event for inventory and order events, so
    /// one partition key keeps one event's history in order).
    pub aggregate_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// camelCase JSON body.
    pub payload: Value,
}

/// An event's seat counts at one moment: what `inventory.changed` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotCounts {
    pub event_id: Uuid,
    pub total: u32,
    pub available: u32,
    pub held: u32,
    pub sold: u32,
}

impl SlotCounts {
    pub fn event(&self) -> DomainEvent {
        DomainEvent::new(
            EventType::InventoryChanged,
            self.event_id,
            json!({"eventId": self.event_id, "total": self.total, "available": self.available, "held": self.held, "sold": self.sold}),
        )
    }
}

impl DomainEvent {
    pub fn new(event_type: EventType, aggregate_id: Uuid, payload: Value) -> Self {
        Self { id: Uuid::now_v7(), event_type, aggregate_id, occurred_at: Utc::now(), payload }
    }

    /// The order events all carry the same fields, so consumers can rely on them.
    pub fn order(event_type: EventType, order: &OrderFacts, extra: Value) -> Self {
        let mut payload = json!({
            "orderId": order.order_id,
            "eventId": order.event_id,
            "userId": order.user_id,
            "quantity": order.quantity,
            "amountCents": order.amount_cents,
            "currency": order.currency,
        });
        if let (Some(obj), Value::Object(more)) = (payload.as_object_mut(), extra) {
            obj.extend(more);
        }
        Self::new(event_type, order.event_id, payload)
    }
}

/// What every order event says about its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFacts {
    pub order_id: Uuid,
    pub event_id: Uuid,
    pub user_id: Uuid,
    pub quantity: u32,
    pub amount_cents: i64,
    pub currency: String,
}

/// A lower-cased e-mail address with one `@` and a dot in its domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let s = raw.trim().to_lowercase();
        let (local, domain) = s.split_once('@').ok_or("must be an e-mail address")?;
        if local.is_empty()
            || domain.len() < 3
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains('@')
            || s.len() > 254
            || s.chars().any(char::is_whitespace)
        {
            return Err("must be an e-mail address");
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 3 to 32 characters of letters, digits, `_`, `-` and `.`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let s = raw.trim();
        let ok_len = (3..=32).contains(&s.chars().count());
        let ok_chars = s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok_len || !ok_chars || s.contains('@') {
            return Err("must be 3 to 32 letters, digits, '_', '-' or '.'");
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password of 8 to 128 characters.
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        match raw.chars().count() {
            8..=128 => Ok(Self(raw.to_string())),
            _ => Err("must be 8 to 128 characters"),
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Three upper-case ASCII letters (ISO 4217 shape).
pub fn parse_currency(raw: &str) -> Result<String, &'static str> {
    let s = raw.trim().to_ascii_uppercase();
    if s.len() == 3 && s.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(s)
    } else {
        Err("must be a three-letter currency code")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse(" Ann@Example.COM ").unwrap().as_str(), "ann@example.com");
        for bad in ["", "ann", "ann@", "@x.io", "ann@localhost", "a b@x.io", "a@b@c.io"] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn usernames_reject_at_signs_and_short_names() {
        assert!(Username::parse("ann_01").is_ok());
        assert!(Username::parse("an").is_err());
        assert!(Username::parse("ann@x").is_err());
    }

    #[test]
    fn every_event_type_round_trips_through_its_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
    }

    #[test]
    fn order_events_are_keyed_by_the_booking_event() {
        let facts = OrderFacts {
            order_id: Uuid::now_v7(),
            event_id: Uuid::now_v7(),
            user_id: Uuid::now_v7(),
            quantity: 2,
            amount_cents: 5000,
            currency: "EUR".into(),
        };
        let e = DomainEvent::order(EventType::OrderPlaced, &facts, json!({"status": "pending"}));
        assert_eq!(e.aggregate_id, facts.event_id);
        assert_eq!(e.payload["quantity"], 2);
        assert_eq!(e.payload["status"], "pending");
    }
}
