//! Event leases (cluster mode's ownership): one live owner per event, an epoch that moves on with
//! every take, renewals and releases that only the current owner can make; and the fence, the
//! committer's refusal of writes made under a lease that has moved on. Runs on both backends; on
//! PostgreSQL the database's clock decides.

use std::time::Duration;

use boxoffice::{
    domain::SlotCounts,
    store::{
        Committer, WriteOp,
        committer::{CommitError, Fence},
        entities::outbox,
        leases::{acquire, current, release, renew},
    },
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, Statement, TransactionTrait,
};

use uuid::Uuid;

use crate::common::TestApp;

const LONG: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_live_lease_has_one_owner_and_only_that_owner_renews_it() {
    let app = TestApp::spawn().await;
    let event = Uuid::now_v7();
    let a = acquire(&app.db, event, "node-a", LONG).await.unwrap().expect("a free event is taken");
    assert_eq!((a.owner.as_str(), a.epoch), ("node-a", 1));
    assert_eq!(acquire(&app.db, event, "node-b", LONG).await.unwrap(), None, "a live lease is not taken");
    assert_eq!(acquire(&app.db, event, "node-a", LONG).await.unwrap(), None, "its owner renews, it does not re-take");
    let renewed = renew(&app.db, &a, Duration::from_secs(60)).await.unwrap().expect("the owner renews");
    assert!(renewed > a.expires_at);
    let impostor = boxoffice::store::leases::Lease { owner: "node-b".into(), ..a.clone() };
    assert_eq!(renew(&app.db, &impostor, LONG).await.unwrap(), None);
    assert!(!release(&app.db, &impostor).await.unwrap());
    assert_eq!(current(&app.db, event).await.unwrap().map(|l| (l.owner, l.epoch)), Some(("node-a".into(), 1)));
}

#[tokio::test]
async fn a_lapsed_lease_is_taken_with_the_next_epoch_and_the_old_owner_can_no_longer_renew_or_release() {
    let app = TestApp::spawn().await;
    let event = Uuid::now_v7();
    let a = acquire(&app.db, event, "node-a", Duration::from_millis(200)).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    // node-a froze past its lease; node-b takes over.
    let b = acquire(&app.db, event, "node-b", LONG).await.unwrap().expect("a lapsed lease is taken");
    assert_eq!((b.owner.as_str(), b.epoch), ("node-b", 2));
    assert_eq!(renew(&app.db, &a, LONG).await.unwrap(), None, "the stale owner's renewal is refused");
    assert!(!release(&app.db, &a).await.unwrap(), "and so is its release");
    assert_eq!(current(&app.db, event).await.unwrap().unwrap().epoch, 2);
}

#[tokio::test]
async fn a_released_lease_is_taken_at_once_with_a_higher_epoch() {
    let app = TestApp::spawn().await;
    let event = Uuid::now_v7();
    let a = acquire(&app.db, event, "node-a", LONG).await.unwrap().unwrap();
    assert!(release(&app.db, &a).await.unwrap(), "graceful handover");
    let b = acquire(&app.db, event, "node-b", LONG).await.unwrap().expect("no waiting out the TTL");
    assert_eq!(b.epoch, 2);
    assert_eq!(renew(&app.db, &a, LONG).await.unwrap(), None);
    // Many nodes racing for one free event: exactly one wins.
    let other = Uuid::now_v7();
    let racers = (0..8).map(|i| {
        let db = app.db.clone();
        async move { acquire(&db, other, &format!("node-{i}"), LONG).await.unwrap() }
    });
    let won: Vec<_> = futures::future::join_all(racers).await.into_iter().flatten().collect();
    assert_eq!(won.len(), 1, "{won:?}");
    assert_eq!(won[0].epoch, 1);
}

/// A committer of its own on the test's database, like the one a node runs.
async fn committer(app: &TestApp) -> Committer {
    Committer::spawn(app.db.clone(), 64, boxoffice::store::CommitFeed::new()).await.unwrap()
}

