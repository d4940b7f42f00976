//! The outbox relay's order and its stored position (`store::outbox`): a row whose transaction
//! commits late, under a lower id than rows already committed, is still read before them, never
//! skipped; and the position only moves forward. Runs on both backends: on SQLite the late
//! writer holds the one write lock, so the other waits; on PostgreSQL both write at once, and the
//! reader waits for the older transaction instead.

use std::time::Duration;

use boxoffice::{
    domain::{DomainEvent, SlotCounts},
    store::{
        self, Committer, WriteOp,
        outbox::{Position, after, pending, position},
    },
};
use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait};
use uuid::Uuid;

use crate::common::TestApp;

fn event() -> DomainEvent {
    DomainEvent::new(SlotCounts { event_id: Uuid::now_v7(), total: 1, available: 1, held: 0, sold: 0 })
}

/// Which of `ids` the relay would read after `from`, in its order.
async fn read_of(app: &TestApp, from: Position, ids: &[Uuid]) -> Vec<Uuid> {
    let rows = after(&app.db, from, 10_000).await.unwrap();
    rows.into_iter().map(|r| r.event_id).filter(|id| ids.contains(id)).collect()
}

#[tokio::test]
async fn a_row_committed_late_under_a_lower_id_is_read_before_the_rows_after_it() {
    let app = TestApp::spawn().await;
    let from = position(&app.db).await.unwrap();
    let (late, early) = (event(), event());
    let ids = [late.id, early.id];

    // `late` takes its id first and commits last.
    let txn = app.db.begin().await.unwrap();
    store::record_event(&txn, &late).await.unwrap();
    let db = app.db.clone();
    let second = early.clone();
    let writer = tokio::spawn(async move {
        let txn = db.begin().await.unwrap();
        store::record_event(&txn, &second).await.unwrap();
        txn.commit().await.unwrap();
    });
    if app.db.get_database_backend() == DbBackend::Postgres {
        writer.await.unwrap();
        // `early` is committed, with the higher id: an id cursor would read it now and move past
        // `late` for good.
        assert!(
            read_of(&app, from, &ids).await.is_empty(),
            "nothing written after a transaction that is still open is read"
        );
        txn.commit().await.unwrap();
    } else {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!writer.is_finished(), "SQLite has one writer: the second waits for the first");
        assert!(read_of(&app, from, &ids).await.is_empty(), "nothing uncommitted is read");
        txn.commit().await.unwrap();
        writer.await.unwrap();
    }

    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let read = read_of(&app, from, &ids).await;
        if read.len() == 2 {
            assert_eq!(read, ids, "the row that took its id first is read first");
            break;
        }
        // A transaction still open elsewhere on the server (another test's) may hold the second
        // back a moment longer; never the first.
        assert!(ids.starts_with(&read), "the late row is read first, or nothing is: {read:?}");
        assert!(tokio::time::Instant::now() < until, "the rows were never read");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_relays_position_never_moves_back_and_nothing_after_it_is_pending() {
    let app = TestApp::spawn().await;
    let committer = Committer::spawn(app.db.clone(), 64, store::CommitFeed::new()).await.unwrap();
    let record = async |e: &DomainEvent| {
        let txn = app.db.begin().await.unwrap();
        store::record_event(&txn, e).await.unwrap();
        txn.commit().await.unwrap();
    };
    let first = event();
    record(&first).await;
    // On PostgreSQL a transaction still open elsewhere on the server (another test's: a
    // migration, a late writer) keeps newer rows back for a moment (see `store::outbox`).
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    let last = loop {
        let rows = after(&app.db, Position::default(), 10_000).await.unwrap();
        if let Some(row) = rows.iter().find(|r| r.event_id == first.id) {
            break Position::of(row);
        }
        assert!(tokio::time::Instant::now() < until, "the first row was never readable");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    committer.commit(vec![WriteOp::RelayAdvanced(last)]).await.unwrap();
    assert!(position(&app.db).await.unwrap() >= last);

    let back = Position { tx: 0, id: 1 };
    committer.commit(vec![WriteOp::RelayAdvanced(back)]).await.unwrap();
    assert!(position(&app.db).await.unwrap() >= last, "a leader that froze cannot rewind its successor");

    let e = event();
    record(&e).await;
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    let row = loop {
        let rows = after(&app.db, last, 10_000).await.unwrap();
        if let Some(row) = rows.iter().find(|r| r.event_id == e.id) {
            break Position::of(row);
        }
        assert!(tokio::time::Instant::now() < until, "the new row was never readable");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // This app's own relay publishes the new row and moves the position past it.
    while position(&app.db).await.unwrap() < row {
        assert!(tokio::time::Instant::now() < until, "the relay never passed the new row");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pending(&app.db).await.unwrap(), 0, "every row is at or before the position");
}

/// The relay reads named columns through a cached statement: when the table's columns move (a
/// migration dropping one and adding another), the next read still decodes every field right.
/// With `SELECT *` the statement kept its first column list and sqlx-sqlite read past the row's
/// end (a panic that killed the relay; issue 36).
#[tokio::test]
async fn the_relay_reads_the_outbox_right_after_its_columns_moved() {
    // A database of its own, with no app on it: the table is altered under nobody else's feet.
    let dir = tempfile::tempdir().unwrap();
    let url = crate::common::fresh_database(dir.path()).await;
    // One connection, so the second read reuses the statement the first one prepared.
    let db = store::connect(&url, 1).await.unwrap();
    store::migrate(&db).await.unwrap();
    let e = event();
    let txn = db.begin().await.unwrap();
    store::record_event(&txn, &e).await.unwrap();
    txn.commit().await.unwrap();
    let find = async |db: &sea_orm::DatabaseConnection| {
        // On PostgreSQL a transaction still open anywhere on the server (another test's) keeps
        // newer rows back for a moment (see `store::outbox`).
        let until = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let rows = after(db, Position::default(), 100_000).await.expect("the outbox is readable");
            if let Some(row) = rows.into_iter().find(|r| r.event_id == e.id) {
                return row;
            }
            assert!(tokio::time::Instant::now() < until, "the row was never read");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let before = find(&db).await;

    // `payload` moves from the middle of the table to its end.
    for sql in [
        "ALTER TABLE outbox DROP COLUMN payload",
        "ALTER TABLE outbox ADD COLUMN payload TEXT NOT NULL DEFAULT 'moved'",
    ] {
        db.execute_unprepared(sql).await.unwrap();
    }
    let moved = find(&db).await;
    assert_eq!(moved.payload, "moved");
    assert_eq!((moved.id, moved.tx, moved.occurred_at), (before.id, before.tx, before.occurred_at));
    assert_eq!((moved.event_type, moved.aggregate_id), (before.event_type, before.aggregate_id));
}
