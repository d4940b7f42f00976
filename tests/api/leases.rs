//! Event leases (cluster mode's ownership): one live owner per event, an epoch that moves on with
//! every take, renewals and releases that only the current owner can make. Runs on both
//! backends; on PostgreSQL the database's clock decides.

use std::time::Duration;

use boxoffice::store::leases::{acquire, current, release, renew};
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
