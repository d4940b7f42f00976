//! The outbox as the relay sees it: rows in the order they are published, and the relay's
//! position in them (one row in `outbox_relay`, instead of a mark on every published row).
//!
//! Rows are ordered by (`tx`, `id`). On SQLite `tx` is always 0: one writer at a time, so ids
//! become visible in order and the id alone is the order. On PostgreSQL `tx` is the writing
//! transaction's id, and only rows of transactions older than every transaction still running
//! are read ([`after`]): those rows can no longer change, and any row not visible yet belongs to
//! a newer transaction and sorts after them. A cursor that only ever passes such rows never skips
//! a row that commits late (see migration `m20261205_000011_outbox_relay_cursor`).

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement, Value};

use super::entities::outbox;

/// Where the relay is: every row at or before this position was published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// The writing transaction (0 on SQLite).
    pub tx: i64,
    pub id: i64,
}

impl Position {
    /// The position of a row.
    pub fn of(row: &outbox::Model) -> Self {
        Self { tx: row.tx, id: row.id }
    }
}

const RELAY: &str = "outbox";

/// The relay's stored position.
pub async fn position(db: &DatabaseConnection) -> Result<Position, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "SELECT through_tx, through_id FROM outbox_relay WHERE name = $1",
        _ => "SELECT through_tx, through_id FROM outbox_relay WHERE name = ?",
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(backend, sql, [RELAY.into()]))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("the outbox relay's position (migration 11 writes it)".into()))?;
    Ok(Position { tx: row.try_get("", "through_tx")?, id: row.try_get("", "through_id")? })
}

/// The columns of an outbox row, named: a `SELECT *` is expanded when the statement is prepared,
/// and a cached statement decoded by name then reads the wrong column (or past the row's end,
/// a panic inside sqlx-sqlite) once the table's columns change under it.
const COLUMNS: &str = "id, event_id, event_type, aggregate_id, payload, occurred_at, tx";

/// Up to `limit` rows after `from`, in publishing order; on PostgreSQL only rows whose
/// transaction is older than every running one (see the module docs).
pub async fn after(db: &DatabaseConnection, from: Position, limit: u64) -> Result<Vec<outbox::Model>, DbErr> {
    let backend = db.get_database_backend();
    let limit = Value::from(i64::try_from(limit).unwrap_or(i64::MAX));
    let statement = match backend {
        DbBackend::Postgres => Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT {COLUMNS} FROM outbox WHERE (tx, id) > ($1, $2) \
                 AND tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint ORDER BY tx, id LIMIT $3"
            ),
            [from.tx.into(), from.id.into(), limit],
        ),
        _ => Statement::from_sql_and_values(
            backend,
            format!("SELECT {COLUMNS} FROM outbox WHERE id > ? ORDER BY id LIMIT ?"),
            [from.id.into(), limit],
        ),
    };
    outbox::Model::find_by_statement(statement).all(db).await
}

/// How many rows are written and not yet published.
pub async fn pending(db: &DatabaseConnection) -> Result<i64, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT COUNT(*) AS n FROM outbox o, outbox_relay r WHERE r.name = $1 AND (o.tx, o.id) > (r.through_tx, r.through_id)"
        }
        _ => "SELECT COUNT(*) AS n FROM outbox o, outbox_relay r WHERE r.name = ? AND o.id > r.through_id",
    };
    let row = db.query_one_raw(Statement::from_sql_and_values(backend, sql, [RELAY.into()])).await?;
    row.map_or(Ok(0), |r| r.try_get("", "n"))
}

/// The statement that moves the stored position to `to`, never backwards: a leader that froze
/// after publishing must not rewind its successor's progress (which would publish again).
pub fn advance(backend: DbBackend, to: Position) -> Statement {
    let sql = match backend {
        DbBackend::Postgres => {
            "UPDATE outbox_relay SET through_tx = $1, through_id = $2 WHERE name = $3 AND (through_tx, through_id) < ($1, $2)"
        }
        _ => {
            "UPDATE outbox_relay SET through_tx = ?1, through_id = ?2 WHERE name = ?3 AND (through_tx, through_id) < (?1, ?2)"
        }
    };
    Statement::from_sql_and_values(backend, sql, [to.tx.into(), to.id.into(), RELAY.into()])
}
