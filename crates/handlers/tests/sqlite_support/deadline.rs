//! The searches' deadline on SQLite: a statement still running when it passes is interrupted
//! by the connection's progress handler, and the connection goes back to the pool clean.

use std::sync::Arc;
use std::time::Duration;

use conveyor::SqliteStore;
use conveyor_handlers::{Embedder, Error, HashingEmbedder, PipelineStore};

use crate::sqlite_support::TestDb;

/// Documents (or embeddings) enough that a search over all of them runs for tens of
/// milliseconds at least: far past a 1 ms deadline, whatever the machine.
const ROWS: usize = 20_000;

/// `ROWS` documents of `acme`, every one holding the word `common`.
async fn many_documents(db: &TestDb) -> anyhow::Result<()> {
    db.exec(&format!(
        "with recursive n(i) as (select 1 union all select i + 1 from n where i < {ROWS})
         insert into search_documents (namespace, event_id, ts, event_type, source, body)
         select 'acme', randomblob(16), i, 'page_view', 'web',
                'page_view web common user ' || i || ' w' || (i % 500)
           from n"
    ))
    .await
}

/// A statement of many virtual-machine steps (a scan of every document): a progress handler
/// left behind with a passed deadline would interrupt it.
async fn long_statement(store: &SqliteStore) -> sqlx::Result<i64> {
    sqlx::query_scalar("select count(*) from search_documents where body like '%common%'")
        .fetch_one(store.pool())
        .await
}

#[tokio::test]
async fn a_keyword_search_past_its_deadline_is_interrupted_and_its_connection_reused(
) -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    many_documents(&db).await?;
    let store = db.single_connection().await?;

    let timeout = Duration::from_millis(1);
    let result = store
        .keyword_search_within("acme", "common", 10, timeout)
        .await;
    assert!(
        matches!(result, Err(Error::SearchTimeout(t)) if t == timeout),
        "{result:?}"
    );
    // the one connection has no handler left: a long statement and a search run through
    assert_eq!(long_statement(&store).await?, ROWS as i64);
    let hits = store.keyword_search("acme", "common", 10).await?;
    assert_eq!(hits.len(), 10);
    Ok(())
}

#[tokio::test]
async fn a_similarity_scan_past_its_deadline_is_interrupted_and_its_connection_reused(
) -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    many_documents(&db).await?;
    let embedder: Arc<dyn Embedder> = Arc::new(HashingEmbedder::default());
    let bytes = embedder.dimensions() * 4;
    // vectors of the embedder's length (all zero: the scan reads them all, finds nothing)
    db.exec(&format!(
        "insert into search_embeddings (namespace, event_id, ts, event_type, source, embedding)
         select namespace, event_id, ts, event_type, source, zeroblob({bytes})
           from search_documents"
    ))
    .await?;
    let store = db.single_connection().await?;

    let timeout = Duration::from_millis(1);
    let result = store
        .similar_search_within(&embedder, "acme", "common user", 10, timeout)
        .await;
    assert!(
        matches!(result, Err(Error::SearchTimeout(t)) if t == timeout),
        "{result:?}"
    );
    assert_eq!(long_statement(&store).await?, ROWS as i64);
    let hits = store
        .similar_search(&embedder, "acme", "common user", 10)
        .await?;
    assert!(hits.is_empty(), "zero vectors are similar to nothing");
    Ok(())
}
