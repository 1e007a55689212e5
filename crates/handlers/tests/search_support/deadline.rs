//! The searches' deadline on Postgres: each search runs in a transaction whose
//! `statement_timeout` Postgres enforces, so a statement still running (here: waiting behind
//! a lock, as behind a migration) is cancelled in the server, and the setting stays in that
//! transaction.

use std::sync::Arc;
use std::time::Duration;

use conveyor::PgStore;
use conveyor_handlers::{Embedder, Error, HashingEmbedder, PipelineStore};
use sqlx::postgres::PgPoolOptions;

use crate::common::setup;

#[sqlx::test(migrations = false)]
async fn searches_past_their_deadline_are_cancelled_by_postgres(
    pool: sqlx::PgPool,
) -> anyhow::Result<()> {
    setup(&pool).await?;
    // the searches' own pool of one connection, to read its settings afterwards
    let single = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(pool.connect_options().as_ref().clone())
        .await?;
    let store = PgStore::new(single.clone());
    let setting = || async {
        sqlx::query_scalar::<_, String>("show statement_timeout")
            .fetch_one(&single)
            .await
    };
    let default = setting().await?;
    let embedder: Arc<dyn Embedder> = Arc::new(HashingEmbedder::default());

    // without a deadline, a search waits for this lock as long as it is held
    let mut blocker = pool.begin().await?;
    sqlx::query("lock table search_documents, search_embeddings in access exclusive mode")
        .execute(&mut *blocker)
        .await?;
    let timeout = Duration::from_millis(100);
    let guard = Duration::from_secs(30);
    let keyword = tokio::time::timeout(
        guard,
        store.keyword_search_within("acme", "card", 10, timeout),
    )
    .await
    .expect("the keyword search is cancelled, not left waiting");
    assert!(
        matches!(keyword, Err(Error::SearchTimeout(t)) if t == timeout),
        "{keyword:?}"
    );
    let similar = tokio::time::timeout(
        guard,
        store.similar_search_within(&embedder, "acme", "card", 10, timeout),
    )
    .await
    .expect("the similarity search is cancelled, not left waiting");
    assert!(
        matches!(similar, Err(Error::SearchTimeout(t)) if t == timeout),
        "{similar:?}"
    );
    blocker.rollback().await?;

    // once the lock is gone the same searches answer, and their timeout was their
    // transactions' own: the one connection keeps its setting
    assert!(store
        .keyword_search_within("acme", "card", 10, timeout)
        .await?
        .is_empty());
    assert!(store
        .similar_search_within(&embedder, "acme", "card", 10, timeout)
        .await?
        .is_empty());
    assert_eq!(setting().await?, default);
    Ok(())
}
