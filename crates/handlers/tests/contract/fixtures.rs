//! Fixtures of the pipeline suite: a fixed "today", event and record builders, handler runs,
//! polling, test embedders and a background pool. Nothing here knows a backend.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use conveyor::testing::TestRun;
use conveyor::{Outcome, Store, WorkerPool};
use conveyor_handlers::{
    EmbedError, Embedder, HashingEmbedder, IndexRecord, IngestedEvent, PartitionManager,
    RawStoreHandler, RetryPolicy, RollupHandler,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::harness::Handles;

/// The day the tests pretend it is.
pub(crate) fn today() -> NaiveDate {
    day("2026-11-25")
}

/// A date from `YYYY-MM-DD`.
pub(crate) fn day(s: &str) -> NaiveDate {
    s.parse().expect("a YYYY-MM-DD date")
}

/// A UTC timestamp from RFC 3339.
pub(crate) fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("an RFC 3339 timestamp")
}

/// The partition manager of the tests: a small window (7 days back, 3 ahead) keeps setup fast.
pub(crate) fn manager() -> PartitionManager {
    PartitionManager {
        ahead_days: 3,
        retention_days: 7,
    }
}

/// An event with a fresh id.
pub(crate) fn event(event_type: &str, actor_id: &str, source: &str, ts: &str) -> IngestedEvent {
    IngestedEvent {
        event_id: Uuid::new_v4(),
        event_type: event_type.into(),
        actor_id: actor_id.into(),
        source: source.into(),
        timestamp: at(ts),
        attributes: serde_json::json!({"path": "/pricing", "n": 3})
            .as_object()
            .cloned()
            .unwrap(),
    }
}

/// A record of `events` in `namespace`.
pub(crate) fn record(namespace: &str, events: Vec<IngestedEvent>) -> IndexRecord {
    IndexRecord {
        namespace: namespace.into(),
        request_id: "req-1".into(),
        events,
    }
}

/// `n` events over 2026-11-22..=24, three types, two sources, four actors.
pub(crate) fn spread(n: usize) -> Vec<IngestedEvent> {
    let kinds = [("click", "web"), ("view", "ios"), ("purchase", "web")];
    (0..n)
        .map(|i| {
            let (event_type, source) = kinds[(i / 2) % 3];
            let ts = format!("2026-11-{}T{:02}:{:02}:07Z", 22 + i % 3, i % 24, i % 60);
            event(event_type, &format!("u{}", i % 4), source, &ts)
        })
        .collect()
}

/// An event of the search cases in namespace `ns`, `minutes` after 2026-11-24 10:00 UTC,
/// with an id derived from its content.
pub(crate) fn search_event(
    ns: &str,
    event_type: &str,
    actor: &str,
    minutes: i64,
    attrs: serde_json::Value,
) -> IngestedEvent {
    let attributes = attrs.as_object().cloned().unwrap_or_default();
    let timestamp =
        Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap() + chrono::Duration::minutes(minutes);
    IngestedEvent {
        event_id: IngestedEvent::derive_id(ns, event_type, actor, "web", timestamp, &attributes),
        event_type: event_type.into(),
        actor_id: actor.into(),
        source: "web".into(),
        timestamp,
        attributes,
    }
}

/// The event the search cases plant among the noise: `checkout_failed` by `user-7` in
/// namespace `ns` (2026-11-24 18:20 UTC), with `attributes`.
pub(crate) fn checkout_failed(ns: &str, attributes: serde_json::Value) -> IngestedEvent {
    search_event(ns, "checkout_failed", "user-7", 500, attributes)
}

