//! Fixtures of the search tests: events over a shared vocabulary, test embedders, a
//! background pool. Setup, records and polling come from `common`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use conveyor::{PgStore, WorkerPool};
use conveyor_handlers::{EmbedError, Embedder, HashingEmbedder, IngestedEvent};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// 2026-11-24 10:00 UTC plus `minutes`.
pub(crate) fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap() + chrono::Duration::minutes(minutes)
}

/// An event in namespace `ns` with a derived id.
pub(crate) fn event(
    ns: &str,
    event_type: &str,
    actor: &str,
    minutes: i64,
    attrs: serde_json::Value,
) -> IngestedEvent {
    let attributes = attrs.as_object().cloned().unwrap_or_default();
    let timestamp = at(minutes);
    IngestedEvent {
        event_id: IngestedEvent::derive_id(ns, event_type, actor, "web", timestamp, &attributes),
        event_type: event_type.into(),
        actor_id: actor.into(),
        source: "web".into(),
        timestamp,
        attributes,
    }
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
            event(ns, kind, &format!("user-{}", i % 50), i as i64, attrs)
        })
        .collect()
}

/// Rows in `table`.
pub(crate) async fn count(pool: &sqlx::PgPool, table: &str) -> anyhow::Result<i64> {
    let n: i64 = sqlx::query_scalar(&format!("select count(*) from {table}"))
        .fetch_one(pool)
        .await?;
    Ok(n)
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

/// A pool running in the background until [`Running::stop`].
#[derive(Debug)]
pub(crate) struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<conveyor::Result<()>>,
}

impl Running {
    /// Start `pool`.
    pub(crate) fn spawn(pool: WorkerPool<PgStore>) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(pool.run(async {
            let _ = stopped.await;
        }));
        Self { stop, task }
    }

    /// Shut the pool down and wait for it.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }
}
