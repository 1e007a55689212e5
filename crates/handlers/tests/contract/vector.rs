//! The vector backend: `VectorIndexHandler` through the framework, then `similar_search`
//! reads what it wrote; embedder failures; both indexes fed by a real pool.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use conveyor::{Message, Outcome, Store, WorkerPool};
use conveyor_handlers::{
    Embedder, Error, HashingEmbedder, KeywordIndexHandler, PipelineStore, RetryPolicy,
    VectorIndexHandler,
};

use super::fixtures::{
    checkout_failed, deliver, eventually, noise, record, search_event, FailingEmbedder,
    MisreportingEmbedder, Running,
};
use super::harness::Handles;
use super::Harness;

fn vector() -> VectorIndexHandler {
    VectorIndexHandler::new(Arc::new(HashingEmbedder::default()), RetryPolicy::default())
}

fn embedder() -> Arc<dyn Embedder> {
    Arc::new(HashingEmbedder::default())
}

/// The planted event ranks first by a clear margin, a typo still finds it (where keyword
/// search cannot), and other namespaces are never returned.
pub(crate) async fn similar_search_ranks_the_planted_event_first<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    let store = h.store();
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
    deliver(store, &vector(), recs).await;
    assert_eq!(
        h.scalar("select count(*) from search_embeddings").await,
        302
    );

    let hits = store
        .similar_search(&embedder(), "acme", "checkout failed: card declined", 5)
        .await?;
    assert_eq!(hits.len(), 5);
    assert_eq!(hits[0].event_id, planted.event_id, "{hits:?}");
    assert!(hits[0].score > hits[1].score + 0.1, "{hits:?}");
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(hits.iter().all(|h| h.score > 0.0 && h.score <= 1.0 + 1e-6));
    let typo = store
        .similar_search(&embedder(), "acme", "insuficient", 1)
        .await?;
    assert_eq!(typo[0].event_id, planted.event_id, "{typo:?}");
    assert!(store
        .keyword_search("acme", "insuficient", 1)
        .await?
        .is_empty());
    let other = store
        .similar_search(&embedder(), "globex", "card declined", 10)
        .await?;
    assert_eq!(
        other.iter().map(|h| h.event_id).collect::<Vec<_>>(),
        [elsewhere.event_id]
    );
    Ok(())
}

/// A vector batch delivered twice (with repeats across its records) stores each embedding
/// once, at the embedder's length.
pub(crate) async fn reprocessing_a_vector_batch_stores_each_embedding_once<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    let events = noise("acme", 10);
    let recs = vec![
        record("acme", events.clone()),
        record("acme", events[..4].to_vec()),
    ];
    for _ in 0..2 {
        deliver(h.store(), &vector(), recs.clone()).await;
    }
    assert_eq!(h.scalar("select count(*) from search_embeddings").await, 10);
    assert_eq!(h.embedding_dimensions().await, [256]);
    Ok(())
}

/// A failing embedder retries the whole batch, then (in a real pool, out of retries)
/// dead-letters it, having written nothing.
pub(crate) async fn failing_embedder_retries_the_batch_then_dead_letters_it_writing_nothing<
    H: Harness,
>(
    h: &H,
) -> anyhow::Result<()> {
    let store = h.store();
    let failing = FailingEmbedder::default();
    let policy = RetryPolicy {
        max_retries: 1,
        base_delay: Duration::from_millis(50),
    };
    let handler = VectorIndexHandler::new(Arc::new(failing.clone()), policy);

    let run = store
        .run(&handler, vec![record("acme", noise("acme", 5))])
        .await?;
    let [(_, Outcome::Retry { error, delay })] = run.outcomes.as_slice() else {
        anyhow::bail!("expected one retry, got {:?}", run.outcomes);
    };
    assert!(error.contains("model server unavailable"), "{error}");
    assert!(*delay <= Duration::from_secs(1), "{delay:?}");
    assert_eq!(failing.calls.load(Ordering::SeqCst), 1);

    let pool = Handles::with(
        WorkerPool::builder(store.clone()),
        handler,
        Default::default(),
    );
    let running = Running::spawn([pool.build()?]);
    eventually(
        Duration::from_secs(10),
        "the record to be dead-lettered",
        || async { !store.dead_letters(None, None, 10).await.unwrap().is_empty() },
    )
    .await;
    running.stop().await?;

    let dead = store.dead_letters(None, None, 10).await?;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 2);
    assert_eq!(dead[0].queue.routing_key.as_deref(), Some("vector"));
    let last = dead[0].last_error.as_deref().unwrap_or("");
    assert!(last.contains("model server unavailable"), "{last}");
    assert_eq!(failing.calls.load(Ordering::SeqCst), 2);
    assert_eq!(h.scalar("select count(*) from search_embeddings").await, 0);
    Ok(())
}