/// A job that changes `event`'s counts (one `inventory.changed` row), fenced or not.
fn counts_job(event: Uuid, fence: Option<i64>) -> Vec<WriteOp> {
    let counts = SlotCounts { event_id: event, total: 10, available: 9, held: 1, sold: 0 };
    let mut ops = vec![WriteOp::Counts(counts)];
    ops.extend(fence.map(|epoch| WriteOp::Fence(Fence { event_id: event, epoch })));
    ops
}

async fn rows_about(app: &TestApp, event: Uuid) -> u64 {
    outbox::Entity::find().filter(outbox::Column::AggregateId.eq(event)).count(&app.db).await.unwrap()
}

#[tokio::test]
async fn a_stale_owners_writes_are_refused_and_the_rest_of_its_batch_commits() {
    let app = TestApp::spawn().await;
    let committer = committer(&app).await;
    let (moved, kept, free) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let stale = acquire(&app.db, moved, "node-a", LONG).await.unwrap().unwrap();
    let live = acquire(&app.db, kept, "node-a", LONG).await.unwrap().unwrap();
    // node-a lost `moved` (released here; a lapse ends the same way): node-b holds it at epoch 2.
    assert!(release(&app.db, &stale).await.unwrap());
    assert_eq!(acquire(&app.db, moved, "node-b", LONG).await.unwrap().unwrap().epoch, 2);

    // Queued back to back, so the committer usually folds them into one transaction; what each
    // job hears must not depend on that.
    let refused = committer.submit(counts_job(moved, Some(stale.epoch))).await;
    let current = committer.submit(counts_job(kept, Some(live.epoch))).await;
    let unfenced = committer.submit(counts_job(free, None)).await;
    let never_granted = committer.submit(counts_job(Uuid::now_v7(), Some(1))).await;
    match refused.await.unwrap() {
        Err(CommitError::Fenced { event_id, epoch }) => assert_eq!((event_id, epoch), (moved, 1)),
        other => panic!("the stale owner's job committed or failed otherwise: {other:?}"),
    }
    current.await.unwrap().expect("a job under a current lease commits");
    unfenced.await.unwrap().expect("an unfenced job commits");
    assert!(matches!(never_granted.await.unwrap(), Err(CommitError::Fenced { .. })), "no lease, no write");
    assert_eq!(rows_about(&app, moved).await, 0, "nothing of the fenced job was written");
    assert_eq!(rows_about(&app, kept).await, 1);
    assert_eq!(rows_about(&app, free).await, 1);
    // The new owner's writes go through.
    committer.commit(counts_job(moved, Some(2))).await.expect("the current owner commits");
    assert_eq!(rows_about(&app, moved).await, 1);
}

#[tokio::test]
async fn a_commit_racing_a_takeover_is_ordered_by_the_database_and_refused() {
    let app = TestApp::spawn().await;
    let committer = committer(&app).await;
    let event = Uuid::now_v7();
    let lease = acquire(&app.db, event, "node-a", LONG).await.unwrap().unwrap();
    // node-b's takeover is in flight (its transaction has moved the epoch on, not yet committed)
    // when node-a's commit arrives: the commit must wait for it and then see the new epoch.
    let takeover = app.db.begin().await.unwrap();
    let take = match app.db.get_database_backend() {
        DbBackend::Sqlite => "UPDATE event_leases SET epoch = epoch + 1, owner = 'node-b' WHERE event_id = ?",
        _ => "UPDATE event_leases SET epoch = epoch + 1, owner = 'node-b' WHERE event_id = $1",
    };
    let backend = app.db.get_database_backend();
    takeover.execute_raw(Statement::from_sql_and_values(backend, take, [event.into()])).await.unwrap();
    let mut pending = committer.submit(counts_job(event, Some(lease.epoch))).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(pending.try_recv().is_err(), "the commit waits for the takeover's transaction");
    takeover.commit().await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(10), pending).await.unwrap().unwrap();
    assert!(matches!(outcome, Err(CommitError::Fenced { .. })), "{outcome:?}");
    assert_eq!(rows_about(&app, event).await, 0);
}
