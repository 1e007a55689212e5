//! The read side over data the raw store and rollup handlers wrote: pages and their cursors,
//! totals, windows, tenants, and the errors of bad parameters.

use conveyor_handlers::{
    DailyCount, DailyCountQuery, DailyCursor, Error, IngestedEvent, PipelineStore, RawCursor,
    RawEventQuery,
};

use super::fixtures::{at, day, event, feed_both, record};
use super::Harness;

/// 60 events of `acme` over 2026-11-22..=24: per day, click/web 1, click/ios 2, view/web 3,
/// view/ios 4, purchase/web 5 and share/web 5 (all five shares at one instant).
/// Over the three days: view 21, purchase 15, share 15, click 9.
fn acme_events() -> Vec<IngestedEvent> {
    let kinds = [
        ("click", "web"),
        ("click", "ios"),
        ("view", "web"),
        ("view", "ios"),
        ("purchase", "web"),
    ];
    let mut out = Vec::new();
    for d in 22..=24 {
        for (i, (event_type, source)) in kinds.iter().enumerate() {
            for k in 0..=i {
                let ts = format!("2026-11-{d}T{:02}:00:00Z", i * 2 + k);
                out.push(event(event_type, &format!("u{}", (d + k) % 4), source, &ts));
            }
        }
        for k in 0..5 {
            let ts = format!("2026-11-{d}T23:00:00Z");
            out.push(event("share", &format!("s{k}"), "web", &ts));
        }
    }
    out
}

/// Store `acme_events` through both handlers, plus one event of namespace `other`; returns
/// the acme events.
async fn seed<H: Harness>(h: &H) -> Vec<IngestedEvent> {
    let acme = acme_events();
    let other = vec![event("click", "x", "web", "2026-11-23T10:00:00Z")];
    let records = vec![record("acme", acme.clone()), record("other", other)];
    feed_both(h.store(), records).await;
    acme
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

fn raw_query(from: &str, to: &str, limit: u32) -> RawEventQuery {
    RawEventQuery {
        namespace: "acme".into(),
        from: at(from),
        to: at(to),
        event_type: None,
        after: None,
        limit,
    }
}

/// Every page of `q`, following the cursor until an empty page.
async fn walk_raw<S: PipelineStore>(
    store: &S,
    mut q: RawEventQuery,
) -> anyhow::Result<Vec<conveyor_handlers::RawEvent>> {
    let mut walked = Vec::new();
    loop {
        let page = store.raw_events(&q).await?;
        assert!(page.len() <= q.limit as usize);
        let Some(last) = page.last() else { break };
        q.after = Some(RawCursor {
            timestamp: last.timestamp,
            event_id: last.event_id,
        });
        walked.extend(page);
    }
    Ok(walked)
}

fn invalid<T: std::fmt::Debug>(r: conveyor_handlers::Result<T>) -> String {
    match r {
        Err(Error::InvalidQuery(msg)) => msg,
        other => panic!("expected InvalidQuery, got {other:?}"),
    }
}

/// Pages of daily counts, by cursor, visit every row once in (day, type, source) order.
pub(crate) async fn daily_counts_pages_walk_every_row_exactly_once_in_order<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    seed(h).await;
    let store = h.store();
    let all = store.daily_counts(&counts_query(1000)).await?;
    assert_eq!(all.len(), 18, "3 days x 6 (type, source) pairs");
    let keys: Vec<_> = all
        .iter()
        .map(|c| (c.day, &c.event_type, &c.source))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "(day, event type, source) order");

    let mut q = counts_query(4);
    let mut walked: Vec<DailyCount> = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.daily_counts(&q).await?;
        pages += 1;
        let Some(last) = page.last() else { break };
        q.after = Some(DailyCursor {
            day: last.day,
            event_type: last.event_type.clone(),
            source: last.source.clone(),
        });
        assert!(page.len() <= 4);
        walked.extend(page);
    }
    assert_eq!(walked, all);
    assert_eq!(pages, 6, "five pages of at most 4 rows, then an empty one");
    Ok(())
}

