//! Event ownership for cluster mode: a lease per event in the database, with an epoch.
//!
//! Why per event and not per shard: an event is the unit the inventory actor owns and rebuilds,
//! so a lease per event moves exactly what has to move, and an event nobody touches has no lease
//! to renew. (The renewal cost is one statement per owned event per renewal period; a node renews
//! its leases in one statement per round.)
//!
//! The rules, all decided by the database in one statement each, so two nodes can never both win:
//! - [`acquire`] takes an event whose lease is missing or lapsed, and every take moves the epoch
//!   on (a first take is epoch 1). A live lease is never taken, not even by its own owner: that
//!   one renews.
//! - [`renew`] extends a lease only while it is live and still the caller's, same epoch.
//! - [`release`] ends a lease now (graceful handover), so another node takes it without waiting
//!   out the TTL; the taker's epoch is higher.
//!
//! Time is the database's: on PostgreSQL `now()` (the nodes' clocks never compare with each
//! other); on SQLite, which is single-node only, the process's.
//! The lease alone does not make a stale owner harmless (it may be paused past its expiry and
//! wake up believing it still owns the event); the epoch is what the committer's fence checks.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, QueryResult, Statement, Value};
use uuid::Uuid;

/// A node's ownership of one event, as the database granted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub event_id: Uuid,
    pub owner: String,
    pub epoch: i64,
    pub expires_at: DateTime<Utc>,
}

impl Lease {
    fn from_row(row: &QueryResult) -> Result<Self, DbErr> {
        Ok(Self {
            event_id: row.try_get("", "event_id")?,
            owner: row.try_get("", "owner")?,
            epoch: row.try_get("", "epoch")?,
            expires_at: row.try_get("", "expires_at")?,
        })
    }
}

/// One statement for either backend: PostgreSQL's text uses `now()` and `$n`, SQLite's `?` and
/// the process clock (passed as the `now`/`until` values the text asks for).
fn statement(db: &DatabaseConnection, pg: &str, sqlite: &str, values: Vec<Value>) -> Statement {
    match db.get_database_backend() {
        DbBackend::Sqlite => Statement::from_sql_and_values(DbBackend::Sqlite, sqlite, values),
        backend => Statement::from_sql_and_values(backend, pg, values),
    }
}

fn millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

/// Takes `event` for `node` if nobody holds a live lease on it; `None` if someone does.
pub async fn acquire(db: &DatabaseConnection, event: Uuid, node: &str, ttl: Duration) -> Result<Option<Lease>, DbErr> {
    let now = Utc::now();
    let until = now + chrono::Duration::milliseconds(millis(ttl));
    let values = match db.get_database_backend() {
        DbBackend::Sqlite => vec![event.into(), node.into(), until.into(), now.into()],
        _ => vec![event.into(), node.into(), millis(ttl).into()],
    };
    let s = statement(
        db,
        "INSERT INTO event_leases (event_id, owner, epoch, expires_at) \
         VALUES ($1, $2, 1, now() + make_interval(secs => $3::float8 / 1000)) \
         ON CONFLICT (event_id) DO UPDATE SET owner = EXCLUDED.owner, epoch = event_leases.epoch + 1, \
         expires_at = EXCLUDED.expires_at WHERE event_leases.expires_at <= now() \
         RETURNING event_id, owner, epoch, expires_at",
        "INSERT INTO event_leases (event_id, owner, epoch, expires_at) VALUES (?, ?, 1, ?) \
         ON CONFLICT (event_id) DO UPDATE SET owner = excluded.owner, epoch = event_leases.epoch + 1, \
         expires_at = excluded.expires_at WHERE event_leases.expires_at <= ? \
         RETURNING event_id, owner, epoch, expires_at",
        values,
    );
    db.query_one_raw(s).await?.map(|row| Lease::from_row(&row)).transpose()
}

/// Extends `lease` by `ttl` from now if it is still live and still this owner's at this epoch;
/// the new expiry, or `None` if it was lost (lapsed and taken, or released).
pub async fn renew(db: &DatabaseConnection, lease: &Lease, ttl: Duration) -> Result<Option<DateTime<Utc>>, DbErr> {
    let now = Utc::now();
    let until = now + chrono::Duration::milliseconds(millis(ttl));
    let key = [lease.event_id.into(), lease.owner.clone().into(), lease.epoch.into()];
    let values = match db.get_database_backend() {
        DbBackend::Sqlite => [vec![until.into()], key.to_vec(), vec![now.into()]].concat(),
        _ => [vec![millis(ttl).into()], key.to_vec()].concat(),
    };
    let s = statement(
        db,
        "UPDATE event_leases SET expires_at = now() + make_interval(secs => $1::float8 / 1000) \
         WHERE event_id = $2 AND owner = $3 AND epoch = $4 AND expires_at > now() RETURNING expires_at",
        "UPDATE event_leases SET expires_at = ? \
         WHERE event_id = ? AND owner = ? AND epoch = ? AND expires_at > ? RETURNING expires_at",
        values,
    );
    db.query_one_raw(s).await?.map(|row| row.try_get("", "expires_at")).transpose()
}

/// Ends `lease` now if it is still this owner's at this epoch (graceful handover); whether it was.
pub async fn release(db: &DatabaseConnection, lease: &Lease) -> Result<bool, DbErr> {
    let key = vec![lease.event_id.into(), lease.owner.clone().into(), lease.epoch.into()];
    let values = match db.get_database_backend() {
        DbBackend::Sqlite => [vec![Utc::now().into()], key].concat(),
        _ => key,
    };
    let s = statement(
        db,
        "UPDATE event_leases SET expires_at = now() WHERE event_id = $1 AND owner = $2 AND epoch = $3",
        "UPDATE event_leases SET expires_at = ? WHERE event_id = ? AND owner = ? AND epoch = ?",
        values,
    );
    Ok(db.execute_raw(s).await?.rows_affected() == 1)
}

/// The lease on `event` as stored (live or lapsed), if it ever had one.
pub async fn current(db: &DatabaseConnection, event: Uuid) -> Result<Option<Lease>, DbErr> {
    let s = statement(
        db,
        "SELECT event_id, owner, epoch, expires_at FROM event_leases WHERE event_id = $1",
        "SELECT event_id, owner, epoch, expires_at FROM event_leases WHERE event_id = ?",
        vec![event.into()],
    );
    db.query_one_raw(s).await?.map(|row| Lease::from_row(&row)).transpose()
}
