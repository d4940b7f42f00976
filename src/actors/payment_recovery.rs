//! Payments a crash interrupted, resolved against the provider.
//!
//! A payment is `pending` while its saga waits for the provider, at most the charge timeout; then
//! the saga records the outcome. A payment still `pending` well after that has no saga any more:
//! the process that ran it died (`kill -9`, power loss, the OOM killer) between starting the
//! charge and recording its answer. Its order stays `paying`, and a charge the provider took
//! would match nothing.
//!
//! So every node sweeps, at start and then every [`SWEEP_EVERY`]: each payment `pending` for
//! longer than the charge timeout (plus a margin for the commit that records the answer) is
//! handed to its order's saga ([`OrderSagas::recover_here`]), which asks the provider by the
//! order's idempotency key. A charge taken confirms the order, or refunds it if the hold was
//! released meanwhile; no charge fails the payment (`interrupted`), and the order is payable again
//! while its hold lasts. In cluster mode a node resolves the payments of the events it owns (or
//! takes, if nobody does): after a takeover, the new owner finds the old owner's stuck payments on
//! its next sweep. A sweep that cannot reach the database or the provider tries again next time.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::watch;

use super::{
    CallError,
    saga::{OrderSagas, Recovered},
};
use crate::{
    domain::PaymentStatus,
    error::Report,
    store::entities::{orders, payments},
};

/// How often each node looks for interrupted payments.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// Beyond the charge timeout, the time a saga may take to record its answer.
const MARGIN: Duration = Duration::from_secs(2);
/// Payments looked at per sweep (the oldest first); more wait for the next one.
const BATCH: u64 = 500;

/// Sweeps until `stop` (see the module docs). `charge_timeout` is the sagas' own.
pub async fn sweep_forever(
    db: DatabaseConnection,
    orders: OrderSagas,
    charge_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if let Err(e) = sweep(&db, &orders, charge_timeout).await {
            tracing::warn!(error = %Report(&e), "looking for interrupted payments failed; retrying");
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One sweep; answers how many payments it resolved.
pub async fn sweep(
    db: &DatabaseConnection,
    orders: &OrderSagas,
    charge_timeout: Duration,
) -> Result<usize, sea_orm::DbErr> {
    let stuck_after = chrono::Duration::from_std(charge_timeout + MARGIN).unwrap_or(chrono::Duration::MAX);
    let stuck = payments::Entity::find()
        .filter(payments::Column::Status.eq(PaymentStatus::Pending))
        .filter(payments::Column::CreatedAt.lt(Utc::now() - stuck_after))
        .order_by_asc(payments::Column::CreatedAt)
        .limit(BATCH)
        .all(db)
        .await?;
    let mut resolved = 0;
    for payment in stuck {
        let Some(order) = orders::Entity::find_by_id(payment.order_id).one(db).await? else { continue };
        match orders.recover_here((order.id, order.event_id), charge_timeout + MARGIN).await {
            Ok(Ok(Recovered::Nothing)) => {}
            Ok(Ok(outcome)) => {
                tracing::warn!(order = %order.id, payment = %payment.id, ?outcome, "resolved a payment a crash had interrupted");
                resolved += 1;
            }
            // Another node owns the event: its sweep resolves it.
            Err(CallError::Elsewhere(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(order = %order.id, error = %Report(&e), "an interrupted payment stays pending until the next sweep");
            }
            Err(e) => {
                tracing::warn!(order = %order.id, error = %Report(&e), "an interrupted payment stays pending until the next sweep");
            }
        }
    }
    Ok(resolved)
}
