//! [`SearchHit`]: one result of a keyword or similarity search.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// One event found by [`keyword_search`](crate::keyword_search) or
/// [`similar_search`](crate::similar_search), best first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    /// The event's id.
    pub event_id: Uuid,
    /// The event's timestamp.
    pub timestamp: DateTime<Utc>,
    /// The event's type.
    pub event_type: String,
    /// The event's source.
    pub source: String,
    /// The relevance: `ts_rank` for keyword search, cosine similarity for vector search.
    pub score: f64,
}