/// `n` ordinary events of namespace `ns`: page views and clicks over a small vocabulary, so
/// they share words with each other and with the planted events.
pub(crate) fn noise(ns: &str, n: usize) -> Vec<IngestedEvent> {
    const PAGES: [&str; 6] = ["/pricing", "/docs", "/checkout", "/home", "/blog", "/card"];
    const WORDS: [&str; 6] = ["visit", "scroll", "declined", "signup", "funds", "promo"];
    (0..n)
        .map(|i| {
            let kind = if i % 3 == 0 { "click" } else { "page_view" };
            let attrs = serde_json::json!({
                "page": PAGES[i % PAGES.len()],
                "note": format!("{} {}", WORDS[i % WORDS.len()], WORDS[(i / 6) % WORDS.len()]),
                "n": i,
            });
            search_event(ns, kind, &format!("user-{}", i % 50), i as i64, attrs)
        })
        .collect()
}

/// The raw store handler with the default retries.
pub(crate) fn raw() -> RawStoreHandler {
    RawStoreHandler::new(RetryPolicy::default())
}

/// The rollup handler with the default retries.
pub(crate) fn rollup() -> RollupHandler {
    RollupHandler::new(RetryPolicy::default())
}

/// Run one batch of `handler` over `records` through the framework and assert every record
/// was delivered.
pub(crate) async fn deliver<S: Handles<H>, H>(
    store: &S,
    handler: &H,
    records: Vec<IndexRecord>,
) -> TestRun {
    let run = store.run(handler, records).await.expect("run_batch");
    for (id, outcome) in &run.outcomes {
        assert_eq!(*outcome, Outcome::Delivered, "event {id:?}");
    }
    run
}

/// Run one batch of `records` through the raw store, then the rollup.
pub(crate) async fn feed_both<S>(store: &S, records: Vec<IndexRecord>)
where
    S: Handles<RawStoreHandler> + Handles<RollupHandler>,
{
    deliver(store, &raw(), records.clone()).await;
    deliver(store, &rollup(), records).await;
}

/// Poll a check every 20 ms until it holds, failing the test after a limit: the framework
/// contract suite's helper.
pub(crate) use conveyor_contract::support::eventually;

/// Whether every event of the queues with `routing_keys` is delivered (none pending,
/// claimed or dead) and `expected` were.
pub(crate) async fn drained<S: Store>(store: &S, routing_keys: &[&str], expected: i64) -> bool {
    let stats = store.stats().await.expect("stats");
    routing_keys.iter().all(|key| {
        stats
            .iter()
            .find(|s| s.queue.routing_key.as_deref() == Some(*key))
            .is_some_and(|s| {
                s.pending == 0 && s.in_flight == 0 && s.dead == 0 && s.delivered == expected
            })
    })
}

/// Pools running in the background until [`Running::stop`].
#[derive(Debug)]
pub(crate) struct Running {
    token: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<conveyor::Result<()>>>,
}

impl Running {
    /// Start `pools`.
    pub(crate) fn spawn<S: Store>(pools: impl IntoIterator<Item = WorkerPool<S>>) -> Self {
        let token = CancellationToken::new();
        let tasks = pools
            .into_iter()
            .map(|pool| tokio::spawn(pool.run(token.clone().cancelled_owned())))
            .collect();
        Self { token, tasks }
    }

    /// Shut the pools down and wait for them.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        self.token.cancel();
        for task in self.tasks {
            task.await??;
        }
        Ok(())
    }
}

/// An embedder that always fails, counting its calls.
#[derive(Debug, Clone, Default)]
pub(crate) struct FailingEmbedder {
    /// How many times `embed` was called.
    pub(crate) calls: Arc<AtomicUsize>,
}

#[async_trait]
impl Embedder for FailingEmbedder {
    fn dimensions(&self) -> usize {
        256
    }

    async fn embed(&self, _texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(EmbedError("model server unavailable".into()))
    }
}

/// An embedder that claims 256 dimensions but returns 8-long vectors.
#[derive(Debug, Clone)]
pub(crate) struct MisreportingEmbedder;

#[async_trait]
impl Embedder for MisreportingEmbedder {
    fn dimensions(&self) -> usize {
        256
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        HashingEmbedder::new(8).embed(texts).await
    }
}
