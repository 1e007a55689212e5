//! `/metrics`: operator key only, valid Prometheus text, the names the server promises, and
//! counters that move as events flow.

use std::time::Duration;

use conveyor_integration::{event, TestApp};
use prometheus_parse::{Scrape, Value as Sample};

use super::{bulk, with_workers, with_workers_sqlite};

/// `/metrics` with the operator key, parsed as the Prometheus exposition format.
async fn scrape(app: &TestApp) -> Scrape {
    let response = app.get(&app.operator_key, "/metrics").await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    Scrape::parse(lines).unwrap_or_else(|e| panic!("not Prometheus text ({e}): {text}"))
}

/// The sum of `name`'s samples whose labels include every pair of `labels`.
fn total(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Sample::Counter(v) | Sample::Gauge(v) | Sample::Untyped(v) => *v,
            Sample::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Sample::Summary(_) => 0.0,
        })
        .sum()
}

on_each_backend!(metrics_flow(with_workers, with_workers_sqlite):
    metrics_are_prometheus_text_and_counters_move_as_events_flow,
    metrics_are_prometheus_text_and_counters_move_as_events_flow_on_sqlite
);

async fn metrics_flow(app: TestApp) {
    assert_eq!(app.get_without_key("/metrics").await.status(), 401);
    assert_eq!(app.get("not-a-key", "/metrics").await.status(), 401);
    assert_eq!(app.get(&app.key, "/metrics").await.status(), 403);

    app.post_events(&app.key, &bulk(vec![event("click", "u1", "web")]))
        .await;
    app.wait_for_drain().await;
    // the sampler reads the queues every 2 s
    let mut first = scrape(&app).await;
    for _ in 0..100 {
        if first
            .samples
            .iter()
            .any(|s| s.metric == "conveyor_queue_due")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        first = scrape(&app).await;
    }
    for name in [
        "conveyor_queue_pending",
        "conveyor_queue_due",
        "conveyor_queue_waiting",
        "conveyor_queue_in_flight",
        "conveyor_queue_dead",
        "conveyor_queue_parked_keys",
        "conveyor_ingest_log_unpublished_events",
        "conveyor_ingest_log_lag_seconds",
        "conveyor_db_pool_connections",
        "conveyor_db_pool_idle_connections",
        "conveyor_events_handled_total",
        "conveyor_handle_duration_seconds",
        "conveyor_http_requests_total",
        "conveyor_http_request_duration_seconds",
    ] {
        assert!(
            first.samples.iter().any(|s| s.metric == name),
            "{name} missing from /metrics"
        );
    }
    let bulk_ok = [("route", "/v1/events/bulk"), ("status", "2xx")];
    assert_eq!(total(&first, "conveyor_http_requests_total", &bulk_ok), 1.0);
    let handled = total(&first, "conveyor_events_handled_total", &[]);
    assert!(handled >= 1.0, "handled {handled}");
    let rollup = [("queue", "index_record"), ("routing_key", "rollup")];
    assert_eq!(total(&first, "conveyor_queue_dead", &rollup), 0.0);

    app.post_events(&app.key, &bulk(vec![event("view", "u2", "web")]))
        .await;
    app.wait_for_drain().await;
    let second = scrape(&app).await;
    assert_eq!(
        total(&second, "conveyor_http_requests_total", &bulk_ok),
        2.0
    );
    let more = total(&second, "conveyor_events_handled_total", &[]);
    assert!(more > handled, "handled {handled} then {more}");
    let runs = total(&second, "conveyor_handle_duration_seconds", &[]);
    assert!(runs >= more.min(1.0), "handle durations recorded: {runs}");
    app.shutdown().await;
}
