//! The search backends against real Postgres, one fresh database per test: the keyword and
//! vector handlers run through the framework (`conveyor::testing::run_batch` or a real
//! `WorkerPool`), then `keyword_search` / `similar_search` read what they wrote.

mod common;
mod search_support;

#[path = "search_support/deadline.rs"]
mod deadline;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use conveyor::testing::run_batch;
use conveyor::{Message, Outcome, Store, WorkerPool};
use conveyor_handlers::{
    keyword_search, similar_search, Error, HashingEmbedder, KeywordIndexHandler, RetryPolicy,
    VectorIndexHandler,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use common::{eventually, record, setup};
use search_support::{count, event, noise, FailingEmbedder, MisreportingEmbedder, Running};

fn keyword() -> KeywordIndexHandler {
    KeywordIndexHandler::new(RetryPolicy::default())
}

fn vector() -> VectorIndexHandler {
    VectorIndexHandler::new(Arc::new(HashingEmbedder::default()), RetryPolicy::default())
}

fn all_delivered(run: &conveyor::testing::TestRun) -> bool {
    run.outcomes.iter().all(|(_, o)| *o == Outcome::Delivered)
}

#[sqlx::test(migrations = false)]
async fn keyword_search_finds_a_planted_event_by_attribute_value_in_its_namespace_only(
    pool: sqlx::PgPool,
) -> anyhow::Result<()> {
    let store = setup(&pool).await?;
    let mut events = noise("acme", 300);
    let planted = event(
        "acme",
        "checkout_failed",
        "user-7",
        500,
        serde_json::json!({"order": "ord-7f3a9", "reason": "card declined"}),
    );
    events.insert(150, planted.clone());
    let elsewhere = event(
        "globex",
        "checkout_failed",
        "user-7",
        500,
        serde_json::json!({"order": "ord-7f3a9"}),
    );
    let mut other = noise("globex", 20);
    other.push(elsewhere.clone());

    for rec in [record("acme", events), record("globex", other)] {
        assert!(all_delivered(
            &run_batch(&store, &keyword(), vec![rec]).await?
        ));
    }
    assert_eq!(count(&pool, "search_documents").await?, 322);

    let hits = keyword_search(&pool, "acme", "ord-7f3a9", 10).await?;
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].event_id, planted.event_id);
    assert_eq!(hits[0].timestamp, planted.timestamp);
    assert_eq!(hits[0].event_type, "checkout_failed");
    assert_eq!(hits[0].source, "web");
    assert!(hits[0].score > 0.0);

    let hits = keyword_search(&pool, "globex", "ORD-7F3A9", 10).await?;
    assert_eq!(
        hits.iter().map(|h| h.event_id).collect::<Vec<_>>(),
        [elsewhere.event_id]
    );
    assert!(keyword_search(&pool, "initech", "ord-7f3a9", 10)
        .await?
        .is_empty());
    // web-search syntax: a phrase, and a negated word excluding the match
    assert_eq!(
        keyword_search(&pool, "acme", "\"card declined\"", 10)
            .await?
            .len(),
        1
    );
    assert!(keyword_search(&pool, "acme", "ord-7f3a9 -declined", 10)
        .await?
        .is_empty());
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn keyword_search_orders_by_rank_then_newest(pool: sqlx::PgPool) -> anyhow::Result<()> {
    let store = setup(&pool).await?;
    let once_old = event(
        "acme",
        "refund",
        "a",
        1,
        serde_json::json!({"note": "requested"}),
    );
    let once_new = event(
        "acme",
        "refund",
        "b",
        2,
        serde_json::json!({"note": "requested"}),
    );
    let twice = event(
        "acme",
        "refund",
        "c",
        0,
        serde_json::json!({"note": "refund requested"}),
    );
    let events = vec![once_old.clone(), twice.clone(), once_new.clone()];
    run_batch(&store, &keyword(), vec![record("acme", events)]).await?;

    let hits = keyword_search(&pool, "acme", "refund", 10).await?;
    let ids: Vec<_> = hits.iter().map(|h| h.event_id).collect();
    assert_eq!(ids, [twice.event_id, once_new.event_id, once_old.event_id]);
    assert!(hits[0].score > hits[1].score);
    assert_eq!(keyword_search(&pool, "acme", "refund", 2).await?.len(), 2);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn reprocessing_a_keyword_batch_stores_each_document_once(
    pool: sqlx::PgPool,
) -> anyhow::Result<()> {
    let store = setup(&pool).await?;
    let mut events = noise("acme", 10);
    // the same event twice within the record, too
    events.push(events[3].clone());
    let rec = record("acme", events);
    for _ in 0..3 {
        assert!(all_delivered(
            &run_batch(&store, &keyword(), vec![rec.clone()]).await?
        ));
    }
    assert_eq!(count(&pool, "search_documents").await?, 10);
    let hits = keyword_search(&pool, "acme", "user-3", 10).await?;
    assert_eq!(hits.len(), 1, "{hits:?}");
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn searches_reject_an_empty_query_naming_q(pool: sqlx::PgPool) -> anyhow::Result<()> {
    setup(&pool).await?;
    let embedder = HashingEmbedder::default();
    for q in ["", "   ", "\n\t"] {
        let err = keyword_search(&pool, "acme", q, 10).await.unwrap_err();
        assert!(
            matches!(&err, Error::InvalidQuery(m) if m == "q must not be empty"),
            "{err}"
        );
        let err = similar_search(&pool, &embedder, "acme", q, 10)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidQuery(m) if m == "q must not be empty"),
            "{err}"
        );
    }
    for limit in [0, 101] {
        let err = keyword_search(&pool, "acme", "x", limit).await.unwrap_err();
        assert!(err.to_string().contains("limit must be 1..=100"), "{err}");
        let err = similar_search(&pool, &embedder, "acme", "x", limit)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("limit must be 1..=100"), "{err}");
    }
    // punctuation only is a valid query that matches nothing
    assert!(keyword_search(&pool, "acme", "!!!", 10).await?.is_empty());
    assert!(similar_search(&pool, &embedder, "acme", "!!!", 10)
        .await?
        .is_empty());
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn similar_search_ranks_the_planted_event_first(pool: sqlx::PgPool) -> anyhow::Result<()> {
    let store = setup(&pool).await?;
    let mut events = noise("acme", 300);
    let planted = event(
        "acme",
        "checkout_failed",
        "user-7",
        500,
        serde_json::json!({"reason": "card declined insufficient funds", "page": "/checkout"}),
    );
    events.insert(42, planted.clone());
    let elsewhere = event(
        "globex",
        "checkout_failed",
        "user-7",
        500,
        serde_json::json!({"reason": "card declined insufficient funds"}),
    );
    let recs = vec![
        record("acme", events),
        record("globex", vec![elsewhere.clone()]),
    ];
    assert!(all_delivered(&run_batch(&store, &vector(), recs).await?));
    assert_eq!(count(&pool, "search_embeddings").await?, 302);

    let embedder = HashingEmbedder::default();
    let hits = similar_search(
        &pool,
        &embedder,
        "acme",
        "checkout failed: card declined",
        5,
    )
    .await?;
    assert_eq!(hits.len(), 5);
    assert_eq!(hits[0].event_id, planted.event_id, "{hits:?}");
    assert!(hits[0].score > hits[1].score + 0.1, "{hits:?}");
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(hits.iter().all(|h| h.score > 0.0 && h.score <= 1.0 + 1e-6));
    // a typo still finds it through shared character trigrams, where keyword search cannot
    let hits = similar_search(&pool, &embedder, "acme", "insuficient", 1).await?;
    assert_eq!(hits[0].event_id, planted.event_id, "{hits:?}");
    assert!(keyword_search(&pool, "acme", "insuficient", 1)
        .await?
        .is_empty());
    // other namespaces are never returned
    let hits = similar_search(&pool, &embedder, "globex", "card declined", 10).await?;
    assert_eq!(
        hits.iter().map(|h| h.event_id).collect::<Vec<_>>(),
        [elsewhere.event_id]
    );
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn reprocessing_a_vector_batch_stores_each_embedding_once(
    pool: sqlx::PgPool,
) -> anyhow::Result<()> {
    let store = setup(&pool).await?;
    let events = noise("acme", 10);
    let recs = vec![
        record("acme", events.clone()),
        record("acme", events[..4].to_vec()),
    ];
    for _ in 0..2 {
        assert!(all_delivered(
            &run_batch(&store, &vector(), recs.clone()).await?
        ));
    }
    assert_eq!(count(&pool, "search_embeddings").await?, 10);
    let lengths: Vec<i32> =
        sqlx::query_scalar("select distinct cardinality(embedding) from search_embeddings")
            .fetch_all(&pool)
            .await?;
    assert_eq!(lengths, [256]);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn failing_embedder_retries_the_batch_then_dead_letters_it_writing_nothing(
    pool: sqlx::PgPool,
) -> anyhow::Result<()> {
    let store = setup(&pool).await?;
    let embedder = FailingEmbedder::default();
    let policy = RetryPolicy {
        max_retries: 1,
        base_delay: Duration::from_millis(50),
    };
    let handler = VectorIndexHandler::new(Arc::new(embedder.clone()), policy);

    // first attempt: the whole batch is retried
    let run = run_batch(&store, &handler, vec![record("acme", noise("acme", 5))]).await?;
    let [(_, Outcome::Retry { error, delay })] = run.outcomes.as_slice() else {
        anyhow::bail!("expected one retry, got {:?}", run.outcomes);
    };
    assert!(error.contains("model server unavailable"), "{error}");
    assert!(*delay <= Duration::from_secs(1), "{delay:?}");

    // second attempt, in a real pool: out of retries, dead-lettered
    let running = Running::spawn(
        WorkerPool::builder(store.clone())
            .register(handler)
            .build()?,
    );
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
    assert!(dead[0]
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains("model server unavailable"));
    assert_eq!(embedder.calls.load(Ordering::SeqCst), 2);
    assert_eq!(count(&pool, "search_embeddings").await?, 0);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn embedder_dimension_mismatch_is_an_error_not_a_panic(
    pool: sqlx::PgPool,
) -> anyhow::Result<()> {
    let store = setup(&pool).await?;
    let handler = VectorIndexHandler::new(Arc::new(MisreportingEmbedder), RetryPolicy::default());
    let run = run_batch(&store, &handler, vec![record("acme", noise("acme", 3))]).await?;
    let [(_, Outcome::Retry { error, .. })] = run.outcomes.as_slice() else {
        anyhow::bail!("expected one retry, got {:?}", run.outcomes);
    };
    assert!(error.contains("8 dimensions, expected 256"), "{error}");
    assert!(!error.contains("panicked"), "{error}");
    assert_eq!(count(&pool, "search_embeddings").await?, 0);

    let err = similar_search(&pool, &MisreportingEmbedder, "acme", "page view", 10)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Embed(e) if e.0.contains("8 dimensions, expected 256")),
        "{err}"
    );
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn similar_search_skips_vectors_of_another_embedder(
    pool: sqlx::PgPool,
) -> anyhow::Result<()> {
    let store = setup(&pool).await?;
    let small = VectorIndexHandler::new(Arc::new(HashingEmbedder::new(64)), RetryPolicy::default());
    run_batch(&store, &small, vec![record("acme", noise("acme", 5))]).await?;
    let hits = similar_search(&pool, &HashingEmbedder::default(), "acme", "page_view", 10).await?;
    assert!(hits.is_empty(), "{hits:?}");
    let hits = similar_search(&pool, &HashingEmbedder::new(64), "acme", "page_view", 10).await?;
    assert!(!hits.is_empty());
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_worker_pool_indexes_published_records_for_both_searches(
    opts: PgPoolOptions,
    connect: PgConnectOptions,
) -> anyhow::Result<()> {
    let pool = opts.max_connections(12).connect_with(connect).await?;
    let store = setup(&pool).await?;
    let planted = event(
        "acme",
        "signup",
        "user-99",
        1,
        serde_json::json!({"plan": "enterprise-gold"}),
    );
    let rec = record("acme", vec![planted.clone()]);
    for key in ["keyword", "vector"] {
        store
            .publish(Message::new(rec.clone()).routing_key(key))
            .await?;
    }
    store
        .publish(Message::new(record("acme", noise("acme", 50))).routing_key("vector"))
        .await?;

    let running = Running::spawn(
        WorkerPool::builder(store.clone())
            .register(keyword())
            .register(vector())
            .build()?,
    );
    let embedder = HashingEmbedder::default();
    eventually(
        Duration::from_secs(10),
        "both indexes to hold the event",
        || async {
            let by_keyword = keyword_search(&pool, "acme", "enterprise-gold", 10)
                .await
                .unwrap();
            let by_vector = similar_search(&pool, &embedder, "acme", "enterprise gold signup", 1)
                .await
                .unwrap();
            by_keyword.len() == 1 && by_vector.first().map(|h| h.event_id) == Some(planted.event_id)
        },
    )
    .await;
    running.stop().await?;
    assert_eq!(count(&pool, "search_embeddings").await?, 51);
    Ok(())
}
