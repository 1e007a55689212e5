//! The read side against real Postgres, one fresh database per test, over data written by
//! the raw store and the rollup handlers themselves.

mod common;

use chrono::{DateTime, Utc};
use conveyor::PgStore;
use conveyor_handlers::{
    daily_counts, event_types, raw_events, summary, DailyCount, DailyCountQuery, DailyCursor,
    Error, IngestedEvent, RawCursor, RawEventQuery, RawStoreHandler, RetryPolicy, RollupHandler,
};
use sqlx::PgPool;

use common::{at, day, deliver, event, record, scalar, setup};

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
            out.push(event(
                "share",
                &format!("s{k}"),
                "web",
                &format!("2026-11-{d}T23:00:00Z"),
            ));
        }
    }
    out
}

/// Store `acme_events` through both handlers, plus one event of namespace `other`.
async fn seed(pool: &PgPool) -> anyhow::Result<PgStore> {
    let store = setup(pool).await?;
    let records = vec![
        record("acme", acme_events()),
        record(
            "other",
            vec![event("click", "x", "web", "2026-11-23T10:00:00Z")],
        ),
    ];
    deliver(
        &store,
        &RawStoreHandler::new(RetryPolicy::default()),
        records.clone(),
    )
    .await;
    deliver(&store, &RollupHandler::new(RetryPolicy::default()), records).await;
    Ok(store)
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

fn invalid<T: std::fmt::Debug>(r: conveyor_handlers::Result<T>) -> String {
    match r {
        Err(Error::InvalidQuery(msg)) => msg,
        other => panic!("expected InvalidQuery, got {other:?}"),
    }
}

#[sqlx::test(migrations = false)]
async fn daily_counts_pagination_walks_every_row_exactly_once(pool: PgPool) -> anyhow::Result<()> {
    seed(&pool).await?;
    let all = daily_counts(&pool, &counts_query(1000)).await?;
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
        let page = daily_counts(&pool, &q).await?;
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

#[sqlx::test(migrations = false)]
async fn daily_counts_filter_by_event_type_source_and_days(pool: PgPool) -> anyhow::Result<()> {
    seed(&pool).await?;
    let mut q = counts_query(1000);
    q.event_type = Some("view".into());
    let views = daily_counts(&pool, &q).await?;
    assert_eq!(views.len(), 6);
    assert!(views.iter().all(|c| c.event_type == "view"));
    assert_eq!(views.iter().map(|c| c.count).sum::<i64>(), 21);

    q.source = Some("ios".into());
    q.from = day("2026-11-23");
    q.to = day("2026-11-23");
    let one = daily_counts(&pool, &q).await?;
    let expected = DailyCount {
        day: day("2026-11-23"),
        event_type: "view".into(),
        source: "ios".into(),
        count: 4,
    };
    assert_eq!(one, vec![expected]);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn summary_totals_events_and_counts_each_actor_once(pool: PgPool) -> anyhow::Result<()> {
    seed(&pool).await?;
    let s = summary(&pool, "acme", day("2026-11-22"), day("2026-11-24")).await?;
    assert_eq!(s.total, 60);
    let distinct = scalar(
        &pool,
        "select count(distinct actor_id) from events_raw where namespace = 'acme'",
    )
    .await;
    assert_eq!(s.unique_actors, distinct);
    assert_eq!(
        s.unique_actors, 9,
        "u0..u3 and s0..s4, across days counted once"
    );

    let one_day = summary(&pool, "acme", day("2026-11-23"), day("2026-11-23")).await?;
    assert_eq!(one_day.total, 20);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn event_types_come_most_frequent_first_ties_by_name(pool: PgPool) -> anyhow::Result<()> {
    seed(&pool).await?;
    let types = event_types(&pool, "acme", day("2026-11-22"), day("2026-11-24")).await?;
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

#[sqlx::test(migrations = false)]
async fn raw_events_pagination_walks_the_window_once_in_timestamp_then_id_order(
    pool: PgPool,
) -> anyhow::Result<()> {
    seed(&pool).await?;
    let mut q = raw_query("2026-11-22T00:00:00Z", "2026-11-25T00:00:00Z", 7);
    let mut walked = Vec::new();
    loop {
        let page = raw_events(&pool, &q).await?;
        let Some(last) = page.last() else { break };
        q.after = Some(RawCursor {
            timestamp: last.timestamp,
            event_id: last.event_id,
        });
        walked.extend(page);
    }
    let keys: Vec<(DateTime<Utc>, uuid::Uuid)> =
        walked.iter().map(|e| (e.timestamp, e.event_id)).collect();
    let expected: Vec<(DateTime<Utc>, uuid::Uuid)> = sqlx::query_as(
        "select ts, event_id from events_raw where namespace = 'acme' order by ts, event_id",
    )
    .fetch_all(&pool)
    .await?;
    assert_eq!(keys.len(), 60);
    assert_eq!(keys, expected, "each event once, ties on ts broken by id");
    let share = walked.iter().find(|e| e.event_type == "share").unwrap();
    assert_eq!(share.source, "web");
    assert_eq!(share.attributes["path"], "/pricing");
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn raw_events_window_includes_from_excludes_to_and_filters_by_type(
    pool: PgPool,
) -> anyhow::Result<()> {
    seed(&pool).await?;
    // 07:00 view; 08:00 view and purchase; 09:00 (view and purchase again) is past the end
    let mut q = raw_query("2026-11-23T07:00:00Z", "2026-11-23T09:00:00Z", 100);
    let got: Vec<_> = raw_events(&pool, &q)
        .await?
        .into_iter()
        .map(|e| (e.timestamp, e.event_type))
        .collect();
    let mut expected = vec![
        (at("2026-11-23T07:00:00Z"), "view".to_owned()),
        (at("2026-11-23T08:00:00Z"), "purchase".to_owned()),
        (at("2026-11-23T08:00:00Z"), "view".to_owned()),
    ];
    let mut sorted = got.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected);

    q.event_type = Some("purchase".into());
    let purchases = raw_events(&pool, &q).await?;
    assert_eq!(purchases.len(), 1);
    assert_eq!(purchases[0].event_type, "purchase");
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn bad_bounds_and_limits_are_errors_naming_the_parameter(pool: PgPool) -> anyhow::Result<()> {
    setup(&pool).await?;
    for limit in [0, 1001] {
        let msg = invalid(
            raw_events(
                &pool,
                &raw_query("2026-11-23T00:00:00Z", "2026-11-24T00:00:00Z", limit),
            )
            .await,
        );
        assert!(msg.contains("limit must be 1..=1000"), "{msg}");
        let msg = invalid(daily_counts(&pool, &counts_query(limit)).await);
        assert!(msg.contains("limit must be 1..=1000"), "{msg}");
    }
    let reversed = raw_query("2026-11-24T00:00:00Z", "2026-11-23T00:00:00Z", 10);
    let msg = invalid(raw_events(&pool, &reversed).await);
    assert!(msg.contains("to") && msg.contains("from"), "{msg}");
    let empty = raw_query("2026-11-24T00:00:00Z", "2026-11-24T00:00:00Z", 10);
    invalid(raw_events(&pool, &empty).await);
    let wide = raw_query("2026-10-01T00:00:00Z", "2026-11-01T00:00:01Z", 10);
    let msg = invalid(raw_events(&pool, &wide).await);
    assert!(
        msg.contains("window from..to is wider than 31 days"),
        "{msg}"
    );
    assert!(raw_events(
        &pool,
        &raw_query("2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", 10)
    )
    .await
    .is_ok());

    let (from, to) = (day("2026-11-24"), day("2026-11-23"));
    let mut reversed_days = counts_query(10);
    (reversed_days.from, reversed_days.to) = (from, to);
    for msg in [
        invalid(daily_counts(&pool, &reversed_days).await),
        invalid(summary(&pool, "acme", from, to).await),
        invalid(event_types(&pool, "acme", from, to).await),
    ] {
        assert!(msg.contains("from") && msg.contains("to"), "{msg}");
    }
    let mut year = counts_query(10);
    (year.from, year.to) = (day("2025-01-01"), day("2026-01-02"));
    let msg = invalid(daily_counts(&pool, &year).await);
    assert!(
        msg.contains("window from..to is wider than 366 days"),
        "{msg}"
    );
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn another_namespace_sees_nothing_of_acme(pool: PgPool) -> anyhow::Result<()> {
    seed(&pool).await?;
    let (from, to) = (day("2026-11-22"), day("2026-11-24"));
    let mut q = counts_query(1000);
    q.namespace = "globex".into();
    assert!(daily_counts(&pool, &q).await?.is_empty());
    let s = summary(&pool, "globex", from, to).await?;
    assert_eq!((s.total, s.unique_actors), (0, 0));
    assert!(event_types(&pool, "globex", from, to).await?.is_empty());
    let mut raw = raw_query("2026-11-22T00:00:00Z", "2026-11-25T00:00:00Z", 1000);
    raw.namespace = "globex".into();
    assert!(raw_events(&pool, &raw).await?.is_empty());

    // and `other`, seeded beside acme, sees only its own event
    raw.namespace = "other".into();
    let others = raw_events(&pool, &raw).await?;
    assert_eq!(others.len(), 1);
    assert_eq!(summary(&pool, "other", from, to).await?.total, 1);
    Ok(())
}
