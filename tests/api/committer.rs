//! The committer on both backends: what a job hears is what the store holds, however its jobs
//! fall into batches.

use boxoffice::{
    domain::{OrderKind, OrderStatus},
    store::{self, CommitFeed, Committer, WriteOp, entities::orders},
};
use chrono::Utc;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use uuid::Uuid;

use crate::common::TestApp;

fn held(id: Uuid, event: Uuid, user: Uuid) -> orders::ActiveModel {
    let now = Utc::now();
    orders::ActiveModel {
        id: Set(id),
        user_id: Set(user),
        event_id: Set(event),
        kind: Set(OrderKind::Order),
        quantity: Set(1),
        amount_cents: Set(1000),
        currency: Set("EUR".into()),
        status: Set(OrderStatus::Pending),
        expires_at: Set(Some(now + chrono::Duration::minutes(10))),
        refund_cents: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

#[tokio::test]
async fn an_order_confirmed_in_the_batch_right_behind_the_one_placing_it_is_confirmed() {
    let app = TestApp::spawn().await;
    let event = app.event(1000, 1000, 600).await;
    let (user, _) = app.signup("pipelined").await;
    // A committer of its own on a writer of its own, like the one the node runs, but taking one
    // job per batch: each order's confirmation is the batch right behind the one placing it.
    let writer = store::connect_writer(app.config.database.url.expose()).await.unwrap();
    let committer = Committer::spawn(writer, 1, CommitFeed::new()).await.unwrap();
    // Placing and confirming are queued back to back, nothing awaited. An update written before
    // the batch that placed its order committed would find no row, and be lost (a committer that
    // wrote the next batch on a second connection while the last one commits must hold such a
    // batch back).
    let n = 200;
    let mut answers = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = Uuid::now_v7();
        ids.push(id);
        answers.push(committer.submit(vec![WriteOp::InsertOrder(held(id, event, user))]).await);
        answers.push(
            committer
                .submit(vec![WriteOp::SetOrderStatus {
                    id,
                    from: &[OrderStatus::Pending],
                    to: OrderStatus::Confirmed,
                    expires_at: None,
                    refund_cents: None,
                }])
                .await,
        );
    }
    for answer in answers {
        answer.await.unwrap().expect("every job commits");
    }
    let confirmed = orders::Entity::find()
        .filter(orders::Column::Id.is_in(ids))
        .filter(orders::Column::Status.eq(OrderStatus::Confirmed))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(confirmed, n, "every order placed was confirmed by the update queued right after it");
}
