//! The vector backend on SQLite: `VectorIndexHandler` through the framework, then
//! `similar_search` reads what it wrote.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use conveyor::testing::run_batch;
use conveyor::{Outcome, SqliteStore, Store};
use conveyor_handlers::{
    EmbedError, Embedder, Error, HashingEmbedder, PipelineStore, RetryPolicy, VectorIndexHandler,
};

use crate::common::record;
use crate::search_support::{noise, FailingEmbedder, MisreportingEmbedder};
use crate::sqlite_support::{checkout_failed, deliver, TestDb};

fn vector() -> VectorIndexHandler {
    VectorIndexHandler::new(Arc::new(HashingEmbedder::default()), RetryPolicy::default())
}

fn embedder() -> Arc<dyn Embedder> {
    Arc::new(HashingEmbedder::default())
}

#[tokio::test]
async fn similar_search_ranks_the_planted_event_first() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let mut events = noise("acme", 300);
    let reason = "card declined insufficient funds";
    let planted = checkout_failed(
        "acme",
        serde_json::json!({"reason": reason, "page": "/checkout"}),
    );
    events.insert(42, planted.clone());
    let elsewhere = checkout_failed("globex", serde_json::json!({"reason": reason}));
    let recs = vec![
        record("acme", events),
        record("globex", vec![elsewhere.clone()]),
    ];
    deliver(&db.store, &vector(), recs).await;
    assert_eq!(
        db.scalar("select count(*) from search_embeddings").await,
        302
    );

    let hits = db
        .store
        .similar_search(&embedder(), "acme", "checkout failed: card declined", 5)
        .await?;
    assert_eq!(hits.len(), 5);
    assert_eq!(hits[0].event_id, planted.event_id, "{hits:?}");
    assert!(hits[0].score > hits[1].score + 0.1, "{hits:?}");
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(hits.iter().all(|h| h.score > 0.0 && h.score <= 1.0 + 1e-6));
    let typo = db
        .store
        .similar_search(&embedder(), "acme", "insuficient", 1)
        .await?;
    assert_eq!(typo[0].event_id, planted.event_id);
    let other = db
        .store
        .similar_search(&embedder(), "globex", "card declined", 10)
        .await?;
    assert_eq!(
        other.iter().map(|h| h.event_id).collect::<Vec<_>>(),
        [elsewhere.event_id]
    );
    assert!(db
        .store
        .similar_search(&embedder(), "acme", "!!!", 10)
        .await?
        .is_empty());
    Ok(())
}

#[tokio::test]
async fn reprocessing_a_vector_batch_stores_each_embedding_once() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let events = noise("acme", 10);
    let recs = vec![
        record("acme", events.clone()),
        record("acme", events[..4].to_vec()),
    ];
    for _ in 0..2 {
        deliver(&db.store, &vector(), recs.clone()).await;
    }
    assert_eq!(
        db.scalar("select count(*) from search_embeddings").await,
        10
    );
    let lengths: Vec<i64> =
        sqlx::query_scalar("select distinct length(embedding) from search_embeddings")
            .fetch_all(db.pool())
            .await?;
    assert_eq!(lengths, [256 * 4]);
    Ok(())
}

#[tokio::test]
async fn embedder_failures_retry_the_batch_and_write_nothing() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let failing = FailingEmbedder::default();
    let handler = VectorIndexHandler::new(Arc::new(failing.clone()), RetryPolicy::default());
    let run = run_batch(&db.store, &handler, vec![record("acme", noise("acme", 5))]).await?;
    let [(_, Outcome::Retry { error, .. })] = run.outcomes.as_slice() else {
        anyhow::bail!("expected one retry, got {:?}", run.outcomes);
    };
    assert!(error.contains("model server unavailable"), "{error}");
    assert_eq!(failing.calls.load(Ordering::SeqCst), 1);

    let misreporting =
        VectorIndexHandler::new(Arc::new(MisreportingEmbedder), RetryPolicy::default());
    let rec = vec![record("globex", noise("globex", 3))];
    let run = run_batch(&db.store, &misreporting, rec).await?;
    let [(_, Outcome::Retry { error, .. })] = run.outcomes.as_slice() else {
        anyhow::bail!("expected one retry, got {:?}", run.outcomes);
    };
    assert!(error.contains("8 dimensions, expected 256"), "{error}");
    assert_eq!(db.scalar("select count(*) from search_embeddings").await, 0);

    let err = db
        .store
        .similar_search(
            &(Arc::new(MisreportingEmbedder) as Arc<dyn Embedder>),
            "acme",
            "page",
            10,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Embed(e) if e.0.contains("8 dimensions, expected 256")),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn similar_search_skips_vectors_of_another_embedder() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let small = VectorIndexHandler::new(Arc::new(HashingEmbedder::new(64)), RetryPolicy::default());
    deliver(&db.store, &small, vec![record("acme", noise("acme", 5))]).await;
    assert!(db
        .store
        .similar_search(&embedder(), "acme", "page_view", 10)
        .await?
        .is_empty());
    let small: Arc<dyn Embedder> = Arc::new(HashingEmbedder::new(64));
    assert!(!db
        .store
        .similar_search(&small, "acme", "page_view", 10)
        .await?
        .is_empty());
    Ok(())
}

/// An embedder that writes through the store while it embeds: it only gets the write lock
/// if the handler has not taken it yet.
#[derive(Debug)]
struct LockProbe {
    store: SqliteStore,
}

#[async_trait]
impl Embedder for LockProbe {
    fn dimensions(&self) -> usize {
        256
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let tx = tokio::time::timeout(Duration::from_secs(1), self.store.begin())
            .await
            .map_err(|_| EmbedError("the write lock is held while embedding".into()))?
            .map_err(|e| EmbedError(e.to_string()))?;
        tx.commit().await.map_err(|e| EmbedError(e.to_string()))?;
        HashingEmbedder::default().embed(texts).await
    }
}

#[tokio::test]
async fn the_vector_handler_embeds_before_it_takes_the_write_lock() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let probe = LockProbe {
        store: db.store.clone(),
    };
    let handler = VectorIndexHandler::new(Arc::new(probe), RetryPolicy::default());
    deliver(&db.store, &handler, vec![record("acme", noise("acme", 4))]).await;
    assert_eq!(db.scalar("select count(*) from search_embeddings").await, 4);
    Ok(())
}