/// Daily counts filter by event type, by source and by days.
pub(crate) async fn daily_counts_filter_by_event_type_source_and_days<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    seed(h).await;
    let store = h.store();
    let mut q = counts_query(1000);
    (q.event_type, q.source) = (Some("click".into()), Some("ios".into()));
    let clicks = store.daily_counts(&q).await?;
    assert_eq!(
        clicks.iter().map(|c| c.count).collect::<Vec<_>>(),
        [2, 2, 2]
    );

    let mut q = counts_query(1000);
    q.event_type = Some("view".into());
    let views = store.daily_counts(&q).await?;
    assert_eq!(views.len(), 6);
    assert!(views.iter().all(|c| c.event_type == "view"));
    assert_eq!(views.iter().map(|c| c.count).sum::<i64>(), 21);

    q.source = Some("ios".into());
    (q.from, q.to) = (day("2026-11-23"), day("2026-11-23"));
    let expected = DailyCount {
        day: day("2026-11-23"),
        event_type: "view".into(),
        source: "ios".into(),
        count: 4,
    };
    assert_eq!(store.daily_counts(&q).await?, vec![expected]);
    Ok(())
}

/// The summary totals the events and counts each actor once across the days.
pub(crate) async fn summary_totals_events_and_counts_each_actor_once<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    seed(h).await;
    let store = h.store();
    let s = store
        .summary("acme", day("2026-11-22"), day("2026-11-24"))
        .await?;
    assert_eq!(s.total, 60);
    let distinct = "select count(distinct actor_id) from events_raw where namespace = 'acme'";
    assert_eq!(s.unique_actors, h.scalar(distinct).await);
    assert_eq!(s.unique_actors, 9, "u0..u3 and s0..s4, across days once");
    let one_day = store
        .summary("acme", day("2026-11-23"), day("2026-11-23"))
        .await?;
    assert_eq!(one_day.total, 20);
    Ok(())
}

/// Event types come most frequent first, ties by name.
pub(crate) async fn event_types_come_most_frequent_first_ties_by_name<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    seed(h).await;
    let types = h
        .store()
        .event_types("acme", day("2026-11-22"), day("2026-11-24"))
        .await?;
    let got: Vec<(&str, i64)> = types
        .iter()
        .map(|t| (t.event_type.as_str(), t.count))
        .collect();
    assert_eq!(
        got,
        [("view", 21), ("purchase", 15), ("share", 15), ("click", 9)]
    );
    Ok(())
}

/// Pages of raw events, by cursor, visit each event of the window once in (timestamp, id)
/// order, ties on the timestamp (the shares) included.
pub(crate) async fn raw_events_pages_walk_the_window_once_in_timestamp_then_id_order<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    let mut acme = seed(h).await;
    let q = raw_query("2026-11-22T00:00:00Z", "2026-11-25T00:00:00Z", 7);
    let walked = walk_raw(h.store(), q).await?;
    let keys: Vec<_> = walked.iter().map(|e| (e.timestamp, e.event_id)).collect();
    acme.sort_by_key(|e| (e.timestamp, e.event_id));
    let expected: Vec<_> = acme.iter().map(|e| (e.timestamp, e.event_id)).collect();
    assert_eq!(keys.len(), 60);
    assert_eq!(keys, expected, "each event once, ties on ts broken by id");
    let share = walked.iter().find(|e| e.event_type == "share").unwrap();
    assert_eq!(share.source, "web");
    assert_eq!(share.attributes["path"], "/pricing");
    Ok(())
}

