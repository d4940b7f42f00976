//! Actor tests for `EventInventory` and its supervisor, on a real SQLite database, always: the
//! timer tests run on tokio's paused clock, which jumps ahead whenever the runtime waits on I/O,
//! so a database reached over a socket (PostgreSQL) would fire hold timers early. Timer tests
//! run on tokio's paused clock, so "exactly at the deadline" is checked to the millisecond.

#[path = "common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::time::Duration;

use chrono::Utc;
use ractor::{Actor, ActorRef};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DatabaseConnection, EntityTrait};

use uuid::Uuid;

use boxoffice::{
    actors::{
        CallError, Inventories, call,
        inventory::{EventInventory, InventoryArgs, InventoryError, InventoryMsg, ReserveRequest, Snapshot},
        supervisor::{Directory, InventorySupervisor, SupervisorArgs},
    },
    domain::{CategoryKind, OrderKind, OrderStatus, ReleaseReason},
    retry::{Backoff, RestartPolicy},
    store::{
        self, Committer,
        committer::Fence,
        entities::{categories, events, orders},
        leases,
    },
};

const T: Duration = Duration::from_secs(5);

struct Fixture {
    db: DatabaseConnection,
    committer: Committer,
    event_id: Uuid,
    _dir: tempfile::TempDir,
}

async fn fixture(total: i32, hold_seconds: i32) -> Fixture {
    fixture_priced(total, hold_seconds, 1000).await
}