/// An embedder returning vectors of the wrong length is a retryable error, not a panic, in
/// the handler and in the search.
pub(crate) async fn embedder_dimension_mismatch_is_an_error_not_a_panic<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    let store = h.store();
    let handler = VectorIndexHandler::new(Arc::new(MisreportingEmbedder), RetryPolicy::default());
    let run = store
        .run(&handler, vec![record("globex", noise("globex", 3))])
        .await?;
    let [(_, Outcome::Retry { error, .. })] = run.outcomes.as_slice() else {
        anyhow::bail!("expected one retry, got {:?}", run.outcomes);
    };
    assert!(error.contains("8 dimensions, expected 256"), "{error}");
    assert!(!error.contains("panicked"), "{error}");
    assert_eq!(h.scalar("select count(*) from search_embeddings").await, 0);

    let misreporting: Arc<dyn Embedder> = Arc::new(MisreportingEmbedder);
    let err = store
        .similar_search(&misreporting, "acme", "page view", 10)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Embed(e) if e.0.contains("8 dimensions, expected 256")),
        "{err}"
    );
    Ok(())
}

/// Vectors of an embedder of another length are skipped, not compared.
pub(crate) async fn similar_search_skips_vectors_of_another_embedder<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    let store = h.store();
    let small = VectorIndexHandler::new(Arc::new(HashingEmbedder::new(64)), RetryPolicy::default());
    deliver(store, &small, vec![record("acme", noise("acme", 5))]).await;
    let hits = store
        .similar_search(&embedder(), "acme", "page_view", 10)
        .await?;
    assert!(hits.is_empty(), "{hits:?}");
    let small: Arc<dyn Embedder> = Arc::new(HashingEmbedder::new(64));
    assert!(!store
        .similar_search(&small, "acme", "page_view", 10)
        .await?
        .is_empty());
    Ok(())
}

/// A worker pool indexes published records for both searches.
pub(crate) async fn a_worker_pool_indexes_published_records_for_both_searches<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    let store = h.store();
    let attrs = serde_json::json!({"plan": "enterprise-gold"});
    let planted = search_event("acme", "signup", "user-99", 1, attrs);
    let rec = record("acme", vec![planted.clone()]);
    for key in ["keyword", "vector"] {
        store
            .publish(Message::new(rec.clone()).routing_key(key))
            .await?;
    }
    store
        .publish(Message::new(record("acme", noise("acme", 50))).routing_key("vector"))
        .await?;

    let keyword = KeywordIndexHandler::new(RetryPolicy::default());
    let pool = Handles::with(
        WorkerPool::builder(store.clone()),
        keyword,
        Default::default(),
    );
    let pool = Handles::with(pool, vector(), Default::default());
    let running = Running::spawn([pool.build()?]);
    let embedder = embedder();
    eventually(
        Duration::from_secs(10),
        "both indexes to hold the event",
        || async {
            let by_keyword = store.keyword_search("acme", "enterprise-gold", 10);
            let by_vector = store.similar_search(&embedder, "acme", "enterprise gold signup", 1);
            let (by_keyword, by_vector) = (by_keyword.await.unwrap(), by_vector.await.unwrap());
            by_keyword.len() == 1 && by_vector.first().map(|h| h.event_id) == Some(planted.event_id)
        },
    )
    .await;
    running.stop().await?;
    assert_eq!(h.scalar("select count(*) from search_embeddings").await, 51);
    Ok(())
}
