//! The pipeline on SQLite (`impl PipelineStore for SqliteStore`), one temporary database file
//! per test: the real handlers run through the framework (`conveyor::testing::run_batch` or
//! real `WorkerPool`s), then the read side, rebuild and retention are checked against what
//! they wrote. This file holds the raw store, retention and whole-pipeline tests; the other
//! areas are modules under `sqlite_support/`.

mod common;
#[allow(dead_code)] // the Postgres search tests use the rest
mod search_support;
mod sqlite_support;

#[path = "sqlite_support/deadline.rs"]
mod deadline;
#[path = "sqlite_support/keyword.rs"]
mod keyword;
#[path = "sqlite_support/queries.rs"]
mod queries;
#[path = "sqlite_support/rollup.rs"]
mod rollup;
#[path = "sqlite_support/vector.rs"]
mod vector;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use conveyor::testing::run_batch;
use conveyor::{Message, Outcome, Store, WorkerPool};
use conveyor_handlers::{
    register_all, EventsReceived, KeywordIndexHandler, Pipeline, PipelineStore, RawEventQuery,
    VectorIndexHandler,
};

use common::{at, event, eventually, manager, record, today};
use sqlite_support::{deliver, drained, raw, rollup, spread, Running, TestDb};

#[tokio::test]
async fn raw_events_are_stored_once_when_repeated_in_a_batch_and_delivered_twice(
) -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let e = spread(6);
    let records = vec![
        record("acme", [&e[..4], &e[1..2]].concat()),
        record("acme", e[3..].to_vec()),
        record("globex", e[..1].to_vec()),
    ];
    deliver(&db.store, &raw(), records.clone()).await;
    deliver(&db.store, &raw(), records).await;

    assert_eq!(db.scalar("select count(*) from events_raw").await, 7);
    let q = RawEventQuery {
        namespace: "acme".into(),
        from: at("2026-11-22T00:00:00Z"),
        to: at("2026-11-25T00:00:00Z"),
        event_type: None,
        after: None,
        limit: 100,
    };
    let stored = db.store.raw_events(&q).await?;
    assert_eq!(stored.len(), 6);
    let first = stored.iter().find(|r| r.event_id == e[0].event_id).unwrap();
    assert_eq!(first.timestamp, e[0].timestamp);
    assert_eq!(
        (first.event_type.as_str(), first.actor_id.as_str()),
        ("click", "u0")
    );
    assert_eq!(
        first.attributes,
        serde_json::Value::Object(e[0].attributes.clone())
    );
    Ok(())
}

#[tokio::test]
async fn timestamps_keep_microseconds_and_events_differing_by_one_are_distinct(
) -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let a = event("click", "u1", "web", "2026-11-24T10:00:00.123456Z");
    let mut b = a.clone();
    b.timestamp += TimeDelta::microseconds(1);
    deliver(
        &db.store,
        &raw(),
        vec![record("acme", vec![a.clone(), b.clone()])],
    )
    .await;
    let q = RawEventQuery {
        namespace: "acme".into(),
        from: a.timestamp,
        to: b.timestamp + TimeDelta::microseconds(1),
        event_type: None,
        after: None,
        limit: 10,
    };
    let got: Vec<DateTime<Utc>> = db
        .store
        .raw_events(&q)
        .await?
        .iter()
        .map(|r| r.timestamp)
        .collect();
    assert_eq!(got, [a.timestamp, b.timestamp]);
    Ok(())
}

#[tokio::test]
async fn maintain_deletes_rows_past_retention_and_keeps_recent_ones() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    // retention 7 days: 2026-11-19 is the first day kept on 2026-11-25
    let old = event("click", "old", "web", "2026-11-18T23:59:59.999999Z");
    let kept = event("click", "kept", "web", "2026-11-19T00:00:00Z");
    let ahead = event("click", "ahead", "web", "2026-11-27T10:00:00Z");
    let rec = vec![record(
        "acme",
        vec![old.clone(), kept.clone(), ahead.clone()],
    )];
    let pipeline = Pipeline::default();
    for handler_run in [
        run_batch(&db.store, &raw(), rec.clone()).await?,
        run_batch(&db.store, &rollup(), rec.clone()).await?,
        run_batch(
            &db.store,
            &KeywordIndexHandler::new(pipeline.retry),
            rec.clone(),
        )
        .await?,
        run_batch(
            &db.store,
            &VectorIndexHandler::new(pipeline.embedder.clone(), pipeline.retry),
            rec,
        )
        .await?,
    ] {
        assert!(handler_run
            .outcomes
            .iter()
            .all(|(_, o)| *o == Outcome::Delivered));
    }
    assert_eq!(db.store.keyword_search("acme", "old", 10).await?.len(), 1);

    let report = db.store.maintain(&manager(), today()).await?;
    assert!(report.created.is_empty() && report.dropped.is_empty());
    assert_eq!(report.default_rows, 0);
    assert_eq!(db.store.default_rows().await?, 0);
    for table in [
        "events_raw",
        "analytics_rollup_seen",
        "search_documents",
        "search_embeddings",
    ] {
        let left: Vec<i64> = sqlx::query_scalar(&format!("select ts from {table} order by ts"))
            .fetch_all(db.pool())
            .await?;
        let expected = [kept.timestamp, ahead.timestamp].map(|t| t.timestamp_micros());
        assert_eq!(left, expected, "{table}");
    }
    // the FTS5 index forgot the document with its row
    assert!(db.store.keyword_search("acme", "old", 10).await?.is_empty());
    assert_eq!(db.store.keyword_search("acme", "kept", 10).await?.len(), 1);
    // the rollups stay, as on Postgres
    assert_eq!(
        db.scalar("select sum(count) from analytics_daily_event_counts")
            .await,
        3
    );
    // a second pass finds nothing more to do
    db.store.maintain(&manager(), today()).await?;
    assert_eq!(db.scalar("select count(*) from events_raw").await, 2);
    db.store.ping().await?;
    Ok(())
}

#[tokio::test]
async fn register_all_runs_the_whole_pipeline_from_events_received() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    // migrate is complete on its own and may run again
    db.store.migrate().await?;
    let planted = event("checkout_failed", "user-7", "web", "2026-11-24T10:00:00Z");
    let mut events = spread(40);
    events.push(planted.clone());
    events.push(events[0].clone());
    for chunk in events.chunks(14) {
        let received = EventsReceived {
            namespace: "acme".into(),
            request_id: "req".into(),
            events: chunk.to_vec(),
        };
        db.store.publish(Message::new(received)).await?;
    }
    let pipeline = Pipeline::default();
    let pool = register_all(WorkerPool::builder(db.store.clone()), &pipeline).build()?;
    let running = Running::spawn([pool]);
    eventually(Duration::from_secs(30), "every backend drained", || {
        drained(&db.store, &["raw", "rollup", "keyword", "vector"], 3)
    })
    .await;
    running.stop().await?;

    assert_eq!(db.scalar("select count(*) from events_raw").await, 41);
    assert_eq!(db.rollup_counts().await, db.raw_group_by().await);
    let hits = db
        .store
        .keyword_search("acme", "checkout_failed", 5)
        .await?;
    assert_eq!(
        hits.iter().map(|h| h.event_id).collect::<Vec<_>>(),
        [planted.event_id]
    );
    let hits = db
        .store
        .similar_search(&pipeline.embedder, "acme", "checkout failed user 7", 1)
        .await?;
    assert_eq!(hits[0].event_id, planted.event_id);
    Ok(())
}