/// An event at `price_cents` (0: free, booked by registration).
async fn fixture_priced(total: i32, hold_seconds: i32, price_cents: i64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = store::connect(&common::sqlite_database(dir.path()), 4).await.unwrap();
    store::migrate(&db).await.unwrap();
    let now = Utc::now();
    let category = Uuid::now_v7();
    categories::Entity::insert(categories::ActiveModel {
        id: Set(category),
        name: Set("c".into()),
        kind: Set(CategoryKind::Paid),
        created_at: Set(now),
    })
    .exec_without_returning(&db)
    .await
    .unwrap();
    let event_id = Uuid::now_v7();
    events::Entity::insert(events::ActiveModel {
        id: Set(event_id),
        name: Set("e".into()),
        category_id: Set(category),
        price_cents: Set(price_cents),
        currency: Set("EUR".into()),
        starts_at: Set(now),
        total_slots: Set(total),
        max_per_order: Set(10),
        hold_seconds: Set(hold_seconds),
        max_per_person: Set(0),
        waiting_room: Set(false),
        admit_per_second: Set(10),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(&db)
    .await
    .unwrap();
    let committer = Committer::spawn(db.clone(), 64, boxoffice::store::CommitFeed::new()).await.unwrap();
    Fixture { db, committer, event_id, _dir: dir }
}

impl Fixture {
    async fn inventory(&self, pin_max: Duration) -> ActorRef<InventoryMsg> {
        self.inventory_fenced(pin_max, None).await
    }

    /// An inventory acting under a lease (cluster mode).
    async fn inventory_fenced(&self, pin_max: Duration, fence: Option<Fence>) -> ActorRef<InventoryMsg> {
        let args = InventoryArgs {
            event_id: self.event_id,
            db: self.db.clone(),
            committer: self.committer.clone(),
            payment_pin_max: pin_max,
            passivate_after: None,
            fence,
            admission: Duration::from_secs(300),
        };
        Actor::spawn(None, EventInventory, args).await.unwrap().0
    }

    async fn order_status(&self, id: Uuid) -> OrderStatus {
        orders::Entity::find_by_id(id).one(&self.db).await.unwrap().unwrap().status
    }

    /// The order once its stored status is `status` (commits trail the actor's counts); panics
    /// after 5 s.
    async fn stored_as(&self, id: Uuid, status: OrderStatus) -> orders::Model {
        for _ in 0..250 {
            let order = orders::Entity::find_by_id(id).one(&self.db).await.unwrap().expect("the order row");
            if order.status == status {
                return order;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("order {id} was not stored as {status:?}");
    }
}

async fn reserve(inv: &ActorRef<InventoryMsg>, qty: u32) -> Result<Uuid, InventoryError> {
    let order_id = Uuid::now_v7();
    let req = ReserveRequest { order_id, user_id: Uuid::now_v7(), quantity: qty, registration: false };
    call(inv, |r| InventoryMsg::Reserve(req, tokio::time::Instant::now(), r), T).await.unwrap().map(|r| r.order_id)
}

async fn register(inv: &ActorRef<InventoryMsg>, user_id: Uuid) -> Result<Uuid, InventoryError> {
    let req = ReserveRequest { order_id: Uuid::now_v7(), user_id, quantity: 1, registration: true };
    call(inv, |r| InventoryMsg::Reserve(req, tokio::time::Instant::now(), r), T).await.unwrap().map(|r| r.order_id)
}

async fn snapshot(inv: &ActorRef<InventoryMsg>) -> Snapshot {
    call(inv, InventoryMsg::Snapshot, T).await.unwrap()
}

/// Lets woken timer tasks deliver their messages.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

fn consistent(s: &Snapshot) -> bool {
    s.available + s.held + s.sold == s.total && s.held + s.sold <= s.total
}

#[tokio::test]
async fn reservations_never_exceed_capacity_and_keep_the_sum() {
    let f = fixture(10, 600).await;
    let inv = f.inventory(T).await;
    assert!(reserve(&inv, 6).await.is_ok());
    assert_eq!(reserve(&inv, 5).await, Err(InventoryError::SoldOut { available: 4 }));
    assert_eq!(reserve(&inv, 11).await, Err(InventoryError::TooMany { max: 10 }));
    assert!(reserve(&inv, 4).await.is_ok());
    let s = snapshot(&inv).await;
    assert_eq!((s.available, s.held, s.sold), (0, 10, 0));
    assert!(consistent(&s));
}

#[tokio::test]
async fn a_hold_expires_exactly_at_its_deadline() {
    let f = fixture(10, 30).await;
    let inv = f.inventory(Duration::from_secs(120)).await;
    let order = reserve(&inv, 2).await.unwrap();
    tokio::time::pause();
    tokio::time::advance(Duration::from_millis(29_990)).await;
    settle().await;
    assert_eq!(snapshot(&inv).await.held, 2, "still held 10 ms before the deadline");
    tokio::time::advance(Duration::from_millis(20)).await;
    settle().await;
    let s = snapshot(&inv).await;
    assert_eq!((s.held, s.available, s.active_holds), (0, 10, 0), "released at the deadline");
    tokio::time::resume();
    f.stored_as(order, OrderStatus::Expired).await;
}

#[tokio::test]
async fn a_pinned_hold_outlives_its_expiry_until_the_pin_bound() {
    let f = fixture(10, 10).await;
    let inv = f.inventory(Duration::from_secs(60)).await;
    let order = reserve(&inv, 1).await.unwrap();
    tokio::time::pause();
    call(&inv, |r| InventoryMsg::Pin(order, r), T).await.unwrap().unwrap();
    tokio::time::advance(Duration::from_secs(30)).await;
    settle().await;
    assert_eq!(snapshot(&inv).await.held, 1, "a payment in flight keeps the hold past its 10 s");
    tokio::time::advance(Duration::from_secs(31)).await;
    settle().await;
    assert_eq!(snapshot(&inv).await.held, 0, "but not past the pin bound");
    tokio::time::resume();
}

#[tokio::test]
async fn unpinning_lets_the_hold_run_to_its_own_deadline() {
    let f = fixture(10, 10).await;
    let inv = f.inventory(Duration::from_secs(60)).await;
    let order = reserve(&inv, 1).await.unwrap();
    tokio::time::pause();
    call(&inv, |r| InventoryMsg::Pin(order, r), T).await.unwrap().unwrap();
    tokio::time::advance(Duration::from_secs(5)).await;
    call(&inv, |r| InventoryMsg::Unpin(order, r), T).await.unwrap().unwrap();
    tokio::time::advance(Duration::from_millis(4_900)).await;
    settle().await;
    assert_eq!(snapshot(&inv).await.held, 1);
    tokio::time::advance(Duration::from_millis(200)).await;
    settle().await;
    assert_eq!(snapshot(&inv).await.held, 0);
    tokio::time::resume();
}

#[tokio::test]
async fn unpinning_after_the_hold_lapsed_releases_it_at_once() {
    let f = fixture(10, 10).await;
    let inv = f.inventory(Duration::from_secs(60)).await;
    let order = reserve(&inv, 3).await.unwrap();
    tokio::time::pause();
    call(&inv, |r| InventoryMsg::Pin(order, r), T).await.unwrap().unwrap();
    tokio::time::advance(Duration::from_secs(15)).await;
    let unpinned = call(&inv, |r| InventoryMsg::Unpin(order, r), T).await.unwrap();
    assert_eq!(unpinned, Err(InventoryError::NotHeld));
    assert_eq!(snapshot(&inv).await.held, 0);
    tokio::time::resume();
}

#[tokio::test]
async fn a_payment_arriving_after_the_deadline_but_before_the_timer_fired_is_not_pinned() {
    let f = fixture(10, 10).await;
    let inv = f.inventory(Duration::from_secs(60)).await;
    let order = reserve(&inv, 2).await.unwrap();
    tokio::time::pause();
    // The pin is queued before the clock passes the deadline, and so ahead of the timer's message:
    // the actor handles it first, at a moment when the hold's deadline has already gone by.
    let (tx, pinned) = ractor::concurrency::oneshot();
    inv.send_message(InventoryMsg::Pin(order, tx.into())).unwrap();
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(pinned.await.unwrap(), Err(InventoryError::NotHeld), "a lapsed hold is not pinned");
    let s = snapshot(&inv).await;
    assert_eq!((s.held, s.available, s.active_holds), (0, 10, 0), "and it is released as expired");
    tokio::time::resume();
    f.stored_as(order, OrderStatus::Expired).await;
}

#[tokio::test]
async fn confirm_sells_the_hold_and_cancelling_the_sale_gives_the_seats_back() {
    let f = fixture(10, 600).await;
    let inv = f.inventory(T).await;
    let order = reserve(&inv, 4).await.unwrap();
    let tickets = call(&inv, |r| InventoryMsg::Confirm(order, vec![], r), T).await.unwrap().unwrap();
    assert_eq!(tickets.len(), 4);
    let s = snapshot(&inv).await;
    assert_eq!((s.available, s.held, s.sold), (6, 0, 4));
    assert_eq!(f.order_status(order).await, OrderStatus::Confirmed);
    // Confirming twice is refused: the hold is gone.
    let again = call(&inv, |r| InventoryMsg::Confirm(order, vec![], r), T).await.unwrap();
    assert_eq!(again.unwrap_err(), InventoryError::NotHeld);
    call(&inv, |r| InventoryMsg::Release(order, ReleaseReason::Cancelled, vec![], r), T).await.unwrap().unwrap();
    let s = snapshot(&inv).await;
    assert_eq!((s.available, s.held, s.sold), (10, 0, 0));
    assert_eq!(f.order_status(order).await, OrderStatus::Cancelled);
    // An expiry cannot release a sale.
    let order = reserve(&inv, 1).await.unwrap();
    call(&inv, |r| InventoryMsg::Confirm(order, vec![], r), T).await.unwrap().unwrap();
    let expired = call(&inv, |r| InventoryMsg::Release(order, ReleaseReason::Expired, vec![], r), T).await.unwrap();
    assert_eq!(expired, Err(InventoryError::NotHeld));
    assert_eq!(snapshot(&inv).await.sold, 1);
}

#[tokio::test]
async fn a_new_incarnation_recovers_counts_from_the_database() {
    let f = fixture(20, 600).await;
    let first = f.inventory(T).await;
    let held = reserve(&first, 3).await.unwrap();
    let sold = reserve(&first, 2).await.unwrap();
    call(&first, |r| InventoryMsg::Confirm(sold, vec![], r), T).await.unwrap().unwrap();
    first.stop(None);
    let second = f.inventory(T).await;
    let s = snapshot(&second).await;
    assert_eq!((s.available, s.held, s.sold, s.active_holds), (15, 3, 2, 1));
    // The recovered hold is live: it can be confirmed.
    call(&second, |r| InventoryMsg::Confirm(held, vec![], r), T).await.unwrap().unwrap();
    assert_eq!(snapshot(&second).await.sold, 5);
}

#[tokio::test]
async fn the_inventory_itself_allows_one_registration_per_person_across_incarnations_until_it_is_cancelled() {
    let f = fixture_priced(10, 600, 0).await;
    let inv = f.inventory(T).await;
    let ann = Uuid::now_v7();
    // Five clicks at once (from any node, they all end here): one registration.
    let clicks = futures::future::join_all((0..5).map(|_| register(&inv, ann))).await;
    let won: Vec<_> = clicks.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
    assert_eq!(won.len(), 1, "{clicks:?}");
    assert!(clicks.iter().filter(|r| r.is_err()).all(|r| *r == Err(InventoryError::AlreadyRegistered)), "{clicks:?}");
    assert!(register(&inv, Uuid::now_v7()).await.is_ok(), "someone else registers");
    assert_eq!(snapshot(&inv).await.sold, 2);
    inv.stop(None);
    // The next incarnation knows it from the store.
    let inv = f.inventory(T).await;
    assert_eq!(register(&inv, ann).await, Err(InventoryError::AlreadyRegistered));
    // A cancelled registration frees the person to register again.
    call(&inv, |r| InventoryMsg::Release(won[0], ReleaseReason::Cancelled, vec![], r), T).await.unwrap().unwrap();
    assert!(register(&inv, ann).await.is_ok());
    assert_eq!(snapshot(&inv).await.sold, 2);
}

fn supervisor_args(f: &Fixture, directory: Directory, max_restarts: u32) -> SupervisorArgs {
    SupervisorArgs {
        db: f.db.clone(),
        committer: f.committer.clone(),
        directory,
        payment_pin_max: T,
        passivate_after: None,
        restart: RestartPolicy {
            backoff: Backoff::new(Duration::from_millis(10), Duration::from_secs(5)),
            window: Duration::from_secs(60),
            max_restarts,
        },
        ownership: None,
        admission: Duration::from_secs(300),
    }
}

#[tokio::test]
async fn the_supervisor_restarts_a_failed_inventory_with_its_state() {
    let f = fixture(20, 600).await;
    let directory = Directory::default();
    let (sup, _) = Actor::spawn(None, InventorySupervisor, supervisor_args(&f, directory.clone(), 5)).await.unwrap();
    let inventories = Inventories { supervisor: sup, directory: directory.clone(), timeout: T, forward: None };
    let req =
        |q| ReserveRequest { order_id: Uuid::now_v7(), user_id: Uuid::now_v7(), quantity: q, registration: false };
    inventories.reserve(f.event_id, req(3)).await.unwrap().unwrap();
    inventories.reserve(f.event_id, req(4)).await.unwrap().unwrap();
    let before = inventories.snapshot(f.event_id).await.unwrap();
    let failed = directory.get(&f.event_id).unwrap();
    failed
        .cast(InventoryMsg::CommitFailed(boxoffice::store::committer::CommitError::Store(std::sync::Arc::new(
            sea_orm::DbErr::Custom("injected".into()),
        ))))
        .unwrap();
    for _ in 0..200 {
        if directory.get(&f.event_id).is_some_and(|a| a.get_id() != failed.get_id()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let restarted = directory.get(&f.event_id).expect("restarted");
    assert_ne!(restarted.get_id(), failed.get_id());
    assert_eq!(inventories.snapshot(f.event_id).await.unwrap(), before);
}

#[tokio::test]
async fn the_supervisor_gives_up_after_repeated_failures() {
    let f = fixture(20, 600).await;
    let directory = Directory::default();
    let (sup, _) = Actor::spawn(None, InventorySupervisor, supervisor_args(&f, directory.clone(), 2)).await.unwrap();
    let inventories = Inventories { supervisor: sup, directory: directory.clone(), timeout: T, forward: None };
    inventories.snapshot(f.event_id).await.unwrap();
    for _ in 0..3 {
        let current = loop {
            if let Some(a) = directory.get(&f.event_id) {
                break a;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        current
            .cast(InventoryMsg::CommitFailed(boxoffice::store::committer::CommitError::Store(std::sync::Arc::new(
                sea_orm::DbErr::Custom("injected".into()),
            ))))
            .unwrap();
        for _ in 0..100 {
            if directory.get(&f.event_id).is_none_or(|a| a.get_id() != current.get_id()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let result = inventories.snapshot(f.event_id).await;
    assert!(matches!(&result, Err(CallError::Unavailable(why)) if why.what.contains("gave up")), "{result:?}");
}

#[tokio::test]
async fn requests_during_a_restart_backoff_answer_unavailable_instead_of_starting_the_actor() {
    let f = fixture(20, 600).await;
    let directory = Directory::default();
    // A backoff far longer than the test: the restart is still pending when the request comes.
    let mut args = supervisor_args(&f, directory.clone(), 5);
    args.restart.backoff = Backoff::new(Duration::from_secs(60), Duration::from_secs(60));
    let (sup, _) = Actor::spawn(None, InventorySupervisor, args).await.unwrap();
    let inventories = Inventories { supervisor: sup, directory: directory.clone(), timeout: T, forward: None };
    inventories.snapshot(f.event_id).await.unwrap();
    directory
        .get(&f.event_id)
        .unwrap()
        .cast(InventoryMsg::CommitFailed(boxoffice::store::committer::CommitError::Store(std::sync::Arc::new(
            sea_orm::DbErr::Custom("injected".into()),
        ))))
        .unwrap();
    for _ in 0..200 {
        if directory.get(&f.event_id).is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let result = inventories.snapshot(f.event_id).await;
    assert!(matches!(&result, Err(CallError::Unavailable(why)) if why.what.contains("restarting")), "{result:?}");
    assert!(directory.get(&f.event_id).is_none(), "the request did not start the actor before its backoff");
}

#[tokio::test]
async fn an_inventory_that_cannot_recover_is_given_up_on_even_under_traffic() {
    let f = fixture(20, 600).await;
    let directory = Directory::default();
    let (sup, _) = Actor::spawn(None, InventorySupervisor, supervisor_args(&f, directory.clone(), 2)).await.unwrap();
    let inventories = Inventories { supervisor: sup, directory: directory.clone(), timeout: T, forward: None };
    // Recovery reads the orders table; without it every start fails.
    f.db.execute_unprepared("ALTER TABLE orders RENAME TO orders_gone").await.unwrap();
    // Requests keep coming: each one that starts the actor and fails counts, so the give-up comes.
    for _ in 0..400 {
        let result = inventories.snapshot(f.event_id).await;
        assert!(matches!(result, Err(CallError::Unavailable(_))), "{result:?}");
        if matches!(&result, Err(CallError::Unavailable(why)) if why.what.contains("gave up")) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the supervisor never gave up on an inventory that cannot start");
}

#[tokio::test]
async fn an_idle_inventory_passivates_and_the_next_call_brings_it_back_with_the_same_counts() {
    let f = fixture(20, 600).await;
    let directory = Directory::default();
    let args = SupervisorArgs {
        passivate_after: Some(Duration::from_millis(100)),
        ..supervisor_args(&f, directory.clone(), 5)
    };
    let (sup, _) = Actor::spawn(None, InventorySupervisor, args).await.unwrap();
    let inventories = Inventories { supervisor: sup, directory: directory.clone(), timeout: T, forward: None };
    // Sold seats only: an inventory with live holds never passivates (their timers live in it).
    let order = ReserveRequest { order_id: Uuid::now_v7(), user_id: Uuid::now_v7(), quantity: 3, registration: false };
    let sold = inventories.reserve(f.event_id, order).await.unwrap().unwrap().order_id;
    let first = directory.get(&f.event_id).unwrap();
    call(&first, |r| InventoryMsg::Confirm(sold, vec![], r), T).await.unwrap().unwrap();
    let before = inventories.snapshot(f.event_id).await.unwrap();
    assert_eq!((before.available, before.held, before.sold), (17, 0, 3));
    for _ in 0..400 {
        if directory.get(&f.event_id).is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(directory.get(&f.event_id).is_none(), "the idle inventory passivated");
    let after = inventories.snapshot(f.event_id).await.unwrap();
    assert_eq!(after, before, "the next call brought it back with the same counts");
    let second = directory.get(&f.event_id).expect("a new incarnation");
    assert_ne!(second.get_id(), first.get_id());
}

#[tokio::test]
async fn a_recovered_hold_keeps_its_original_expiry() {
    // The event holds for 600 s, but this hold was placed long ago and has 10 s left.
    let f = fixture(10, 600).await;
    let now = Utc::now();
    let order = Uuid::now_v7();
    let expires_at = now + chrono::Duration::seconds(10);
    orders::Entity::insert(orders::ActiveModel {
        id: Set(order),
        user_id: Set(Uuid::now_v7()),
        event_id: Set(f.event_id),
        kind: Set(OrderKind::Order),
        quantity: Set(2),
        amount_cents: Set(2000),
        currency: Set("EUR".into()),
        status: Set(OrderStatus::Pending),
        expires_at: Set(Some(expires_at)),
        refund_cents: Set(None),
        created_at: Set(now - chrono::Duration::seconds(590)),
        updated_at: Set(now - chrono::Duration::seconds(590)),
    })
    .exec_without_returning(&f.db)
    .await
    .unwrap();
    let inv = f.inventory(T).await;
    assert_eq!(snapshot(&inv).await.held, 2, "the hold is recovered");
    tokio::time::pause();
    // A second of margin on each side for the time the recovery itself took.
    tokio::time::advance(Duration::from_secs(9)).await;
    settle().await;
    assert_eq!(snapshot(&inv).await.held, 2, "still held a second before its original expiry");
    tokio::time::advance(Duration::from_secs(2)).await;
    settle().await;
    assert_eq!(snapshot(&inv).await.held, 0, "released at its original expiry, not 600 s after recovery");
    tokio::time::resume();
    // The release is committed after the counts change; a released order holds nothing, so its
    // expiry is cleared.
    let stored = f.stored_as(order, OrderStatus::Expired).await;
    assert_eq!((stored.status, stored.expires_at), (OrderStatus::Expired, None), "stored as expired");
}

#[tokio::test]
async fn an_inventory_whose_lease_moved_on_grants_nothing_more_and_stops() {
    let f = fixture(10, 600).await;
    let ttl = Duration::from_secs(30);
    let lease = leases::acquire(&f.db, f.event_id, "node-a", ttl).await.unwrap().unwrap();
    let fence = Fence { event_id: f.event_id, epoch: lease.epoch };
    let inv = f.inventory_fenced(Duration::from_secs(60), Some(fence)).await;
    let first = reserve(&inv, 2).await.expect("granted under a current lease");
    // node-a is cut off; node-b takes the event over (epoch 2). node-a's actor still believes
    // eight seats are free.
    assert!(leases::release(&f.db, &lease).await.unwrap());
    assert_eq!(leases::acquire(&f.db, f.event_id, "node-b", ttl).await.unwrap().unwrap().epoch, 2);
    assert_eq!(reserve(&inv, 1).await, Err(InventoryError::Moved), "a fenced hold is refused, not granted");
    for _ in 0..250 {
        if inv.get_status() == ractor::ActorStatus::Stopped {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(inv.get_status(), ractor::ActorStatus::Stopped, "the stale actor stops");
    let stored = orders::Entity::find().all(&f.db).await.unwrap();
    assert_eq!(stored.iter().map(|o| o.id).collect::<Vec<_>>(), vec![first], "only the first hold was written");
}
