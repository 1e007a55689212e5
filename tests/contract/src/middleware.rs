//! Middleware: the order pool and handler middleware run in, error mapping as seen in the
//! outcomes, and the metrics middleware's counters.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use conveyor::middleware::{
    Handled, MetricsMiddleware, Middleware, Next, TracingMiddleware, EVENTS_HANDLED,
    HANDLE_DURATION,
};
use conveyor::{BatchInfo, Context, HandlerError, HandlerOptions, Item, Store, WorkerPool};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

use crate::support::{
    eventually, job_queue, jobs, publish_jobs, spawn, stats_of, stop, Backend, Job, PerItem,
};

const WAIT: Duration = Duration::from_secs(20);

/// Writes `name>` to the log before the rest of the chain and `<name` after it.
struct Mark {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl Middleware for Mark {
    async fn handle(&self, _: &BatchInfo, next: Next<'_>) -> Handled {
        self.log.lock().unwrap().push(format!("{}>", self.name));
        let handled = next.run().await;
        self.log.lock().unwrap().push(format!("<{}", self.name));
        handled
    }
}

/// Turns retries whose error says "permanent" into failures: dead at once.
struct PermanentIsFatal;

#[async_trait]
impl Middleware for PermanentIsFatal {
    async fn handle(&self, _: &BatchInfo, next: Next<'_>) -> Handled {
        let mut handled = next.run().await;
        if let Err(HandlerError::Retry { error, .. }) = &handled.result {
            if error.contains("permanent") {
                handled.result = Err(HandlerError::fail(error.clone()));
            }
        }
        handled
    }
}

/// Pool middleware runs outside the handler's, each list in registration order, around the
/// handler; a middleware's error mapping decides the outcome.
pub async fn middleware_runs_in_order_and_maps_errors_into_outcomes<B: Backend>(b: &B) {
    let store = b.store(6).await;
    let ids = publish_jobs(&store, 2).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let mark = |name| Mark {
        name,
        log: log.clone(),
    };
    let handler_log = log.clone();
    let handler = PerItem::<_, 1>(move |item: &Item<Job>, _: &mut Context<'_, B::S>| {
        handler_log.lock().unwrap().push("handle".to_owned());
        match item.payload.n {
            1 => Err(HandlerError::retry("permanent: the account is closed")),
            _ => Ok(()),
        }
    });
    let options = HandlerOptions::default()
        .middleware(mark("handler-1"))
        .middleware(PermanentIsFatal)
        .middleware(mark("handler-2"));
    let pool = WorkerPool::builder(store.clone())
        .middleware(mark("pool-1"))
        .register_with(handler, options)
        .middleware(TracingMiddleware)
        .middleware(mark("pool-2"))
        .build()
        .unwrap();
    let running = spawn(pool);
    eventually(WAIT, "one delivered, one dead", || async {
        let s = stats_of(&store, &job_queue()).await;
        s.delivered == 1 && s.dead == 1
    })
    .await;
    stop(running).await;

    let order = [
        "pool-1>",
        "pool-2>",
        "handler-1>",
        "handler-2>",
        "handle",
        "<handler-2",
        "<handler-1",
        "<pool-2",
        "<pool-1",
    ];
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 2 * order.len(), "two batches: {log:?}");
    for batch in log.chunks(order.len()) {
        assert_eq!(batch, order);
    }
    let failed = b.row(ids[1]).await;
    assert_eq!(failed.status, "dead", "mapped to a failure, never retried");
    assert_eq!(
        failed.last_error.as_deref(),
        Some("permanent: the account is closed")
    );
    assert_eq!(b.row(ids[0]).await.status, "delivered");
}

/// The metrics middleware counts events by queue and outcome and records each call's
/// duration. Installs a process-wide recorder: the only case of a backend's suite that may.
pub async fn metrics_middleware_counts_events_by_queue_and_outcome<B: Backend>(b: &B) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("no other case of this test binary installs a metrics recorder");
    let store = b.store(6).await;
    store.publish_batch(jobs(9)).await.unwrap();
    // in one batch: n % 3 == 0 retried, 1 failed, 2 delivered
    let handler = PerItem::<_, 10>(|item: &Item<Job>, ctx: &mut Context<'_, B::S>| {
        match item.payload.n % 3 {
            0 => ctx.retry_after(item.id, Duration::from_secs(3600), "later"),
            1 => ctx.fail(item.id, "never"),
            _ => {}
        }
        Ok(())
    });
    let pool = WorkerPool::builder(store.clone())
        .middleware(MetricsMiddleware)
        .register(handler)
        .build()
        .unwrap();
    let running = spawn(pool);
    eventually(WAIT, "all nine handled", || async {
        let s = stats_of(&store, &job_queue()).await;
        s.delivered == 3 && s.dead == 3 && s.retrying == 3
    })
    .await;
    stop(running).await;

    let queue = job_queue().to_string();
    let mut counters = Vec::new();
    let mut durations = 0;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let label = |name: &str| {
            key.labels()
                .find(|l| l.key() == name)
                .map(|l| l.value().to_owned())
        };
        assert_eq!(label("queue").as_deref(), Some(queue.as_str()), "{key:?}");
        match (key.name(), value) {
            (EVENTS_HANDLED, DebugValue::Counter(n)) => {
                counters.push((label("outcome").expect("an outcome label"), n));
            }
            (HANDLE_DURATION, DebugValue::Histogram(seconds)) => durations += seconds.len(),
            other => panic!("unexpected metric {other:?}"),
        }
    }
    counters.sort();
    assert_eq!(
        counters,
        [
            ("dead".to_owned(), 3),
            ("delivered".to_owned(), 3),
            ("retried".to_owned(), 3)
        ]
    );
    assert_eq!(durations, 1, "one handle call");
}
