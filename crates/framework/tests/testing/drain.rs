//! `testing::drain` on both backends: until nothing is due, with retries waiting, and its timeout.

use std::time::Duration;

use conveyor::testing::{self, Drained};
use conveyor::{Batch, Context, EventHandler, HandlerError, Message, SqlStore, Store, WorkerPool};
use sqlx::PgPool;

use super::{orders, pg, receipt, Audit, Flaky, Mailer, Order, Receipts};

/// Fails for good: dead-lettered at once.
struct Refuse;

#[derive(Debug, serde::Serialize, serde::Deserialize, garde::Validate)]
struct Refund {
    #[garde(skip)]
    n: u32,
}

impl conveyor::Event for Refund {
    const NAME: &'static str = "refund";
}

#[async_trait::async_trait]
impl<S: Store> EventHandler<S> for Refuse {
    type Event = Refund;

    async fn handle(&self, _: Batch<Refund>, _: &mut Context<'_, S>) -> Result<(), HandlerError> {
        Err(HandlerError::fail("refunds are closed"))
    }
}

async fn drain_runs_until_nothing_is_due<S: SqlStore>(store: &S) {
    store
        .publish_batch(orders(&["o-1", "o-2", "o-3"]))
        .await
        .unwrap();
    store.publish(Refund { n: 1 }).await.unwrap();
    // not due for an hour: left alone
    store
        .publish(Message::new(receipt("later")).delay(Duration::from_secs(3600)))
        .await
        .unwrap();
    let builder = WorkerPool::builder(store.clone())
        .register(Receipts)
        .register(Mailer)
        .register(Refuse);
    let drained: Drained = testing::drain(builder, Duration::from_secs(20))
        .await
        .unwrap();
    // 3 orders and their 3 receipts delivered; the refund dead; the delayed receipt waits
    assert_eq!(
        (
            drained.delivered,
            drained.retrying,
            drained.dead,
            drained.delayed
        ),
        (6, 0, 1, 1),
        "{:?}",
        drained.stats
    );
    // the Audit events have no handler in the pool and are not waited for
    assert_eq!(
        testing::published::<Audit, S>(store).await.unwrap().len(),
        1
    );
}

on_both_backends!(
    drain_runs_until_nothing_is_due,
    drain_on_postgres,
    drain_on_sqlite
);

async fn drain_counts_retries_waiting_for_their_backoff<S: SqlStore>(store: &S) {
    store.publish_batch(orders(&["o-1", "o-2"])).await.unwrap();
    let flaky = Flaky::default();
    let builder = WorkerPool::builder(store.clone()).register(flaky.clone());
    let drained = testing::drain(builder, Duration::from_secs(20))
        .await
        .unwrap();
    // each order failed once and waits about a second for its retry
    assert_eq!(
        (
            drained.delivered,
            drained.retrying,
            drained.dead,
            drained.delayed
        ),
        (0, 2, 0, 2)
    );
    assert_eq!(*flaky.seen.lock().unwrap(), vec![1, 1]);
}

on_both_backends!(
    drain_counts_retries_waiting_for_their_backoff,
    drain_retries_on_postgres,
    drain_retries_on_sqlite
);

/// Retries at once, forever: the queue never settles.
struct Spin;

#[async_trait::async_trait]
impl<S: Store> EventHandler<S> for Spin {
    type Event = Order;
    const MAX_RETRIES: u32 = u32::MAX;

    async fn handle(&self, _: Batch<Order>, _: &mut Context<'_, S>) -> Result<(), HandlerError> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        Err(HandlerError::retry_after(Duration::ZERO, "again"))
    }
}

async fn drain_times_out_on_work_that_never_settles<S: SqlStore>(store: &S) {
    store.publish(Order { id: "o-1".into() }).await.unwrap();
    let builder = WorkerPool::builder(store.clone()).register(Spin);
    let err = testing::drain(builder, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, conveyor::Error::Config(m) if m.starts_with("drain:")),
        "{err}"
    );
}

on_both_backends!(
    drain_times_out_on_work_that_never_settles,
    drain_timeout_on_postgres,
    drain_timeout_on_sqlite
);
