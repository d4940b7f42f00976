//! From the REST API's views to the contract's messages, and the few values the other way.

use axum::response::Response;
use boxoffice_proto::v1 as pb;
use chrono::{DateTime, Utc};
use serde::{Serialize, de::DeserializeOwned};
use tonic::Status;
use uuid::Uuid;

use crate::http::{
    Error, catalog::EventView, extract::Page, orders::OrderView, payments::PaymentView, users::UserView,
};

/// The JSON body of a core call's successful answer, as its view type.
pub async fn body<T: DeserializeOwned>(response: Response) -> Result<T, Status> {
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .map_err(|e| super::status(Error::Internal(anyhow::Error::from(e))))?;
    serde_json::from_slice(&bytes).map_err(|e| super::status(Error::Internal(anyhow::Error::from(e))))
}

pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

pub fn instant(field: &str, t: &prost_types::Timestamp) -> Result<DateTime<Utc>, Status> {
    DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32)
        .ok_or_else(|| super::status(Error::invalid(field, "is not a representable instant")))
}

/// A UUID from a request field; anything else names nothing, as a bad id in a REST path does.
pub fn id(field: &str, raw: &str) -> Result<Uuid, Status> {
    Uuid::parse_str(raw.trim()).map_err(|_| super::status(Error::invalid(field, "must be a UUID")))
}

/// A typed status's wire name (`pending`, `order`, `user`, ...).
fn name(value: impl Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

pub fn user(u: UserView) -> pb::User {
    pb::User {
        id: u.id.to_string(),
        email: u.email,
        username: u.username,
        first_name: u.first_name,
        last_name: u.last_name,
        mobile_phone: u.mobile_phone,
        birth_day: u.birth_day.map(|d| d.to_string()),
        role: name(u.role),
        created_at: Some(timestamp(u.created_at)),
        updated_at: Some(timestamp(u.updated_at)),
    }
}

pub fn event(e: EventView) -> pb::Event {
    pb::Event {
        id: e.id.to_string(),
        name: e.name,
        category_id: e.category_id.to_string(),
        price_cents: e.price_cents,
        currency: e.currency,
        starts_at: Some(timestamp(e.starts_at)),
        max_per_order: e.max_per_order,
        max_per_person: e.max_per_person,
        hold_seconds: e.hold_seconds,
        waiting_room: e.waiting_room,
        admit_per_second: e.admit_per_second,
        total_slots: e.total_slots,
        available_slots: e.available_slots,
        held_slots: e.held_slots,
        sold_slots: e.sold_slots,
        created_at: Some(timestamp(e.created_at)),
        updated_at: Some(timestamp(e.updated_at)),
    }
}

pub fn events(page: Page<EventView>) -> pb::ListEventsResponse {
    pb::ListEventsResponse {
        items: page.items.into_iter().map(event).collect(),
        next_token: page.next_token,
        previous_token: page.previous_token,
    }
}

pub fn order(o: OrderView) -> pb::Order {
    pb::Order {
        id: o.id.to_string(),
        event_id: o.event_id.to_string(),
        user_id: o.user_id.to_string(),
        kind: name(o.kind),
        status: name(o.status),
        quantity: o.quantity,
        amount_cents: o.amount_cents,
        currency: o.currency,
        expires_at: o.expires_at.map(timestamp),
        refund_cents: o.refund_cents,
        created_at: Some(timestamp(o.created_at)),
        updated_at: Some(timestamp(o.updated_at)),
        tickets: o
            .tickets
            .unwrap_or_default()
            .into_iter()
            .map(|t| pb::Ticket { id: t.id.to_string(), code: t.code })
            .collect(),
    }
}

pub fn orders(page: Page<OrderView>) -> pb::ListOrdersResponse {
    pb::ListOrdersResponse {
        items: page.items.into_iter().map(order).collect(),
        next_token: page.next_token,
        previous_token: page.previous_token,
    }
}

pub fn payment(p: PaymentView) -> pb::Payment {
    pb::Payment {
        id: p.id.to_string(),
        order_id: p.order_id.to_string(),
        user_id: p.user_id.to_string(),
        amount_cents: p.amount_cents,
        currency: p.currency,
        status: name(p.status),
        failure_reason: p.failure_reason,
        provider_ref: p.provider_ref,
        created_at: Some(timestamp(p.created_at)),
        updated_at: Some(timestamp(p.updated_at)),
        history: p
            .history
            .unwrap_or_default()
            .into_iter()
            .map(|c| pb::StatusChange { status: name(c.status), detail: c.detail, at: Some(timestamp(c.at)) })
            .collect(),
    }
}
