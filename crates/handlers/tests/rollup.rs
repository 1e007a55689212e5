//! `RollupHandler` and `rebuild_rollups` against real Postgres, one fresh database per test.
//! The invariant under test: at quiescence the daily counts equal the GROUP BY over
//! `events_raw`, whatever duplicates, reprocessing, failures and concurrency happened.

mod common;

use std::time::Duration;

use conveyor::testing::run_batch;
use conveyor::{HandlerOptions, Message, Outcome, PgStore, Store, WorkerPool};
use conveyor_handlers::{
    rebuild_rollups, Error, IndexRecord, IngestedEvent, RawStoreHandler, RetryPolicy, RollupHandler,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use common::{
    day, deliver, drained, event, eventually, raw_group_by, record, rollup_counts, scalar, setup,
};

fn raw() -> RawStoreHandler {
    RawStoreHandler::new(RetryPolicy::default())
}

fn rollup() -> RollupHandler {
    RollupHandler::new(RetryPolicy::default())
}

/// `n` events spread over three days, three types, two sources and five actors.
fn events(n: usize) -> Vec<IngestedEvent> {
    let types = ["click", "view", "purchase"];
    let sources = ["web", "ios"];
    (0..n)
        .map(|i| {
            let ts = format!("2026-11-{}T{:02}:{:02}:00Z", 22 + i % 3, i % 24, i % 60);
            event(
                types[(i / 3) % 3],
                &format!("u{}", i % 5),
                sources[i % 2],
                &ts,
            )
        })
        .collect()
}

/// Feed the same batch of records to the raw store and the rollup.
async fn feed_both(store: &PgStore, records: Vec<IndexRecord>) {
    deliver(store, &raw(), records.clone()).await;
    deliver(store, &rollup(), records).await;
}

#[sqlx::test(migrations = false)]
async fn counts_equal_the_group_by_over_events_raw_after_duplicates_and_reprocessing(
    pool: PgPool,
) -> anyhow::Result<()> {
    let store = setup(&pool).await?;
    let e = events(30);
    let other = events(4);
    // duplicates inside a batch (across records and inside a record) and across batches
    let first = vec![
        record("acme", e[0..12].to_vec()),
        record("acme", [&e[8..16], &e[8..10]].concat()),
        record("globex", other.clone()),
    ];
    let second = vec![
        record("acme", e[14..30].to_vec()),
        record("acme", e[0..3].to_vec()),
    ];
    feed_both(&store, first.clone()).await;
    feed_both(&store, second).await;
    // the first batch reprocessed, as after a crash between commit and acknowledgement
    feed_both(&store, first).await;

    let counts = rollup_counts(&pool).await;
    assert_eq!(counts, raw_group_by(&pool).await);
    let total: i64 = counts.iter().map(|row| row.4).sum();
    assert_eq!(total, 34, "30 acme events and 4 globex events, each once");
    assert_eq!(
        scalar(&pool, "select count(*) from analytics_rollup_seen").await,
        34
    );
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn unique_actors_are_recorded_once_per_namespace_and_day(pool: PgPool) -> anyhow::Result<()> {
    let store = setup(&pool).await?;
    deliver(
        &store,
        &rollup(),
        vec![
            record(
                "acme",
                vec![
                    event("click", "ann", "web", "2026-11-24T01:00:00Z"),
                    event("view", "ann", "ios", "2026-11-24T02:00:00Z"),
                    event("click", "bob", "web", "2026-11-24T23:59:59Z"),
                    // the 25th in UTC, though the 24th in the client's zone
                    event("click", "ann", "web", "2026-11-24T23:30:00-01:00"),
                ],
            ),
            record(
                "globex",
                vec![event("click", "ann", "web", "2026-11-24T03:00:00Z")],
            ),
        ],
    )
    .await;
    deliver(
        &store,
        &rollup(),
        vec![record(
            "acme",
            vec![event("view", "bob", "web", "2026-11-24T05:00:00Z")],
        )],
    )
    .await;

    let actors: Vec<(String, chrono::NaiveDate, String)> = sqlx::query_as(
        "select namespace, day, actor_id from analytics_daily_actors order by 1, 2, 3",
    )
    .fetch_all(&pool)
    .await?;
    let expected = [
        ("acme", "2026-11-24", "ann"),
        ("acme", "2026-11-24", "bob"),
        ("acme", "2026-11-25", "ann"),
        ("globex", "2026-11-24", "ann"),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(ns, d, a)| (ns.to_string(), day(d), a.to_string()))
        .collect();
    assert_eq!(actors, expected);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_failed_batch_counts_nothing_and_its_retry_counts_once(
    pool: PgPool,
) -> anyhow::Result<()> {
    let store = setup(&pool).await?;
    // retries far in the future, so the failed events stay out of the way of the rerun
    let patient = RollupHandler::new(RetryPolicy {
        max_retries: 5,
        base_delay: Duration::from_secs(3600),
    });
    let mut e = events(10);
    e[7].actor_id = "boom".into();
    let records = vec![
        record("acme", e[..5].to_vec()),
        record("acme", e[5..].to_vec()),
    ];
    deliver(&store, &raw(), records.clone()).await;
    sqlx::query(
        "alter table analytics_daily_actors add constraint no_boom check (actor_id <> 'boom')",
    )
    .execute(&pool)
    .await?;

    let run = run_batch(&store, &patient, records.clone()).await?;
    assert!(run
        .outcomes
        .iter()
        .all(|(_, o)| matches!(o, Outcome::Retry { .. })));
    for table in [
        "analytics_rollup_seen",
        "analytics_daily_event_counts",
        "analytics_daily_actors",
    ] {
        let rows = scalar(&pool, &format!("select count(*) from {table}")).await;
        assert_eq!(rows, 0, "{table} kept writes of a rolled-back batch");
    }

    sqlx::query("alter table analytics_daily_actors drop constraint no_boom")
        .execute(&pool)
        .await?;
    deliver(&store, &patient, records).await;
    assert_eq!(rollup_counts(&pool).await, raw_group_by(&pool).await);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn concurrent_rollup_batches_stay_exact(
    options: PgPoolOptions,
    connect: PgConnectOptions,
) -> anyhow::Result<()> {
    let pool = options
        .max_connections(4)
        .connect_with(connect.clone())
        .await?;
    let store = setup(&pool).await?;
    // 400 records of 20 events drawn with overlap from 1,500 events: every batch shares
    // count rows and many event keys with the batches running beside it
    let base = events(1500);
    let records: Vec<IndexRecord> = (0..400)
        .map(|i| {
            record(
                "acme",
                (0..20)
                    .map(|k| base[(i * 37 + k * 71) % 1500].clone())
                    .collect(),
            )
        })
        .collect();
    for key in ["raw", "rollup"] {
        let msgs = records.iter().map(|r| {
            Message::new(r.clone())
                .routing_key(key)
                .fairness_key("acme")
        });
        store.publish_batch(msgs).await?;
    }

    // two pools, as two server processes, each running two rollup workers
    let token = CancellationToken::new();
    let mut running = Vec::new();
    for _ in 0..2 {
        let own = PgPoolOptions::new()
            .max_connections(10)
            .connect_with(connect.clone())
            .await?;
        let workers = WorkerPool::builder(PgStore::new(own))
            .register_with(rollup(), HandlerOptions::default().concurrency(2))
            .register(raw())
            .build()?;
        running.push(tokio::spawn(workers.run(token.clone().cancelled_owned())));
    }
    eventually(Duration::from_secs(60), "both queues drained", || {
        drained(&store, &["raw", "rollup"], 400)
    })
    .await;
    token.cancel();
    for task in running {
        task.await??;
    }

    let counts = rollup_counts(&pool).await;
    assert_eq!(counts, raw_group_by(&pool).await);
    let distinct = scalar(&pool, "select count(*) from events_raw").await;
    assert_eq!(counts.iter().map(|row| row.4).sum::<i64>(), distinct);
    assert_eq!(
        scalar(&pool, "select max(attempts)::bigint from conveyor_events").await,
        1,
        "a batch failed (a deadlock?) and was retried"
    );
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn rebuild_rollups_repairs_tampered_counts_within_its_range(
    pool: PgPool,
) -> anyhow::Result<()> {
    let store = setup(&pool).await?;
    let records = vec![record("acme", events(30)), record("globex", events(6))];
    feed_both(&store, records.clone()).await;
    let exact = raw_group_by(&pool).await;

    sqlx::query("update analytics_daily_event_counts set count = 999")
        .execute(&pool)
        .await?;
    sqlx::query("delete from analytics_daily_actors where day = '2026-11-23'")
        .execute(&pool)
        .await?;
    sqlx::query(
        "insert into analytics_daily_event_counts values ('acme', '2026-11-23', 'ghost', 'web', 5)",
    )
    .execute(&pool)
    .await?;
    let actors_before = scalar(&pool, "select count(*) from analytics_daily_actors").await;

    let report = rebuild_rollups(&pool, day("2026-11-23"), day("2026-11-24")).await?;

    assert_eq!(report.days, 2);
    let in_range = scalar(
        &pool,
        "select count(*) from events_raw where ts >= '2026-11-23 00:00+00' and ts < '2026-11-25 00:00+00'",
    )
    .await;
    assert_eq!(report.events, in_range);
    let counts = rollup_counts(&pool).await;
    for row in &counts {
        if row.1 == day("2026-11-22") {
            assert_eq!(row.4, 999, "a day outside the range was rebuilt: {row:?}");
        }
    }
    let repaired: Vec<_> = counts
        .into_iter()
        .filter(|r| r.1 != day("2026-11-22"))
        .collect();
    let expected: Vec<_> = exact
        .into_iter()
        .filter(|r| r.1 != day("2026-11-22"))
        .collect();
    assert_eq!(repaired, expected);
    assert!(scalar(&pool, "select count(*) from analytics_daily_actors").await > actors_before);

    // the rebuilt seen keys keep the handler from counting those events again
    deliver(&store, &rollup(), records).await;
    let after: Vec<_> = rollup_counts(&pool)
        .await
        .into_iter()
        .filter(|r| r.1 != day("2026-11-22"))
        .collect();
    assert_eq!(after, expected);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn rebuild_rollups_rejects_a_reversed_range(pool: PgPool) -> anyhow::Result<()> {
    setup(&pool).await?;
    let err = rebuild_rollups(&pool, day("2026-11-24"), day("2026-11-23"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidQuery(msg) if msg.contains("from")),
        "{err}"
    );
    Ok(())
}
