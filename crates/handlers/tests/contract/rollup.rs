//! `RollupHandler` and `rebuild_rollups`: at quiescence the daily counts equal the GROUP BY
//! over `events_raw`, whatever duplicates, reprocessing, failures and concurrency happened.

use std::time::Duration;

use conveyor::{HandlerOptions, Message, Outcome, Store, WorkerPool};
use conveyor_handlers::{Error, IndexRecord, PipelineStore, RetryPolicy, RollupHandler};

use super::fixtures::{
    day, deliver, drained, event, eventually, feed_both, raw, record, rollup, spread, Running,
};
use super::harness::{CountRow, Handles};
use super::Harness;

/// Duplicates inside a batch (across records and inside a record), across batches, and a
/// batch reprocessed as after a crash between commit and acknowledgement count once.
pub(crate) async fn counts_equal_the_group_by_over_events_raw_after_duplicates_and_reprocessing<
    H: Harness,
>(
    h: &H,
) -> anyhow::Result<()> {
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
    feed_both(h.store(), first.clone()).await;
    feed_both(h.store(), second).await;
    feed_both(h.store(), first).await;

    let counts = h.rollup_counts().await;
    assert_eq!(counts, h.raw_group_by().await);
    let total: i64 = counts.iter().map(|r| r.4).sum();
    assert_eq!(total, 34, "30 acme events and 4 globex events, each once");
    assert_eq!(
        h.scalar("select count(*) from analytics_rollup_seen").await,
        34
    );
    Ok(())
}

/// An actor is recorded once per namespace and UTC day, across batches too.
pub(crate) async fn unique_actors_are_recorded_once_per_namespace_and_utc_day<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    let acme = vec![
        event("click", "ann", "web", "2026-11-24T01:00:00Z"),
        event("view", "ann", "ios", "2026-11-24T02:00:00Z"),
        event("click", "bob", "web", "2026-11-24T23:59:59.999999Z"),
        // the 25th in UTC, though the 24th in the client's zone
        event("click", "ann", "web", "2026-11-24T23:30:00-01:00"),
    ];
    let globex = vec![event("click", "ann", "web", "2026-11-24T03:00:00Z")];
    let records = vec![record("acme", acme), record("globex", globex)];
    deliver(h.store(), &rollup(), records).await;
    let again = vec![event("view", "bob", "web", "2026-11-24T05:00:00Z")];
    deliver(h.store(), &rollup(), vec![record("acme", again)]).await;

    let actors = h
        .strings(
            "select namespace || ' ' || cast(day as text) || ' ' || actor_id
               from analytics_daily_actors order by 1",
        )
        .await;
    let expected = [
        "acme 2026-11-24 ann",
        "acme 2026-11-24 bob",
        "acme 2026-11-25 ann",
        "globex 2026-11-24 ann",
    ];
    assert_eq!(actors, expected);
    let s = h
        .store()
        .summary("acme", day("2026-11-24"), day("2026-11-25"))
        .await?;
    assert_eq!((s.total, s.unique_actors), (5, 2));
    Ok(())
}

/// A batch whose transaction fails leaves no rollup write behind; its retry counts once.
pub(crate) async fn a_failed_batch_counts_nothing_and_its_retry_counts_once<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    // retries far in the future, so the failed events stay out of the way of the rerun
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
    deliver(h.store(), &raw(), records.clone()).await;
    let refused = h.refuse_actor("boom").await;

    let run = h.store().run(&patient, records.clone()).await?;
    assert!(
        run.outcomes
            .iter()
            .all(|(_, o)| matches!(o, Outcome::Retry { error, .. } if error.contains(refused))),
        "{:?}",
        run.outcomes
    );
    for table in [
        "analytics_rollup_seen",
        "analytics_daily_event_counts",
        "analytics_daily_actors",
    ] {
        let rows = h.scalar(&format!("select count(*) from {table}")).await;
        assert_eq!(rows, 0, "{table} kept writes of a rolled-back batch");
    }

    h.allow_actors().await;
    deliver(h.store(), &patient, records).await;
    assert_eq!(h.rollup_counts().await, h.raw_group_by().await);
    let counted = "select cast(sum(count) as bigint) from analytics_daily_event_counts";
    assert_eq!(h.scalar(counted).await, 10);
    Ok(())
}

