//! The read side on SQLite over data the raw store and rollup handlers wrote: pages, totals,
//! windows, and the errors of bad parameters.

use conveyor_handlers::{
    DailyCount, DailyCountQuery, DailyCursor, Error, PipelineStore, RawCursor, RawEventQuery,
};

use crate::common::{at, day, event, record};
use crate::sqlite_support::{feed_both, TestDb};

/// 33 events of `acme`: each of 2026-11-22..=24 has click/web 1, click/ios 2, view/web 3 and
/// purchase/web 4 events, and the 23rd three shares at one instant; one event of `other`.
async fn seeded() -> anyhow::Result<TestDb> {
    let db = TestDb::new().await?;
    let kinds = [
        ("click", "web", 1),
        ("click", "ios", 2),
        ("view", "web", 3),
        ("purchase", "web", 4),
    ];
    let mut events = Vec::new();
    for d in 22..=24 {
        for (k, (event_type, source, n)) in kinds.into_iter().enumerate() {
            for j in 0..n {
                let ts = format!("2026-11-{d}T{:02}:30:00Z", k * 4 + j);
                events.push(event(event_type, &format!("a{}", (d + j) % 3), source, &ts));
            }
        }
    }
    for s in 0..3 {
        events.push(event(
            "share",
            &format!("s{s}"),
            "web",
            "2026-11-23T12:00:00Z",
        ));
    }
    let other = vec![event("click", "x", "web", "2026-11-23T10:00:00Z")];
    feed_both(
        &db.store,
        vec![record("acme", events), record("other", other)],
    )
    .await;
    Ok(db)
}

fn counts_query(limit: u32) -> DailyCountQuery {
    DailyCountQuery {
        namespace: "acme".into(),
        from: day("2026-11-22"),
        to: day("2026-11-24"),
        event_type: None,
        source: None,
        after: None,
        limit,
    }
}

#[tokio::test]
async fn daily_counts_pages_visit_every_row_once_in_order() -> anyhow::Result<()> {
    let db = seeded().await?;
    let all = db.store.daily_counts(&counts_query(1000)).await?;
    assert_eq!(
        all.len(),
        13,
        "3 days x 4 (type, source) pairs, and the shares"
    );
    let mut sorted = all.clone();
    sorted
        .sort_by(|a, b| (a.day, &a.event_type, &a.source).cmp(&(b.day, &b.event_type, &b.source)));
    assert_eq!(all, sorted);

    let mut q = counts_query(5);
    let mut walked: Vec<DailyCount> = Vec::new();
    let mut pages = 0;
    loop {
        let page = db.store.daily_counts(&q).await?;
        pages += 1;
        let Some(last) = page.last() else { break };
        q.after = Some(DailyCursor {
            day: last.day,
            event_type: last.event_type.clone(),
            source: last.source.clone(),
        });
        walked.extend(page);
    }
    assert_eq!(walked, all);
    assert_eq!(pages, 4, "pages of 5, 5 and 3 rows, then an empty one");

    q = counts_query(1000);
    (q.event_type, q.source) = (Some("click".into()), Some("ios".into()));
    let clicks = db.store.daily_counts(&q).await?;
    assert_eq!(
        clicks.iter().map(|c| c.count).collect::<Vec<_>>(),
        [2, 2, 2]
    );
    Ok(())
}

