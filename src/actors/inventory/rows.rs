//! The rows and outbox events an inventory writes, built from what it knows in memory.

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use uuid::Uuid;

use crate::{
    domain::{DomainEvent, OrderFacts, OrderKind, OrderStatus, Payload, ReleaseReason, events::OrderReleased},
    store::{
        WriteOp,
        entities::{events, orders, tickets},
    },
};

pub(super) fn order_row(
    facts: &OrderFacts,
    kind: OrderKind,
    status: OrderStatus,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> orders::ActiveModel {
    orders::ActiveModel {
        id: Set(facts.order_id),
        user_id: Set(facts.user_id),
        event_id: Set(facts.event_id),
        kind: Set(kind),
        quantity: Set(facts.quantity as i32),
        amount_cents: Set(facts.amount_cents),
        currency: Set(facts.currency.clone()),
        status: Set(status),
        expires_at: Set(expires_at),
        refund_cents: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

pub(super) fn ticket_rows(facts: &OrderFacts, now: DateTime<Utc>) -> Vec<tickets::ActiveModel> {
    (0..facts.quantity)
        .map(|_| {
            let id = Uuid::now_v7();
            tickets::ActiveModel {
                id: Set(id),
                order_id: Set(facts.order_id),
                event_id: Set(facts.event_id),
                user_id: Set(facts.user_id),
                code: Set(format!("BX-{}", &id.simple().to_string()[20..]).to_uppercase()),
                created_at: Set(now),
            }
        })
        .collect()
}

pub(super) fn ticket_codes(tickets: &[tickets::ActiveModel]) -> Vec<String> {
    tickets.iter().filter_map(|t| t.code.try_as_ref().cloned()).collect()
}

pub(super) fn ticket_model(t: tickets::ActiveModel) -> Option<tickets::Model> {
    Some(tickets::Model {
        id: t.id.try_as_ref().copied()?,
        order_id: t.order_id.try_as_ref().copied()?,
        event_id: t.event_id.try_as_ref().copied()?,
        user_id: t.user_id.try_as_ref().copied()?,
        code: t.code.try_as_ref().cloned()?,
        created_at: t.created_at.try_as_ref().copied()?,
    })
}

/// The status change and domain event for a release; the event is last.
pub(super) fn release_ops(facts: &OrderFacts, reason: ReleaseReason, was: OrderStatus) -> Vec<WriteOp> {
    let from: &'static [OrderStatus] =
        if was == OrderStatus::Confirmed { &[OrderStatus::Confirmed] } else { OrderStatus::HOLDING };
    let refund = (was == OrderStatus::Confirmed).then_some(facts.amount_cents);
    let released = OrderReleased { order: facts.clone(), status: reason.status(), refund_cents: refund };
    let payload = match reason {
        ReleaseReason::Expired => Payload::OrderExpired(released),
        ReleaseReason::Cancelled => Payload::OrderCancelled(released),
    };
    vec![
        WriteOp::SetOrderStatus {
            id: facts.order_id,
            from,
            to: reason.status(),
            expires_at: None,
            refund_cents: refund,
        },
        WriteOp::Outbox(DomainEvent::new(payload)),
    ]
}

/// Marks every column of a loaded model as changed so the update writes all of them.
pub(super) fn reset_all(mut m: events::ActiveModel) -> events::ActiveModel {
    use sea_orm::ActiveModelTrait;
    use sea_orm::Iterable;
    for col in events::Column::iter() {
        m.reset(col);
    }
    m
}
