//! The synthetic request bodies of the ingest driver: fresh events in the API's shape.

use chrono::{DateTime, Utc};

/// Event types the synthetic events cycle through.
const EVENT_TYPES: [&str; 10] = [
    "page_view",
    "click",
    "signup",
    "login",
    "logout",
    "search",
    "add_to_cart",
    "checkout",
    "purchase",
    "share",
];
/// Sources the synthetic events cycle through.
const SOURCES: [&str; 3] = ["web", "ios", "android"];

/// One synthetic event in the API's request shape.
#[derive(Debug, serde::Serialize)]
struct EventOut {
    event_id: uuid::Uuid,
    event_type: &'static str,
    actor_id: String,
    source: &'static str,
    timestamp: DateTime<Utc>,
    attributes: Attributes,
}

/// The synthetic events' attributes.
#[derive(Debug, serde::Serialize)]
struct Attributes {
    page: String,
    n: usize,
}

/// The JSON body of request number `r`: `events` fresh events, stamped now.
pub(super) fn body(r: usize, events: usize) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Bulk {
        events: Vec<EventOut>,
    }
    let now = Utc::now();
    let events = (0..events)
        .map(|i| EventOut {
            event_id: uuid::Uuid::new_v4(),
            event_type: EVENT_TYPES[i % EVENT_TYPES.len()],
            actor_id: format!("actor_{}", (r * events + i) % 5_000),
            source: SOURCES[i % SOURCES.len()],
            timestamp: now,
            attributes: Attributes {
                page: format!("/p/{}", i % 50),
                n: i,
            },
        })
        .collect();
    // serializing plain structs of strings and numbers cannot fail
    serde_json::to_vec(&Bulk { events }).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_api_shape_with_unique_event_ids() {
        let body: serde_json::Value = serde_json::from_slice(&body(3, 5)).expect("json");
        let events = body["events"].as_array().expect("events array");
        assert_eq!(events.len(), 5);
        for field in [
            "event_id",
            "event_type",
            "actor_id",
            "source",
            "timestamp",
            "attributes",
        ] {
            assert!(events[0].get(field).is_some(), "missing {field}");
        }
        let ids: std::collections::HashSet<_> =
            events.iter().map(|e| e["event_id"].clone()).collect();
        assert_eq!(ids.len(), 5);
    }
}
