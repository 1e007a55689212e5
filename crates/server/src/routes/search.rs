//! Search over the key's tenant: `GET /v1/search?q&limit` (full text) and
//! `GET /v1/search/similar?q&limit` (embedding similarity), both `{"data": [hit]}`, best first.
//!
//! A search cannot run away: `q` is capped in bytes and in words (400 naming `q` past
//! either), and the database cancels a search still running after
//! [`PipelineStore::SEARCH_TIMEOUT`] (503 with `Retry-After`).

use axum::response::Response;
use conveyor_handlers::PipelineStore;
use serde_json::json;

use super::{json_body, to_body, Params, TenantRead};
use crate::api_error::ApiError;

const DEFAULT_LIMIT: u32 = 10;
const MAX_LIMIT: u32 = 100;

/// The longest `q`, in bytes of UTF-8 once trimmed: room for any query a person types, and a
/// bound on what the database parses and ranks.
const MAX_Q_BYTES: usize = 1024;

/// The most words in `q`. A word is a run of letters and digits, as both backends split
/// text (`ord-7f3a9` is two, `or` is one): each becomes a term the search matches and ranks,
/// and the cost of a search grows with their number.
const MAX_Q_WORDS: usize = 32;

/// `q` (non-blank, within [`MAX_Q_BYTES`] and [`MAX_Q_WORDS`]) and `limit`.
fn search_params(params: &Params) -> Result<(String, u32), ApiError> {
    params.only(&["q", "limit"])?;
    let q = params
        .text("q")
        .map(|q| q.trim().to_owned())
        .filter(|q| !q.is_empty())
        .ok_or_else(|| ApiError::bad("q", "`q` is required: the text to search for"))?;
    if q.len() > MAX_Q_BYTES {
        return Err(ApiError::bad(
            "q",
            format!(
                "`q` is {} bytes long; at most {MAX_Q_BYTES} bytes are allowed",
                q.len()
            ),
        ));
    }
    let words = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .count();
    if words > MAX_Q_WORDS {
        return Err(ApiError::bad(
            "q",
            format!(
                "`q` has {words} words; at most {MAX_Q_WORDS} are allowed (a word is a run of \
                 letters and digits, `or` included)"
            ),
        ));
    }
    Ok((q, params.limit(DEFAULT_LIMIT, MAX_LIMIT)?))
}

/// Full-text search, ranked by the backend's relevance (`ts_rank` on Postgres).
pub(crate) async fn keyword<S: PipelineStore>(read: TenantRead<S>) -> Result<Response, ApiError> {
    let (q, limit) = search_params(&read.params)?;
    let store = &read.state.store;
    let hits = store.keyword_search(&read.namespace, &q, limit).await?;
    Ok(json_body(to_body(&json!({ "data": hits }))?))
}

/// Similarity search with the vector backend's embedder, ranked by cosine similarity.
pub(crate) async fn similar<S: PipelineStore>(read: TenantRead<S>) -> Result<Response, ApiError> {
    let (q, limit) = search_params(&read.params)?;
    let state = &read.state;
    let hits = state
        .store
        .similar_search(&state.embedder, &read.namespace, &q, limit)
        .await?;
    Ok(json_body(to_body(&json!({ "data": hits }))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(value: &str) -> Result<(String, u32), ApiError> {
        let mut params = Params::default();
        params.0.insert("q".into(), value.into());
        search_params(&params)
    }

    /// The 400's field and message.
    fn refusal(value: &str) -> (String, String) {
        match q(value) {
            Err(ApiError::BadRequest { field, message }) => (field.unwrap(), message),
            other => panic!("expected a 400 for {} bytes, got {other:?}", value.len()),
        }
    }

    #[test]
    fn q_is_capped_in_bytes_naming_the_limit() {
        let longest = "x".repeat(MAX_Q_BYTES);
        assert_eq!(q(&longest).unwrap().0, longest);
        // surrounding blanks are not counted, multi-byte characters are counted in bytes
        assert!(q(&format!("  {longest}  ")).is_ok());
        let (field, message) = refusal(&format!("{longest}y"));
        assert_eq!(field, "q");
        assert!(message.contains("at most 1024 bytes"), "{message}");
        let (field, message) = refusal(&"é".repeat(MAX_Q_BYTES / 2 + 1));
        assert_eq!(field, "q");
        assert!(message.contains("1026 bytes long"), "{message}");
    }

    #[test]
    fn q_is_capped_in_words_naming_the_limit() {
        let words = |n: usize| (0..n).map(|i| format!("w{i}")).collect::<Vec<_>>();
        assert!(q(&words(MAX_Q_WORDS).join(" ")).is_ok());
        for too_many in [
            words(MAX_Q_WORDS + 1).join(" "),
            words(17).join(" or "),
            words(MAX_Q_WORDS + 1).join("-"),
            format!("\"{}\"", words(MAX_Q_WORDS + 1).join(" ")),
        ] {
            let (field, message) = refusal(&too_many);
            assert_eq!(field, "q");
            assert!(message.contains("at most 32 are allowed"), "{message}");
        }
        // punctuation is not a word
        assert!(q(&format!("{} *** ((( ---", words(MAX_Q_WORDS).join(" "))).is_ok());
    }
}
