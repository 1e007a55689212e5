//! The pipeline's payloads: [`EventsReceived`] (what the API accepted) and [`IndexRecord`]
//! (one per configured backend), both carrying [`IngestedEvent`]s.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One client event, as accepted by the ingestion API.
///
/// `(namespace, event_id, timestamp)` identifies it: every backend deduplicates on that key,
/// so a retried request or a reprocessed batch never stores or counts an event twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, garde::Validate)]
pub struct IngestedEvent {
    /// The client's id, or one derived from the event's content when the client sent none
    /// (see [`IngestedEvent::derive_id`]).
    #[garde(skip)]
    pub event_id: Uuid,
    /// What happened, such as `page_view`.
    #[garde(length(min = 1, max = 128))]
    pub event_type: String,
    /// Who did it.
    #[garde(length(min = 1, max = 256))]
    pub actor_id: String,
    /// Where it came from, such as `web`.
    #[garde(length(min = 1, max = 128))]
    pub source: String,
    /// When it happened (the event's own clock; partitions and rollup days use it, in UTC).
    #[garde(skip)]
    pub timestamp: DateTime<Utc>,
    /// Free-form attributes: a JSON object.
    #[garde(skip)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

impl IngestedEvent {
    /// A deterministic id for an event the client sent without one: a UUIDv5 over the
    /// namespace and the event's content. Posting the same event twice gives the same id, so
    /// a retried request is deduplicated even without client ids; two events identical in
    /// every field, timestamp included, are one event.
    pub fn derive_id(
        namespace: &str,
        event_type: &str,
        actor_id: &str,
        source: &str,
        timestamp: DateTime<Utc>,
        attributes: &serde_json::Map<String, serde_json::Value>,
    ) -> Uuid {
        // serde_json's Map is ordered by key, so equal objects serialise equally; the tuple
        // serialises exactly as the `json!([…])` array earlier versions hashed, without
        // copying the attributes into a new value first
        let content = serde_json::to_vec(&(
            namespace,
            event_type,
            actor_id,
            source,
            timestamp.timestamp_micros(),
            attributes,
        ))
        .expect("strings, an integer and a JSON object always serialise");
        Uuid::new_v5(&ID_NAMESPACE, &content)
    }

    /// The text the search backends index: event type, source, actor and attribute values.
    pub fn search_text(&self) -> String {
        let mut text = format!("{} {} {}", self.event_type, self.source, self.actor_id);
        for value in self.attributes.values() {
            push_values(&mut text, value);
        }
        text
    }

    /// The UTC day the event belongs to.
    pub fn day(&self) -> chrono::NaiveDate {
        self.timestamp.date_naive()
    }
}

fn push_values(text: &mut String, value: &serde_json::Value) {
    match value {
        serde_json::Value::Null => {}
        serde_json::Value::String(s) => {
            text.push(' ');
            text.push_str(s);
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| push_values(text, v)),
        serde_json::Value::Object(map) => map.values().for_each(|v| push_values(text, v)),
        other => {
            text.push(' ');
            text.push_str(&other.to_string());
        }
    }
}

/// The UUID namespace of derived event ids.
const ID_NAMESPACE: Uuid = Uuid::from_u128(0x6c0e_7f5a_3a1b_4d0e_9b7c_2f4e_8d1a_5c3b);

/// A chunk of one accepted ingestion request, for one tenant namespace.
///
/// What [`PipelineStore::accept`](crate::PipelineStore::accept) takes; published as is only
/// by the spool after an outage, and consumed then by
/// [`FanOutToIndexBackends`](crate::FanOutToIndexBackends).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, garde::Validate)]
pub struct EventsReceived {
    /// The tenant namespace the API key maps to.
    #[garde(length(min = 1, max = 64))]
    pub namespace: String,
    /// The request's `X-Request-ID`.
    #[garde(length(max = 128))]
    pub request_id: String,
    /// The events.
    #[garde(length(min = 1), dive)]
    pub events: Vec<IngestedEvent>,
}

impl conveyor::Event for EventsReceived {
    const NAME: &'static str = "events_received";
}

/// Events of one accepted request, addressed to one backend by routing key: published by
/// [`PipelineStore::accept`](crate::PipelineStore::accept) for the events it newly stored (the
/// rollup's without attributes, which it does not read), or by
/// [`FanOutToIndexBackends`](crate::FanOutToIndexBackends) for a spooled [`EventsReceived`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, garde::Validate)]
pub struct IndexRecord {
    /// The tenant namespace.
    #[garde(length(min = 1, max = 64))]
    pub namespace: String,
    /// The originating request's id.
    #[garde(length(max = 128))]
    pub request_id: String,
    /// The events.
    #[garde(length(min = 1), dive)]
    pub events: Vec<IngestedEvent>,
}

impl conveyor::Event for IndexRecord {
    const NAME: &'static str = "index_record";
}

/// An index backend: where [`IndexRecord`]s go, by routing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// `events_raw`, day-partitioned.
    Raw,
    /// Exact daily counts and unique actors.
    Rollup,
    /// Full-text search.
    Keyword,
    /// Embedding similarity search.
    Vector,
}

