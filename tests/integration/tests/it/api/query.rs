//! The read side: query and search parameters, tenant isolation, pagination and the cache.

use std::time::Duration;

use conveyor_integration::{
    event, spawn_app, spawn_default_app, spawn_default_sqlite_app, TestApp,
};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::{api_only, assert_error, assert_error_says, bulk};

#[sqlx::test(migrations = false)]
async fn bad_query_parameters_are_400_naming_the_parameter(
    pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = api_only(pool, opts).await;
    for (path, field) in [
        ("/v1/analytics/events/daily?from=2026-13-01", "from"),
        ("/v1/analytics/events/daily?to=yesterday", "to"),
        (
            "/v1/analytics/events/daily?from=2026-02-01&to=2026-01-01",
            "from",
        ),
        ("/v1/analytics/events/daily?cursor=not-a-cursor", "cursor"),
        ("/v1/analytics/events/daily?limit=0", "limit"),
        ("/v1/analytics/events/daily?limit=1001", "limit"),
        ("/v1/analytics/events/daily?limit=ten", "limit"),
        ("/v1/analytics/events/daily?form=2026-01-01", "form"),
        ("/v1/analytics/events/summary?from=01/02/2026", "from"),
        ("/v1/analytics/event-types?to=2026-1-32", "to"),
        ("/v1/events/raw?from=2026-01-01", "from"),
        ("/v1/events/raw?cursor=eyJ4IjoxfQ", "cursor"),
        ("/v1/events/raw?limit=-1", "limit"),
        ("/v1/search?q=a&limit=0", "limit"),
        ("/v1/search?q=a&q=b", "q"),
    ] {
        let response = app.get(&app.key, path).await;
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["field"], field, "{path}: {body}");
    }
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn raw_window_too_wide_is_400(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    let response = app
        .get(
            &app.key,
            "/v1/events/raw?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z",
        )
        .await;
    assert_error_says(response, 400, "invalid query").await;
    app.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn empty_search_query_is_400_naming_q(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = api_only(pool, opts).await;
    for path in [
        "/v1/search",
        "/v1/search?q=",
        "/v1/search?q=%20%20",
        "/v1/search/similar?q=",
    ] {
        let response = app.get(&app.key, path).await;
        assert_error(response, 400, "q").await;
    }
    app.shutdown().await;
}

on_each_backend!(tenant_isolation(spawn_default_app, spawn_default_sqlite_app):
    /// Needs the pipeline's handlers: events flow through to every backend before reading. Covers
    /// every read route: summary, daily, event types, raw, keyword and similar search.
    another_tenant_sees_none_of_a_tenants_events,
    another_tenant_sees_none_of_a_tenants_events_on_sqlite
);

async fn tenant_isolation(app: TestApp) {
    let events = (0..5)
        .map(|i| event("signup", &format!("u{i}"), "web"))
        .collect();
    assert_eq!(app.post_events(&app.key, &bulk(events)).await.status(), 202);
    app.wait_for_drain().await;

    for (key, total) in [(&app.key, 5), (&app.other_key, 0)] {
        let summary = app.get_json(key, "/v1/analytics/events/summary").await;
        assert_eq!(summary["total"], total, "{summary}");
        let daily = app.get_json(key, "/v1/analytics/events/daily").await;
        assert_eq!(
            daily["data"].as_array().unwrap().len(),
            total.min(1),
            "{daily}"
        );
        let types = app.get_json(key, "/v1/analytics/event-types").await;
        assert_eq!(
            types["data"].as_array().unwrap().len(),
            total.min(1),
            "{types}"
        );
        let raw = app.get_json(key, "/v1/events/raw").await;
        assert_eq!(raw["data"].as_array().unwrap().len(), total, "{raw}");
        let found = app.get_json(key, "/v1/search?q=signup").await;
        assert_eq!(found["data"].as_array().unwrap().len(), total, "{found}");
        let similar = app.get_json(key, "/v1/search/similar?q=signup%20web").await;
        assert_eq!(
            similar["data"].as_array().unwrap().is_empty(),
            total == 0,
            "{similar}"
        );
    }
    app.shutdown().await;
}

on_each_backend!(daily_pages(spawn_default_app, spawn_default_sqlite_app):
    /// Needs the pipeline's handlers.
    daily_counts_page_with_next_cursor,
    daily_counts_page_with_next_cursor_on_sqlite
);

async fn daily_pages(app: TestApp) {
    let events = ["a", "b", "c", "d", "e"]
        .map(|t| event(t, "u1", "web"))
        .to_vec();
    assert_eq!(app.post_events(&app.key, &bulk(events)).await.status(), 202);
    app.wait_for_drain().await;

    let mut seen = Vec::new();
    let mut path = "/v1/analytics/events/daily?limit=2".to_owned();
    loop {
        let page = app.get_json(&app.key, &path).await;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["event_type"].clone()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/analytics/events/daily?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["a", "b", "c", "d", "e"].map(Value::from));
    app.shutdown().await;
}

/// Needs the pipeline's handlers.
#[sqlx::test(migrations = false)]
async fn analytics_are_cached_for_the_ttl(pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = spawn_app(pool, opts, |s| s.cache_ttl = Duration::from_secs(60)).await;
    let first = app.get_json(&app.key, "/v1/analytics/events/summary").await;
    assert_eq!(first["total"], 0);
    assert_eq!(
        app.post_events(&app.key, &bulk(vec![event("click", "u1", "web")]))
            .await
            .status(),
        202
    );
    app.wait_for_drain().await;
    let cached = app.get_json(&app.key, "/v1/analytics/events/summary").await;
    assert_eq!(cached["total"], 0, "served from the cache");
    let from = chrono::Utc::now().date_naive() - chrono::Duration::days(30);
    let fresh = app
        .get_json(
            &app.key,
            &format!("/v1/analytics/events/summary?from={from}"),
        )
        .await;
    assert_eq!(
        fresh["total"], 1,
        "other parameters are another cache entry"
    );
    app.shutdown().await;
}

/// A search cannot run away: `q` over 1 KiB or over 32 words is refused before any database
/// work, on both search routes, naming `q` and the limit.
#[sqlx::test(migrations = false)]
async fn over_long_or_too_wordy_search_queries_are_400_naming_q(
    pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = api_only(pool, opts).await;
    let long = "x".repeat(1025);
    let wordy = (0..17)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join("%20or%20");
    for route in ["/v1/search", "/v1/search/similar"] {
        for (q, limit) in [
            (&long, "at most 1024 bytes"),
            (&wordy, "at most 32 are allowed"),
        ] {
            let response = app.get(&app.key, &format!("{route}?q={q}")).await;
            let body = assert_error(response, 400, "q").await;
            let error = body["error"].as_str().unwrap_or_default();
            assert!(error.contains(limit), "{route}: {body}");
        }
    }
    app.shutdown().await;
}
