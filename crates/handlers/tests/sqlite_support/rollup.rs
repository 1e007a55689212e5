//! `RollupHandler` and `rebuild_rollups` on SQLite: at quiescence the daily counts equal the
//! GROUP BY over `events_raw`, whatever duplicates, reprocessing, failures and concurrency
//! happened.

use std::time::Duration;

use conveyor::testing::run_batch;
use conveyor::{HandlerOptions, Message, Outcome, Store, WorkerPool};
use conveyor_handlers::{Error, IndexRecord, PipelineStore, RetryPolicy, RollupHandler};

use crate::common::{day, event, eventually, record};
use crate::sqlite_support::{
    deliver, drained, feed_both, raw, rollup, spread, CountRow, Running, TestDb,
};

#[tokio::test]
async fn rollups_equal_the_group_by_over_events_raw_after_duplicates_and_reprocessing(
) -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let e = spread(30);
    let first = vec![
        record("acme", e[..12].to_vec()),
        record("acme", [&e[8..16], &e[8..10]].concat()),
        record("globex", spread(4)),
    ];
    let second = vec![
        record("acme", e[14..].to_vec()),
        record("acme", e[..3].to_vec()),
    ];
    feed_both(&db.store, first.clone()).await;
    feed_both(&db.store, second).await;
    feed_both(&db.store, first).await;

    let counts = db.rollup_counts().await;
    assert_eq!(counts, db.raw_group_by().await);
    assert_eq!(counts.iter().map(|r| r.4).sum::<i64>(), 34);
    assert_eq!(
        db.scalar("select count(*) from analytics_rollup_seen")
            .await,
        34
    );
    Ok(())
}

#[tokio::test]
async fn unique_actors_are_recorded_once_per_namespace_and_utc_day() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let acme = vec![
        event("click", "ann", "web", "2026-11-24T01:00:00Z"),
        event("view", "ann", "ios", "2026-11-24T02:00:00Z"),
        event("click", "bob", "web", "2026-11-24T23:59:59.999999Z"),
        // the 25th in UTC, though the 24th in the client's zone
        event("click", "ann", "web", "2026-11-24T23:30:00-01:00"),
    ];
    let globex = vec![event("click", "ann", "web", "2026-11-24T03:00:00Z")];
    deliver(
        &db.store,
        &rollup(),
        vec![record("acme", acme), record("globex", globex)],
    )
    .await;
    let actors: Vec<(String, String, String)> = sqlx::query_as(
        "select namespace, day, actor_id from analytics_daily_actors order by 1, 2, 3",
    )
    .fetch_all(db.pool())
    .await?;
    let expected = [
        ("acme", "2026-11-24", "ann"),
        ("acme", "2026-11-24", "bob"),
        ("acme", "2026-11-25", "ann"),
        ("globex", "2026-11-24", "ann"),
    ]
    .map(|(n, d, a)| (n.to_owned(), d.to_owned(), a.to_owned()));
    assert_eq!(actors, expected);
    let s = db
        .store
        .summary("acme", day("2026-11-24"), day("2026-11-25"))
        .await?;
    assert_eq!((s.total, s.unique_actors), (4, 2));
    Ok(())
}

#[tokio::test]
async fn a_failed_rollup_batch_counts_nothing_and_its_retry_counts_once() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let patient = RollupHandler::new(RetryPolicy {
        max_retries: 5,
        base_delay: Duration::from_secs(3600),
    });
    let mut e = spread(10);
    e[7].actor_id = "boom".into();
    let records = vec![
        record("acme", e[..5].to_vec()),
        record("acme", e[5..].to_vec()),
    ];
    deliver(&db.store, &raw(), records.clone()).await;
    db.exec(
        "create trigger no_boom before insert on analytics_daily_actors
         when new.actor_id = 'boom' begin select raise(abort, 'boom refused'); end",
    )
    .await?;

    let run = run_batch(&db.store, &patient, records.clone()).await?;
    assert!(run
        .outcomes
        .iter()
        .all(|(_, o)| matches!(o, Outcome::Retry { error, .. } if error.contains("boom refused"))));
    for table in [
        "analytics_rollup_seen",
        "analytics_daily_event_counts",
        "analytics_daily_actors",
    ] {
        let rows = db.scalar(&format!("select count(*) from {table}")).await;
        assert_eq!(rows, 0, "{table} kept writes of a rolled-back batch");
    }

    db.exec("drop trigger no_boom").await?;
    deliver(&db.store, &patient, records).await;
    assert_eq!(db.rollup_counts().await, db.raw_group_by().await);
    assert_eq!(
        db.scalar("select sum(count) from analytics_daily_event_counts")
            .await,
        10
    );
    Ok(())
}

