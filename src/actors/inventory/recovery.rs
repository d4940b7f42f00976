//! Recovery: how an inventory comes back after a start, a restart or passivation.
//!
//! The database is the truth. A barrier job first lets every write queued by a previous
//! incarnation land (or fail); then the counts are rebuilt from the event's live orders with the
//! same slot arithmetic as live traffic, each hold gets its timer back at its stored expiry (or,
//! while a payment may still be running, at the pin bound), and holds that lapsed while nobody
//! was watching are released at once, durably, before the first message is handled.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use ractor::ActorRef;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use tokio::time::Instant;

use super::{
    EventTerms, InventoryArgs, InventoryFailure, InventoryMsg, InventoryState, SlotGauges, Slots, queue,
    rows::release_ops, waitlist,
};
use crate::{
    domain::{ListStatus, OrderKind, OrderStatus, ReleaseReason},
    store::{
        WriteOp,
        entities::{events, orders, queue_entries, waitlist_entries},
    },
};

/// Builds a started inventory's state from the store.
pub(super) async fn recover(
    myself: &ActorRef<InventoryMsg>,
    args: InventoryArgs,
) -> Result<InventoryState, InventoryFailure> {
    // Let everything queued by a previous incarnation land before counting.
    args.committer.commit(vec![WriteOp::Barrier]).await.map_err(InventoryFailure::Barrier)?;
    let event = events::Entity::find_by_id(args.event_id)
        .one(&args.db)
        .await?
        .ok_or(InventoryFailure::NoEvent(args.event_id))?;
    let live = orders::Entity::find()
        .filter(orders::Column::EventId.eq(args.event_id))
        .filter(orders::Column::Status.is_in(OrderStatus::LIVE.iter().copied()))
        .all(&args.db)
        .await?;

    let places = queue_entries::Entity::find()
        .filter(queue_entries::Column::EventId.eq(args.event_id))
        .order_by_asc(queue_entries::Column::Seq)
        .all(&args.db)
        .await?;

    let listed = waitlist_entries::Entity::find()
        .filter(waitlist_entries::Column::EventId.eq(args.event_id))
        .order_by_asc(waitlist_entries::Column::Seq)
        .all(&args.db)
        .await?;
    // Offers still open: their holds are among the live orders.
    let offered = listed.iter().filter(|e| e.status == ListStatus::Offered).filter_map(|e| e.order_id).collect();
    let waitlist = waitlist::Waitlist::restore(listed.into_iter().map(|e| {
        let entry =
            waitlist::Listed { entry_id: e.id, user_id: e.user_id, quantity: e.quantity.max(1) as u32, seq: e.seq };
        (entry, e.status)
    }));

    let terms = EventTerms::from_model(&event);
    let mut state = InventoryState {
        gauges: SlotGauges::new(terms.id),
        slots: Slots { total: terms.total, ..Default::default() },
        terms,
        holds: HashMap::new(),
        sold_orders: HashMap::new(),
        per_person: HashMap::new(),
        registered: HashMap::new(),
        queue: queue::Queue::restore(places.into_iter().map(|p| (p.id, p.user_id, p.seq, p.admitted_until))),
        waitlist,
        offered,
        queue_ticker: None,
        queue_ticked: Instant::now(),
        admission: args.admission,
        committer: args.committer.clone(),
        fence: args.fence,
        payment_pin_max: args.payment_pin_max,
        passivate_after: args.passivate_after,
        last_activity: Instant::now(),
        next_token: 0,
        timers: Default::default(),
        idle_timer: None,
    };
    let now = Utc::now();
    let mut lapsed = Vec::new();
    for o in live {
        let facts = o.facts();
        let status = o.status;
        // Counts are rebuilt with the same arithmetic as live traffic; a database that
        // violates capacity is reported, never silently accepted.
        if status == OrderStatus::Confirmed {
            if !state.slots.sell(facts.quantity) {
                tracing::error!(event = %event.id, order = %o.id, "stored sales exceed capacity");
            }
            if o.kind == OrderKind::Registration {
                state.registered.insert(facts.user_id, facts.order_id);
            }
            state.add_sale(facts);
            continue;
        }
        let expires_at = o.expires_at.unwrap_or(now);
        // A payment may still be running in its saga: the hold lasts to the pin bound.
        let pinned_until = (status == OrderStatus::Paying)
            .then(|| o.updated_at + chrono::Duration::from_std(args.payment_pin_max).unwrap_or_default());
        let ends = pinned_until.map_or(expires_at, |p| p.max(expires_at));
        if !state.slots.hold(facts.quantity) {
            tracing::error!(event = %event.id, order = %o.id, "stored holds exceed capacity");
            continue;
        }
        if ends <= now {
            lapsed.push(facts);
            continue;
        }
        let left = |t: DateTime<Utc>| Instant::now() + (t - now).to_std().unwrap_or_default();
        let ago = (now - o.created_at).to_std().unwrap_or_default();
        let placed = Instant::now().checked_sub(ago).unwrap_or_else(Instant::now);
        let order_id = facts.order_id;
        state.add_hold(myself, facts, placed, left(expires_at));
        if pinned_until.is_some() {
            if let Some(h) = state.holds.get_mut(&order_id) {
                h.pinned = true;
            }
            state.rearm(myself, order_id, left(ends));
        }
    }
    // Holds that lapsed while nobody was watching are released now, durably, and seats free with
    // people on the waiting list (those, or an offer a crash kept from being written) go to them
    // in the same commit.
    let mut ops: Vec<WriteOp> = args.fence.map(WriteOp::Fence).into_iter().collect();
    for facts in lapsed {
        state.slots.unhold(facts.quantity);
        ops.extend(release_ops(&facts, ReleaseReason::Expired, OrderStatus::Pending));
    }
    let offers = state.offer_returned(myself);
    if !offers.is_empty() {
        ops.extend(offers);
        ops.push(state.changed());
    }
    if ops.iter().any(|op| !matches!(op, WriteOp::Fence(_))) {
        args.committer.commit(ops).await.map_err(InventoryFailure::Lapsed)?;
    }
    // Whoever still waits is admitted on from where the room stopped.
    if state.queue.waiting_len() > 0 {
        state.start_queue_clock(myself);
    }
    state.queue_gauge();
    state.list_gauge();
    if let Some(every) = state.passivate_after {
        let every = (every / 2).max(Duration::from_millis(50));
        state.idle_timer = Some(myself.send_interval(every, || InventoryMsg::IdleCheck));
    }
    tracing::debug!(event = %event.id, slots = ?state.slots, "inventory recovered");
    Ok(state)
}
