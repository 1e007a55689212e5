//! The searches' deadline: a search still running when it passes is cancelled by the
//! database (Postgres' `statement_timeout`, SQLite's progress handler) as
//! `Error::SearchTimeout`, and its connection goes back to the pool clean. How a backend
//! makes a search slow, and what "clean" means there, is its harness's
//! [`stall_searches`](Harness::stall_searches) and
//! [`release_searches`](Harness::release_searches).

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use conveyor_handlers::{Embedder, Error, HashingEmbedder, PipelineStore, SearchQuery};

use super::Harness;

/// However the database is stalled, the search must not wait longer than this.
const GUARD: Duration = Duration::from_secs(30);

/// A keyword search past its deadline is cancelled; its connection is reused clean.
pub(crate) async fn a_keyword_search_past_its_deadline_is_cancelled_and_its_connection_reused<
    H: Harness,
>(
    h: &H,
) -> anyhow::Result<()> {
    let (store, stall) = h.stall_searches().await;
    let timeout = H::STALLED_SEARCH_TIMEOUT;
    let search =
        store.keyword_search_within(SearchQuery::new("acme", "common", 10).within(timeout));
    assert_cancelled(search, timeout, "keyword search").await;
    h.release_searches(&store, stall).await;
    Ok(())
}

/// A similarity search past its deadline is cancelled; its connection is reused clean.
pub(crate) async fn a_similarity_search_past_its_deadline_is_cancelled_and_its_connection_reused<
    H: Harness,
>(
    h: &H,
) -> anyhow::Result<()> {
    let (store, stall) = h.stall_searches().await;
    let embedder: Arc<dyn Embedder> = Arc::new(HashingEmbedder::default());
    let timeout = H::STALLED_SEARCH_TIMEOUT;
    let search = store.similar_search_within(
        &embedder,
        SearchQuery::new("acme", "common user", 10).within(timeout),
    );
    assert_cancelled(search, timeout, "similarity search").await;
    h.release_searches(&store, stall).await;
    Ok(())
}

/// `search` (the `what` of a stalled store) ends within [`GUARD`], as
/// `Error::SearchTimeout(timeout)`.
async fn assert_cancelled<T: Debug>(
    search: impl Future<Output = Result<T, Error>>,
    timeout: Duration,
    what: &str,
) {
    let result = tokio::time::timeout(GUARD, search)
        .await
        .unwrap_or_else(|_| panic!("the {what} is cancelled, not left waiting"));
    assert!(
        matches!(result, Err(Error::SearchTimeout(t)) if t == timeout),
        "{result:?}"
    );
}
