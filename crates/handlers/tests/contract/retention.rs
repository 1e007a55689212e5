//! Upkeep and the whole pipeline: `maintain` deletes what is past retention from every
//! table (the rollups stay), and `register_all` runs every backend from `EventsReceived`.

use std::time::Duration;

use conveyor::{Message, Outcome, Store, WorkerPool};
use conveyor_handlers::{
    register_all, EventsReceived, KeywordIndexHandler, Pipeline, PipelineStore, VectorIndexHandler,
};

use super::fixtures::{
    drained, event, eventually, manager, raw, record, rollup, spread, today, Running,
};
use super::harness::Handles;
use super::Harness;

/// Retention 7 days on 2026-11-25: rows before 2026-11-19 go from the raw, seen and search
/// tables (and the keyword index), later ones and the rollups stay; a second pass finds
/// nothing more.
pub(crate) async fn maintain_deletes_rows_past_retention_and_keeps_recent_ones<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    let store = h.store();
    let old = event("click", "old", "web", "2026-11-18T23:59:59.999999Z");
    let kept = event("click", "kept", "web", "2026-11-19T00:00:00Z");
    let ahead = event("click", "ahead", "web", "2026-11-27T10:00:00Z");
    let rec = vec![record(
        "acme",
        vec![old.clone(), kept.clone(), ahead.clone()],
    )];
    let pipeline = Pipeline::default();
    for handler_run in [
        store.run(&raw(), rec.clone()).await?,
        store.run(&rollup(), rec.clone()).await?,
        store
            .run(&KeywordIndexHandler::new(pipeline.retry), rec.clone())
            .await?,
        store
            .run(
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
    assert_eq!(store.keyword_search("acme", "old", 10).await?.len(), 1);

    let report = store.maintain(&manager(), today()).await?;
    assert!(
        report.created.is_empty() && report.dropped.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.default_rows, 0);
    assert_eq!(store.default_rows().await?, 0);
    for table in [
        "events_raw",
        "analytics_rollup_seen",
        "search_documents",
        "search_embeddings",
    ] {
        let expected = [kept.timestamp, ahead.timestamp];
        assert_eq!(h.timestamps(table).await, expected, "{table}");
    }
    // the keyword index forgot the document with its row
    assert!(store.keyword_search("acme", "old", 10).await?.is_empty());
    assert_eq!(store.keyword_search("acme", "kept", 10).await?.len(), 1);
    let counted = "select cast(sum(count) as bigint) from analytics_daily_event_counts";
    assert_eq!(h.scalar(counted).await, 3, "the rollups stay");
    store.maintain(&manager(), today()).await?;
    assert_eq!(h.scalar("select count(*) from events_raw").await, 2);
    store.ping().await?;
    Ok(())
}

/// `register_all` runs the fan-out and every backend from published `EventsReceived`
/// (repeats included), and `migrate` may run again first.
pub(crate) async fn register_all_runs_the_whole_pipeline_from_events_received<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    let store = h.store();
    store.migrate().await?;
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
        store.publish(Message::new(received)).await?;
    }
    let pipeline = Pipeline::default();
    let pool = register_all(WorkerPool::builder(store.clone()), &pipeline).build()?;
    let running = Running::spawn([pool]);
    eventually(Duration::from_secs(30), "every backend drained", || {
        drained(store, &["raw", "rollup", "keyword", "vector"], 3)
    })
    .await;
    running.stop().await?;

    assert_eq!(h.scalar("select count(*) from events_raw").await, 41);
    assert_eq!(h.rollup_counts().await, h.raw_group_by().await);
    let hits = store.keyword_search("acme", "checkout_failed", 5).await?;
    assert_eq!(
        hits.iter().map(|h| h.event_id).collect::<Vec<_>>(),
        [planted.event_id]
    );
    let hits = store
        .similar_search(&pipeline.embedder, "acme", "checkout failed user 7", 1)
        .await?;
    assert_eq!(hits[0].event_id, planted.event_id);
    Ok(())
}