impl Backend {
    /// Every backend, in fan-out order.
    pub const ALL: [Backend; 4] = [
        Backend::Raw,
        Backend::Rollup,
        Backend::Keyword,
        Backend::Vector,
    ];

    /// The routing key of this backend's [`IndexRecord`]s.
    pub const fn routing_key(self) -> &'static str {
        match self {
            Backend::Raw => "raw",
            Backend::Rollup => "rollup",
            Backend::Keyword => "keyword",
            Backend::Vector => "vector",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.routing_key())
    }
}

impl FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Backend::ALL
            .into_iter()
            .find(|b| b.routing_key() == s.trim())
            .ok_or_else(|| {
                format!("unknown backend `{s}`: expected one of raw, rollup, keyword, vector")
            })
    }
}

/// Drop repeated `(namespace, event_id, timestamp)` keys, keeping the first occurrence, so
/// every backend resolves duplicates inside one batch the same way.
pub(crate) fn first_of_each<'a>(
    records: impl IntoIterator<Item = (&'a str, &'a IngestedEvent)>,
) -> Vec<(&'a str, &'a IngestedEvent)> {
    let mut seen = std::collections::HashSet::new();
    records
        .into_iter()
        .filter(|(ns, e)| seen.insert((*ns, e.event_id, e.timestamp)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(attrs: serde_json::Value) -> IngestedEvent {
        let attributes = attrs.as_object().cloned().unwrap_or_default();
        let timestamp = "2026-11-24T10:00:00Z".parse().unwrap();
        IngestedEvent {
            event_id: IngestedEvent::derive_id("ns", "click", "u1", "web", timestamp, &attributes),
            event_type: "click".into(),
            actor_id: "u1".into(),
            source: "web".into(),
            timestamp,
            attributes,
        }
    }

    #[test]
    fn derived_ids_are_stable_and_content_sensitive() {
        let a = event(serde_json::json!({"b": 1, "a": "x"}));
        let b = event(serde_json::json!({"a": "x", "b": 1}));
        let c = event(serde_json::json!({"a": "y", "b": 1}));
        assert_eq!(a.event_id, b.event_id);
        assert_ne!(a.event_id, c.event_id);
    }

    #[test]
    fn derived_ids_are_those_earlier_versions_derived() {
        let attributes: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"b": [1, 2.5, "x\"y"], "a": {"z": null, "é": true}}"#)
                .unwrap();
        let timestamp = DateTime::from_timestamp(1_767_225_600, 123_456_000).unwrap();
        let earlier = serde_json::json!([
            "ns",
            "click",
            "u1",
            "web",
            timestamp.timestamp_micros(),
            attributes
        ]);
        assert_eq!(
            IngestedEvent::derive_id("ns", "click", "u1", "web", timestamp, &attributes),
            Uuid::new_v5(&ID_NAMESPACE, earlier.to_string().as_bytes())
        );
    }

    #[test]
    fn search_text_holds_type_source_actor_and_nested_values() {
        let e = event(
            serde_json::json!({"page": "/pricing", "n": 3, "tags": ["red", {"deep": "blue"}]}),
        );
        let text = e.search_text();
        for word in ["click", "web", "u1", "/pricing", "3", "red", "blue"] {
            assert!(text.contains(word), "{word} missing from {text}");
        }
    }

    #[test]
    fn backends_parse_from_their_routing_keys() {
        for b in Backend::ALL {
            assert_eq!(b.routing_key().parse::<Backend>(), Ok(b));
        }
        assert!("elastic"
            .parse::<Backend>()
            .unwrap_err()
            .contains("elastic"));
    }

    #[test]
    fn first_of_each_keeps_the_first_duplicate() {
        let a = event(serde_json::json!({}));
        let mut b = a.clone();
        b.source = "other".into();
        let kept = first_of_each([("ns", &a), ("ns", &b), ("ns2", &b)]);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].1.source, "web");
    }
}