/// The window includes `from`, excludes `to`, pages through the same events, and filters by
/// event type.
pub(crate) async fn raw_events_window_includes_from_excludes_to_and_filters_by_type<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    seed(h).await;
    // 07:00 view; 08:00 view and purchase; 09:00 (view and purchase again) is past the end
    let mut q = raw_query("2026-11-23T07:00:00Z", "2026-11-23T09:00:00Z", 100);
    let all = h.store().raw_events(&q).await?;
    let mut got: Vec<_> = all
        .iter()
        .map(|e| (e.timestamp, e.event_type.clone()))
        .collect();
    got.sort();
    let expected = vec![
        (at("2026-11-23T07:00:00Z"), "view".to_owned()),
        (at("2026-11-23T08:00:00Z"), "purchase".to_owned()),
        (at("2026-11-23T08:00:00Z"), "view".to_owned()),
    ];
    assert_eq!(got, expected);
    let paged = walk_raw(
        h.store(),
        raw_query("2026-11-23T07:00:00Z", "2026-11-23T09:00:00Z", 2),
    );
    assert_eq!(paged.await?, all, "pages of 2 walk the same events");

    q.event_type = Some("purchase".into());
    let purchases = h.store().raw_events(&q).await?;
    assert_eq!(purchases.len(), 1);
    assert_eq!(purchases[0].event_type, "purchase");
    assert_eq!(purchases[0].timestamp, at("2026-11-23T08:00:00Z"));
    Ok(())
}

/// Bad bounds and limits are `InvalidQuery` errors naming the parameter, the same text on
/// every backend.
pub(crate) async fn bad_bounds_and_limits_are_errors_naming_the_parameter<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    let store = h.store();
    for limit in [0, 1001] {
        let expected = format!("limit must be 1..=1000, got {limit}");
        let q = raw_query("2026-11-23T00:00:00Z", "2026-11-24T00:00:00Z", limit);
        assert_eq!(invalid(store.raw_events(&q).await), expected);
        assert_eq!(
            invalid(store.daily_counts(&counts_query(limit)).await),
            expected
        );
    }
    let reversed = raw_query("2026-11-24T00:00:00Z", "2026-11-23T00:00:00Z", 10);
    assert_eq!(
        invalid(store.raw_events(&reversed).await),
        "to 2026-11-23T00:00:00+00:00 must be after from 2026-11-24T00:00:00+00:00"
    );
    let empty = raw_query("2026-11-24T00:00:00Z", "2026-11-24T00:00:00Z", 10);
    assert_eq!(
        invalid(store.raw_events(&empty).await),
        "to 2026-11-24T00:00:00+00:00 must be after from 2026-11-24T00:00:00+00:00"
    );
    let wide = raw_query("2026-10-01T00:00:00Z", "2026-11-01T00:00:01Z", 10);
    assert_eq!(
        invalid(store.raw_events(&wide).await),
        "window from..to is wider than 31 days"
    );
    let widest = raw_query("2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", 10);
    assert!(store.raw_events(&widest).await.is_ok());

    let (from, to) = (day("2026-11-24"), day("2026-11-23"));
    let mut reversed_days = counts_query(10);
    (reversed_days.from, reversed_days.to) = (from, to);
    for msg in [
        invalid(store.daily_counts(&reversed_days).await),
        invalid(store.summary("acme", from, to).await),
        invalid(store.event_types("acme", from, to).await),
    ] {
        assert_eq!(msg, "from 2026-11-24 is after to 2026-11-23");
    }
    let mut year = counts_query(10);
    (year.from, year.to) = (day("2025-01-01"), day("2026-01-02"));
    assert_eq!(
        invalid(store.daily_counts(&year).await),
        "window from..to is wider than 366 days"
    );
    Ok(())
}

/// Another namespace sees nothing of acme; `other`, seeded beside it, only its own event.
pub(crate) async fn another_namespace_sees_nothing_of_acme<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    seed(h).await;
    let store = h.store();
    let (from, to) = (day("2026-11-22"), day("2026-11-24"));
    let mut q = counts_query(1000);
    q.namespace = "globex".into();
    assert!(store.daily_counts(&q).await?.is_empty());
    let s = store.summary("globex", from, to).await?;
    assert_eq!((s.total, s.unique_actors), (0, 0));
    assert!(store.event_types("globex", from, to).await?.is_empty());
    let mut raw = raw_query("2026-11-22T00:00:00Z", "2026-11-25T00:00:00Z", 1000);
    raw.namespace = "globex".into();
    assert!(store.raw_events(&raw).await?.is_empty());

    raw.namespace = "other".into();
    assert_eq!(store.raw_events(&raw).await?.len(), 1);
    assert_eq!(store.summary("other", from, to).await?.total, 1);
    Ok(())
}
