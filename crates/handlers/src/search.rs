//! What both searches share on every backend: [`SearchHit`], the parameter check, the
//! deadline's default and the rows both search indexes store ([`IndexRows`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use conveyor::Batch;

use crate::error::{Error, Result};
use crate::events::{first_of_each, IndexRecord};

/// How long a search's database statement may run before it is cancelled, unless a caller
/// chooses otherwise (see [`PipelineStore::keyword_search_within`](crate::PipelineStore)).
pub(crate) const SEARCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The most bytes of an event's text that are indexed. Postgres refuses a tsvector over
/// 1 MiB, which would make an oversized event fail its record on every retry; 64 KiB of
/// attribute text is far more than search needs.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// The most hits one search returns.
pub(crate) const MAX_LIMIT: u32 = 100;

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

/// What a search looks for, and how long it may take: the parameters of
/// [`PipelineStore::keyword_search_within`](crate::PipelineStore::keyword_search_within) and
/// [`PipelineStore::similar_search_within`](crate::PipelineStore::similar_search_within).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchQuery<'a> {
    /// The tenant namespace searched.
    pub namespace: &'a str,
    /// The query: web-search syntax for keyword search, any text for similarity search.
    pub query: &'a str,
    /// At most this many hits (1..=100).
    pub limit: u32,
    /// How long the database may run the search before it cancels it.
    pub timeout: Duration,
}

impl<'a> SearchQuery<'a> {
    /// A search of `namespace` for `query`, at most `limit` hits, cancelled after 5 s.
    pub fn new(namespace: &'a str, query: &'a str, limit: u32) -> Self {
        Self {
            namespace,
            query,
            limit,
            timeout: SEARCH_TIMEOUT,
        }
    }

    /// This search, cancelled after `timeout` instead.
    pub fn within(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }

    /// Check the parameters both searches share (see [`validate`]).
    pub(crate) fn check(&self) -> Result<()> {
        validate(self.query, self.limit)
    }
}

/// Check the parameters both searches share: a non-blank `q` and a `limit` in 1..=100.
pub(crate) fn validate(query: &str, limit: u32) -> Result<()> {
    if query.trim().is_empty() {
        return Err(Error::InvalidQuery("q must not be empty".into()));
    }
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::InvalidQuery(format!(
            "limit must be 1..={MAX_LIMIT}, got {limit}"
        )));
    }
    Ok(())
}

/// The deduplicated events of a batch as columns, ready to bind to an `unnest` insert.
/// Both search backends index the same rows and the same text.
#[derive(Debug, Default)]
pub(crate) struct IndexRows {
    pub(crate) namespaces: Vec<String>,
    pub(crate) event_ids: Vec<Uuid>,
    pub(crate) timestamps: Vec<DateTime<Utc>>,
    pub(crate) event_types: Vec<String>,
    pub(crate) sources: Vec<String>,
    /// [`search_text`](crate::IngestedEvent::search_text), made storable (see [`storable`]).
    pub(crate) texts: Vec<String>,
}

impl IndexRows {
    /// The batch's events, first occurrence of each `(namespace, event_id, timestamp)` only.
    pub(crate) fn from_batch(batch: &Batch<IndexRecord>) -> Self {
        let events = first_of_each(batch.iter().flat_map(|item| {
            let ns = item.payload.namespace.as_str();
            item.payload.events.iter().map(move |e| (ns, e))
        }));
        let mut rows = Self::default();
        for (ns, e) in events {
            rows.namespaces.push(storable(ns.to_owned(), usize::MAX));
            rows.event_ids.push(e.event_id);
            rows.timestamps.push(e.timestamp);
            rows.event_types
                .push(storable(e.event_type.clone(), usize::MAX));
            rows.sources.push(storable(e.source.clone(), usize::MAX));
            rows.texts.push(storable(e.search_text(), MAX_BODY_BYTES));
        }
        rows
    }

    pub(crate) fn len(&self) -> usize {
        self.event_ids.len()
    }
}

/// `s` as Postgres `text` accepts it: NUL characters (valid in JSON, refused by Postgres,
/// which would fail the batch on every retry) become spaces, and at most `max_bytes` are
/// kept, cut at a character boundary.
pub(crate) fn storable(mut s: String, max_bytes: usize) -> String {
    if s.len() > max_bytes {
        let mut cut = max_bytes;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    if s.contains('\0') {
        s = s.replace('\0', " ");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_queries_and_bad_limits_are_rejected_by_name() {
        for q in ["", "  ", "\t\n"] {
            let err = validate(q, 10).unwrap_err().to_string();
            assert!(err.contains("q must not be empty"), "{err}");
        }
        for limit in [0, 101, u32::MAX] {
            let err = validate("x", limit).unwrap_err().to_string();
            assert!(err.contains("limit must be 1..=100"), "{err}");
        }
        assert!(validate("x", 1).is_ok() && validate("x", 100).is_ok());
    }

    #[test]
    fn storable_strips_nul_and_cuts_at_a_char_boundary() {
        assert_eq!(storable("a\0b".into(), 10), "a b");
        assert_eq!(storable("héllo".into(), 2), "h");
        assert_eq!(storable("héllo".into(), 3), "hé");
        assert_eq!(storable("abc".into(), usize::MAX), "abc");
    }
}