#[tokio::test]
async fn summary_and_event_types_total_the_rollups() -> anyhow::Result<()> {
    let db = seeded().await?;
    let (from, to) = (day("2026-11-22"), day("2026-11-24"));
    let s = db.store.summary("acme", from, to).await?;
    assert_eq!((s.total, s.unique_actors), (33, 6), "a0..a2 and s0..s2");
    let types: Vec<(String, i64)> = db
        .store
        .event_types("acme", from, to)
        .await?
        .into_iter()
        .map(|t| (t.event_type, t.count))
        .collect();
    let expected = [("purchase", 12), ("click", 9), ("view", 9), ("share", 3)];
    assert_eq!(types, expected.map(|(t, n)| (t.to_owned(), n)));
    assert_eq!(db.store.summary("other", from, to).await?.total, 1);
    assert!(db.store.event_types("globex", from, to).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn raw_events_walk_a_window_by_cursor_from_inclusive_to_exclusive() -> anyhow::Result<()> {
    let db = seeded().await?;
    let mut q = RawEventQuery {
        namespace: "acme".into(),
        from: at("2026-11-23T00:30:00Z"),
        to: at("2026-11-23T12:30:00Z"),
        event_type: None,
        after: None,
        limit: 2,
    };
    let mut walked = Vec::new();
    loop {
        let page = db.store.raw_events(&q).await?;
        let Some(last) = page.last() else { break };
        q.after = Some(RawCursor {
            timestamp: last.timestamp,
            event_id: last.event_id,
        });
        walked.extend(page);
    }
    // 00:30 (from, included) through 12:00 (the three shares); the purchase at 12:30 is
    // `to`, excluded
    assert_eq!(walked.len(), 9);
    assert_eq!(walked[0].timestamp, at("2026-11-23T00:30:00Z"));
    let keys: Vec<_> = walked.iter().map(|e| (e.timestamp, e.event_id)).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys, sorted, "(timestamp, id) order, each event once");
    assert_eq!(walked.iter().filter(|e| e.event_type == "share").count(), 3);

    assert!(walked.iter().all(|e| e.event_type != "purchase"));

    q.after = None;
    q.to = at("2026-11-23T13:00:00Z");
    q.event_type = Some("purchase".into());
    q.limit = 100;
    let purchases = db.store.raw_events(&q).await?;
    assert_eq!(purchases.len(), 1, "{purchases:?}");
    assert_eq!(purchases[0].timestamp, at("2026-11-23T12:30:00Z"));
    Ok(())
}

#[tokio::test]
async fn bad_query_parameters_are_the_errors_postgres_gives() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let message = |e: Error| match e {
        Error::InvalidQuery(m) => m,
        other => panic!("expected InvalidQuery, got {other:?}"),
    };
    let mut q = counts_query(0);
    let err = message(db.store.daily_counts(&q).await.unwrap_err());
    assert_eq!(err, "limit must be 1..=1000, got 0");
    (q.limit, q.from, q.to) = (10, day("2025-01-01"), day("2026-01-02"));
    let err = message(db.store.daily_counts(&q).await.unwrap_err());
    assert_eq!(err, "window from..to is wider than 366 days");
    let err = message(
        db.store
            .summary("acme", day("2026-11-24"), day("2026-11-23"))
            .await
            .unwrap_err(),
    );
    assert_eq!(err, "from 2026-11-24 is after to 2026-11-23");
    let err = message(
        db.store
            .event_types("acme", day("2026-11-24"), day("2026-11-23"))
            .await
            .unwrap_err(),
    );
    assert_eq!(err, "from 2026-11-24 is after to 2026-11-23");
    let raw = |from: &str, to: &str, limit| RawEventQuery {
        namespace: "acme".into(),
        from: at(from),
        to: at(to),
        event_type: None,
        after: None,
        limit,
    };
    let err = message(
        db.store
            .raw_events(&raw("2026-11-24T00:00:00Z", "2026-11-24T00:00:00Z", 5))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        err,
        "to 2026-11-24T00:00:00+00:00 must be after from 2026-11-24T00:00:00+00:00"
    );
    let err = message(
        db.store
            .raw_events(&raw("2026-10-01T00:00:00Z", "2026-11-01T00:00:01Z", 5))
            .await
            .unwrap_err(),
    );
    assert_eq!(err, "window from..to is wider than 31 days");
    let err = message(
        db.store
            .raw_events(&raw("2026-10-01T00:00:00Z", "2026-10-02T00:00:00Z", 1001))
            .await
            .unwrap_err(),
    );
    assert_eq!(err, "limit must be 1..=1000, got 1001");
    Ok(())
}
