//! Helpers of the handler tests (raw store, partitions, rollups, queries, search): a migrated
//! database with day partitions around a fixed "today", event builders, handler runs, polling
//! and reads to compare.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use conveyor::testing::{run_batch, TestRun};
use conveyor::{EventHandler, Outcome, PgStore, Store};
use conveyor_handlers::{IndexRecord, IngestedEvent, PartitionManager};
use sqlx::PgPool;
use uuid::Uuid;

/// The day the tests pretend it is.
pub(crate) fn today() -> NaiveDate {
    day("2026-11-25")
}

/// A date from `YYYY-MM-DD`.
pub(crate) fn day(s: &str) -> NaiveDate {
    s.parse().expect("a YYYY-MM-DD date")
}

/// A UTC timestamp from RFC 3339.
pub(crate) fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("an RFC 3339 timestamp")
}

/// The partition manager of the tests: a small window (7 days back, 3 ahead) keeps setup fast.
pub(crate) fn manager() -> PartitionManager {
    PartitionManager {
        ahead_days: 3,
        retention_days: 7,
    }
}

/// Migrate the fresh database, create the partitions around [`today`], and return a store.
pub(crate) async fn setup(pool: &PgPool) -> anyhow::Result<PgStore> {
    conveyor_handlers::migrate(pool).await?;
    manager().maintain(pool, today()).await?;
    Ok(PgStore::new(pool.clone()))
}

/// An event with a fresh id.
pub(crate) fn event(event_type: &str, actor_id: &str, source: &str, ts: &str) -> IngestedEvent {
    IngestedEvent {
        event_id: Uuid::new_v4(),
        event_type: event_type.into(),
        actor_id: actor_id.into(),
        source: source.into(),
        timestamp: at(ts),
        attributes: serde_json::json!({"path": "/pricing", "n": 3})
            .as_object()
            .cloned()
            .unwrap(),
    }
}

/// A record of `events` in `namespace`.
pub(crate) fn record(namespace: &str, events: Vec<IngestedEvent>) -> IndexRecord {
    IndexRecord {
        namespace: namespace.into(),
        request_id: "req-1".into(),
        events,
    }
}

/// Run one batch of `handler` over `records` through the framework and assert every record
/// was delivered.
pub(crate) async fn deliver<S, H>(store: &S, handler: &H, records: Vec<IndexRecord>) -> TestRun
where
    S: Store,
    H: EventHandler<S, Event = IndexRecord>,
{
    let run = run_batch(store, handler, records).await.expect("run_batch");
    for (id, outcome) in &run.outcomes {
        assert_eq!(*outcome, Outcome::Delivered, "event {id:?}");
    }
    run
}

/// `(namespace, day, event_type, source, count)` rows.
pub(crate) type CountRow = (String, NaiveDate, String, String, i64);

/// What the rollup must equal: the GROUP BY over `events_raw`, sorted.
pub(crate) async fn raw_group_by(pool: &PgPool) -> Vec<CountRow> {
    sqlx::query_as(
        "select namespace, (ts at time zone 'UTC')::date, event_type, source, count(*)
           from events_raw group by 1, 2, 3, 4 order by 1, 2, 3, 4",
    )
    .fetch_all(pool)
    .await
    .expect("group by events_raw")
}

/// The rollup's daily counts, sorted like [`raw_group_by`].
pub(crate) async fn rollup_counts(pool: &PgPool) -> Vec<CountRow> {
    sqlx::query_as(
        "select namespace, day, event_type, source, count
           from analytics_daily_event_counts order by 1, 2, 3, 4",
    )
    .fetch_all(pool)
    .await
    .expect("read counts")
}

/// A single `i64` a statement returns.
pub(crate) async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Whether a table named `name` exists.
pub(crate) async fn table_exists(pool: &PgPool, name: &str) -> bool {
    sqlx::query_scalar("select to_regclass($1) is not null")
        .bind(name)
        .fetch_one(pool)
        .await
        .expect("to_regclass")
}

/// Poll `check` every 20 ms until it holds, failing the test after `limit`.
pub(crate) async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether every event of the queues with `routing_keys` is delivered (none pending,
/// claimed or dead) and `expected` were.
pub(crate) async fn drained<S: Store>(store: &S, routing_keys: &[&str], expected: i64) -> bool {
    let stats = store.stats().await.expect("stats");
    routing_keys.iter().all(|key| {
        stats
            .iter()
            .find(|s| s.queue.routing_key.as_deref() == Some(*key))
            .is_some_and(|s| {
                s.pending == 0 && s.in_flight == 0 && s.dead == 0 && s.delivered == expected
            })
    })
}
