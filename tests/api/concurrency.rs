use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use boxoffice::store::entities::orders;

use crate::common::TestApp;

const SLOTS: u64 = 500;
const CLIENTS: usize = 200;
const ATTEMPTS_PER_CLIENT: usize = 10;

/// 2,000 order attempts from 200 concurrent clients against 500 seats: exactly 500 are held
/// or sold, every other attempt is a 409, the counts match the orders table, no 5xx, and the
/// invariant holds in every snapshot taken while the rush is on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hammered_event_is_never_oversold() {
    let app = Arc::new(TestApp::spawn().await);
    // Each fan books many times: no per-person limit here (its own tests are in orders.rs).
    let event = app.event_limited(1000, SLOTS as i64, 600, 1, Some(0)).await;
    let mut tokens = Vec::new();
    for i in 0..20 {
        tokens.push(app.signup(&format!("fan{i}")).await.1);
    }

    // A watcher checks the invariant continuously while the rush runs.
    let rushing = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (app, rushing) = (app.clone(), rushing.clone());
        tokio::spawn(async move {
            let mut snapshots = 0;
            while rushing.load(Ordering::Relaxed) {
                let (available, held, sold, total) = app.counts(event).await;
                assert_eq!(available + held + sold, total, "available + held + sold == total");
                assert!(held + sold <= total, "held + sold <= total");
                snapshots += 1;
            }
            snapshots
        })
    };

    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let app = app.clone();
        let token = tokens[c % tokens.len()].clone();
        // Some clients pay for what they got, so holds and sales mix.
        let pays = c % 4 == 0;
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..ATTEMPTS_PER_CLIENT {
                let (s, order) = app.order(&token, event, 1).await;
                if s == StatusCode::CREATED && pays {
                    let (ps, body) = app.pay(&token, &order, "tok_ok").await;
                    assert_eq!(ps, StatusCode::CREATED, "{body}");
                }
                statuses.push(s);
            }
            statuses
        }));
    }
    let mut by_status: HashMap<u16, usize> = HashMap::new();
    for t in tasks {
        for s in t.await.unwrap() {
            *by_status.entry(s.as_u16()).or_default() += 1;
        }
    }
    rushing.store(false, Ordering::Relaxed);
    let snapshots = watcher.await.unwrap();
    eprintln!("statuses: {by_status:?}, invariant snapshots: {snapshots}");

    let attempts = CLIENTS * ATTEMPTS_PER_CLIENT;
    assert_eq!(by_status.values().sum::<usize>(), attempts);
    assert_eq!(by_status.get(&201).copied().unwrap_or(0) as u64, SLOTS, "{by_status:?}");
    assert_eq!(by_status.get(&409).copied().unwrap_or(0), attempts - SLOTS as usize, "{by_status:?}");
    assert!(by_status.keys().all(|s| *s < 500), "no 5xx: {by_status:?}");
    assert!(snapshots > 0);

    let (available, held, sold, total) = app.counts(event).await;
    assert_eq!((available, held + sold, total), (0, SLOTS, SLOTS));
    let rows = orders::Entity::find().filter(orders::Column::EventId.eq(event)).all(&app.db).await.unwrap();
    use boxoffice::domain::OrderStatus;
    let in_db = |status| rows.iter().filter(|o| o.status == status).map(|o| o.quantity as u64).sum::<u64>();
    assert_eq!(in_db(OrderStatus::Pending) + in_db(OrderStatus::Paying), held, "held matches the orders table");
    assert_eq!(in_db(OrderStatus::Confirmed), sold, "sold matches the orders table");
    assert!(sold > 0, "some orders were paid");
}
