//! Search over the key's tenant: `GET /v1/search?q&limit` (full text) and
//! `GET /v1/search/similar?q&limit` (embedding similarity), both `{"data": [hit]}`, best first.

use axum::extract::State;
use axum::response::Response;
use conveyor_handlers::PipelineStore;
use serde_json::json;

use super::{json_body, to_body, Params};
use crate::api_error::ApiError;
use crate::auth::Tenant;
use crate::state::AppState;

const DEFAULT_LIMIT: u32 = 10;
const MAX_LIMIT: u32 = 100;

/// `q` (non-blank) and `limit`.
fn search_params(params: &Params) -> Result<(String, u32), ApiError> {
    params.only(&["q", "limit"])?;
    let q = params
        .text("q")
        .map(|q| q.trim().to_owned())
        .filter(|q| !q.is_empty())
        .ok_or_else(|| ApiError::bad("q", "`q` is required: the text to search for"))?;
    Ok((q, params.limit(DEFAULT_LIMIT, MAX_LIMIT)?))
}

/// Full-text search, ranked by the backend's relevance (`ts_rank` on Postgres).
pub(crate) async fn keyword<S: PipelineStore>(
    State(state): State<AppState<S>>,
    Tenant(namespace): Tenant,
    params: Params,
) -> Result<Response, ApiError> {
    let (q, limit) = search_params(&params)?;
    let hits = state.store.keyword_search(&namespace, &q, limit).await?;
    Ok(json_body(to_body(&json!({ "data": hits }))?))
}

/// Similarity search with the vector backend's embedder, ranked by cosine similarity.
pub(crate) async fn similar<S: PipelineStore>(
    State(state): State<AppState<S>>,
    Tenant(namespace): Tenant,
    params: Params,
) -> Result<Response, ApiError> {
    let (q, limit) = search_params(&params)?;
    let hits = state
        .store
        .similar_search(&state.embedder, &namespace, &q, limit)
        .await?;
    Ok(json_body(to_body(&json!({ "data": hits }))?))
}
