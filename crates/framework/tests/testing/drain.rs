//! `testing::drain` on both backends: until nothing is due, with retries waiting, and its timeout.

use std::time::Duration;

use conveyor::testing::{self, Drained};
use conveyor::{Message, SqlStore, WorkerPool};
use sqlx::PgPool;

use super::{orders, pg, receipt, script, Act, Audit, Order, Receipts, SendReceipt};

async fn drain_runs_until_nothing_is_due<S: SqlStore>(store: &S) {
    store
        .publish_batch(orders(&["o-1", "o-2", "o-3"]))
        .await
        .unwrap();
    // not due for an hour: left alone
    let later = Message::new(receipt("later")).delay(Duration::from_secs(3600));
    store.publish(later).await.unwrap();
    // a queue the pool does not consume: not waited for
    let elsewhere = Message::new(orders(&["o-4"]).remove(0)).routing_key("elsewhere");
    store.publish(elsewhere).await.unwrap();
    let builder = WorkerPool::builder(store.clone())
        .register(Receipts)
        .register(script::<SendReceipt>(Act::Deliver))
        .register(script::<Audit>(Act::Fail));
    let drained: Drained = testing::drain(builder, Duration::from_secs(20))
        .await
        .unwrap();
    // 3 orders and their 3 receipts delivered, the batch's audit dead, the later receipt waits
    let counts = (drained.delivered, drained.retrying, drained.dead);
    assert_eq!(counts, (6, 0, 1), "{:?}", drained.stats);
    assert_eq!(drained.delayed, 1, "{:?}", drained.stats);
}

on_both_backends!(
    drain_runs_until_nothing_is_due,
    drain_on_postgres,
    drain_on_sqlite
);

async fn drain_counts_retries_waiting_for_their_backoff<S: SqlStore>(store: &S) {
    store.publish_batch(orders(&["o-1", "o-2"])).await.unwrap();
    let flaky = script::<Order>(Act::Retry);
    let seen = flaky.seen.clone();
    let builder = WorkerPool::builder(store.clone()).register(flaky);
    let drained = testing::drain(builder, Duration::from_secs(20))
        .await
        .unwrap();
    // each order failed once and waits about a second for its retry
    let counts = (drained.delivered, drained.retrying, drained.dead);
    assert_eq!((counts, drained.delayed), ((0, 2, 0), 2));
    assert_eq!(*seen.lock().unwrap(), vec![1, 1]);
}

on_both_backends!(
    drain_counts_retries_waiting_for_their_backoff,
    drain_retries_on_postgres,
    drain_retries_on_sqlite
);

async fn drain_times_out_on_work_that_never_settles<S: SqlStore>(store: &S) {
    store.publish_batch(orders(&["o-1"])).await.unwrap();
    let builder = WorkerPool::builder(store.clone()).register(script::<Order>(Act::RetryNow));
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
