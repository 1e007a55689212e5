//! SQLite-only: writers take turns behind the store's write lock, so the vector handler must
//! embed before it takes the lock (Postgres has no such lock to hold).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use conveyor::{SqliteStore, Store};
use conveyor_handlers::{EmbedError, Embedder, HashingEmbedder, RetryPolicy, VectorIndexHandler};

use crate::contract::fixtures::{deliver, noise, record};
use crate::contract::Harness;
use crate::TestDb;

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
    assert_eq!(
        Harness::scalar(&db, "select count(*) from search_embeddings").await,
        4
    );
    Ok(())
}
