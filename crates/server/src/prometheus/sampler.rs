//! The periodic read behind the gauges of `/metrics`: every [`INTERVAL`], the server's queue
//! stats (`Store::stats`, one statement), the ingestion log's status and the connection
//! pool's size become gauges, and the queues' monotonic totals become counters.

use std::time::Duration;

use conveyor::{Queue, QueueStats};
use conveyor_handlers::PipelineStore;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::ingest::IngestLog;

/// How often the gauges are read.
pub(crate) const INTERVAL: Duration = Duration::from_secs(2);

/// Per-queue gauges: (metric, the `QueueStats` field it shows).
const QUEUE_GAUGES: [(&str, &str); 8] = [
    ("conveyor_queue_pending", "pending"),
    ("conveyor_queue_due", "due"),
    ("conveyor_queue_waiting", "waiting"),
    ("conveyor_queue_parked_keys", "parked_keys"),
    ("conveyor_queue_in_flight", "in_flight"),
    ("conveyor_queue_retrying", "retrying"),
    ("conveyor_queue_dead", "dead"),
    (
        "conveyor_queue_oldest_due_age_seconds",
        "oldest_due_age_secs",
    ),
];

/// Per-queue counters from the monotonic totals of `QueueStats`, when the framework reports
/// them (a field that is absent is skipped): (metric, field).
const QUEUE_TOTALS: [(&str, &str); 4] = [
    ("conveyor_queue_enqueued_total", "enqueued_total"),
    ("conveyor_queue_completed_total", "completed_total"),
    ("conveyor_queue_failed_total", "failed_total"),
    ("conveyor_queue_dead_total", "dead_total"),
];

/// Read and record every [`INTERVAL`] until `stop`: `queues` (the server's registered
/// handlers) bound the queue labels; other queues of the namespace are not shown.
pub(crate) async fn run<S: PipelineStore>(
    store: S,
    log: IngestLog,
    queues: Vec<Queue>,
    handle: PrometheusHandle,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        sample(&store, &log, &queues).await;
        handle.run_upkeep();
    }
}

/// One reading.
async fn sample<S: PipelineStore>(store: &S, log: &IngestLog, queues: &[Queue]) {
    match store.stats().await {
        Ok(stats) => {
            for s in stats.iter().filter(|s| queues.contains(&s.queue)) {
                record_queue(s);
            }
        }
        Err(e) => tracing::warn!(error.message = %e, "metrics: reading the queue stats failed"),
    }
    let status = log.status();
    metrics::gauge!("conveyor_ingest_log_unpublished_events").set(status.unpublished_events as f64);
    metrics::gauge!("conveyor_ingest_log_unpublished_bytes").set(status.unpublished_bytes as f64);
    metrics::gauge!("conveyor_ingest_log_lag_seconds").set(status.lag_secs);
    metrics::gauge!("conveyor_ingest_log_fill_ratio").set(status.fill);
    let (size, idle) = store.connections();
    metrics::gauge!("conveyor_db_pool_connections").set(f64::from(size));
    metrics::gauge!("conveyor_db_pool_idle_connections").set(idle as f64);
}

/// The gauges and totals of one queue, read from its JSON form so that fields the framework
/// adds are one line of [`QUEUE_GAUGES`] or [`QUEUE_TOTALS`] each.
fn record_queue(stats: &QueueStats) {
    let Ok(json) = serde_json::to_value(stats) else {
        return;
    };
    let labels = [
        ("queue", stats.queue.event_type.clone()),
        (
            "routing_key",
            stats.queue.routing_key.clone().unwrap_or_default(),
        ),
    ];
    for (metric, field) in QUEUE_GAUGES {
        if let Some(v) = json.get(field).and_then(Value::as_f64) {
            metrics::gauge!(metric, &labels).set(v);
        }
    }
    for (metric, field) in QUEUE_TOTALS {
        if let Some(v) = json.get(field).and_then(Value::as_u64) {
            metrics::counter!(metric, &labels).absolute(v);
        }
    }
}