/// Two pools (as two server processes), each running two rollup workers, over batches that
/// share count rows and many event keys, count exactly and never fail a batch.
pub(crate) async fn two_pools_keep_the_rollups_exact<H: Harness>(h: &H) -> anyhow::Result<()> {
    let n = H::CONCURRENT_RECORDS;
    let base = spread(n * 4);
    let records: Vec<IndexRecord> = (0..n)
        .map(|i| {
            record(
                "acme",
                (0..20)
                    .map(|k| base[(i * 37 + k * 71) % base.len()].clone())
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
        h.store().publish_batch(msgs).await?;
    }
    let mut pools = Vec::new();
    for _ in 0..2 {
        let builder = WorkerPool::builder(h.another_store().await);
        let builder = Handles::with(builder, rollup(), HandlerOptions::default().concurrency(2));
        pools.push(Handles::with(builder, raw(), HandlerOptions::default()).build()?);
    }
    let running = Running::spawn(pools);
    eventually(Duration::from_secs(60), "both queues drained", || {
        drained(h.store(), &["raw", "rollup"], n as i64)
    })
    .await;
    running.stop().await?;

    let counts = h.rollup_counts().await;
    assert_eq!(counts, h.raw_group_by().await);
    let distinct = h.scalar("select count(*) from events_raw").await;
    assert_eq!(counts.iter().map(|r| r.4).sum::<i64>(), distinct);
    assert_eq!(
        h.scalar("select cast(max(attempts) as bigint) from conveyor_events")
            .await,
        1,
        "a batch failed (a deadlock? database locked?) and was retried"
    );
    Ok(())
}

/// A rebuild over a day range recomputes counts, actors and seen keys there from
/// `events_raw`, leaves other days alone, and the handler then counts nothing twice.
pub(crate) async fn rebuild_rollups_repairs_tampered_counts_within_its_range<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    let records = vec![record("acme", spread(30)), record("globex", spread(6))];
    feed_both(h.store(), records.clone()).await;
    let outside = |rows: Vec<CountRow>| -> Vec<_> {
        rows.into_iter()
            .filter(|r| r.1 != day("2026-11-22"))
            .collect()
    };
    let exact = outside(h.raw_group_by().await);
    h.exec(
        "update analytics_daily_event_counts set count = 999;
         delete from analytics_daily_actors where day = '2026-11-23';
         insert into analytics_daily_event_counts values ('acme', '2026-11-23', 'ghost', 'web', 5);",
    )
    .await;

    let report = h
        .store()
        .rebuild_rollups(day("2026-11-23"), day("2026-11-24"))
        .await?;
    assert_eq!(report.days, 2);
    let in_range = records
        .iter()
        .flat_map(|r| &r.events)
        .filter(|e| e.timestamp.date_naive() >= day("2026-11-23"))
        .count();
    assert_eq!(report.events, in_range as i64);
    let counts = h.rollup_counts().await;
    for row in counts.iter().filter(|r| r.1 == day("2026-11-22")) {
        assert_eq!(row.4, 999, "a day outside the range was rebuilt: {row:?}");
    }
    assert_eq!(outside(counts), exact);
    let actors = h
        .scalar("select count(*) from analytics_daily_actors where day = '2026-11-23'")
        .await;
    assert_eq!(actors, 4 + 2, "u0..u3 of acme, two actors of globex");

    // the rebuilt seen keys keep the handler from counting those events again
    deliver(h.store(), &rollup(), records).await;
    assert_eq!(outside(h.rollup_counts().await), exact);
    Ok(())
}

/// A rebuild whose `from` is after its `to` is refused, naming both.
pub(crate) async fn rebuild_rollups_rejects_a_reversed_range<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    let err = h
        .store()
        .rebuild_rollups(day("2026-11-24"), day("2026-11-23"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidQuery(m) if m == "from 2026-11-24 is after to 2026-11-23"),
        "{err}"
    );
    Ok(())
}