#[tokio::test]
async fn two_pools_on_one_file_keep_the_rollups_exact() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    // 150 records of 20 events drawn with overlap from 600 events
    let base = spread(600);
    let records: Vec<IndexRecord> = (0..150)
        .map(|i| {
            record(
                "acme",
                (0..20)
                    .map(|k| base[(i * 37 + k * 71) % 600].clone())
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
        db.store.publish_batch(msgs).await?;
    }
    let mut pools = Vec::new();
    for _ in 0..2 {
        pools.push(
            WorkerPool::builder(db.reopen().await?)
                .register_with(rollup(), HandlerOptions::default().concurrency(2))
                .register(raw())
                .build()?,
        );
    }
    let running = Running::spawn(pools);
    eventually(Duration::from_secs(60), "both queues drained", || {
        drained(&db.store, &["raw", "rollup"], 150)
    })
    .await;
    running.stop().await?;

    let counts = db.rollup_counts().await;
    assert_eq!(counts, db.raw_group_by().await);
    let distinct = db.scalar("select count(*) from events_raw").await;
    assert_eq!(counts.iter().map(|r| r.4).sum::<i64>(), distinct);
    assert_eq!(
        db.scalar("select max(attempts) from conveyor_events").await,
        1,
        "a batch failed (database locked?) and was retried"
    );
    Ok(())
}

#[tokio::test]
async fn rebuild_rollups_repairs_tampered_counts_within_its_range() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let records = vec![record("acme", spread(30)), record("globex", spread(6))];
    feed_both(&db.store, records.clone()).await;
    let outside = |rows: Vec<CountRow>| -> Vec<_> {
        rows.into_iter()
            .filter(|r| r.1 != day("2026-11-22"))
            .collect()
    };
    let exact = outside(db.raw_group_by().await);
    db.exec(
        "update analytics_daily_event_counts set count = 999;
         delete from analytics_daily_actors where day = '2026-11-23';
         insert into analytics_daily_event_counts values ('acme', '2026-11-23', 'ghost', 'web', 5);",
    )
    .await?;

    let report = db
        .store
        .rebuild_rollups(day("2026-11-23"), day("2026-11-24"))
        .await?;
    assert_eq!(report.days, 2);
    let in_range = db
        .scalar(
            "select count(*) from events_raw where date(ts / 1000000, 'unixepoch') >= '2026-11-23'",
        )
        .await;
    assert_eq!(report.events, in_range);
    let counts = db.rollup_counts().await;
    assert!(counts
        .iter()
        .filter(|r| r.1 == day("2026-11-22"))
        .all(|r| r.4 == 999));
    assert_eq!(outside(counts), exact);
    let actors = db
        .scalar("select count(*) from analytics_daily_actors where day = '2026-11-23'")
        .await;
    assert_eq!(actors, 4 + 2, "u0..u3 of acme, two actors of globex");

    // the rebuilt seen keys keep the handler from counting those events again
    deliver(&db.store, &rollup(), records).await;
    assert_eq!(outside(db.rollup_counts().await), exact);

    let err = db
        .store
        .rebuild_rollups(day("2026-11-24"), day("2026-11-23"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidQuery(m) if m == "from 2026-11-24 is after to 2026-11-23"),
        "{err}"
    );
    Ok(())
}
