//! The ingestion API's write, raw-first ([`PipelineStore::accept`](crate::PipelineStore::accept)):
//! a request's events go to `events_raw`, and the [`IndexRecord`]s of the events newly
//! stored go to the outbox, in one transaction. What every backend's
//! `accept` shares is here: the reports, the deduplication and the records it publishes.

use std::collections::HashSet;

use conveyor::Message;
use uuid::Uuid;

use crate::events::{first_of_each, Backend, EventsReceived, IndexRecord, IngestedEvent};

/// The most events one published [`IndexRecord`] carries: a request of up to 5,000 events
/// becomes a few records per backend, so no outbox row grows without bound.
pub const RECORD_EVENTS: usize = 1_000;

/// What [`PipelineStore::accept`](crate::PipelineStore::accept) did with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AcceptReport {
    /// Events newly stored in `events_raw` and published to the index backends.
    pub stored: usize,
    /// Events whose key `(namespace, event_id, timestamp)` was already stored (a retried
    /// request, a key repeated in the request): neither stored nor indexed again.
    pub duplicates: usize,
}

/// One report per batch: how many of its events were fresh.
pub(crate) fn reports(
    batches: &[EventsReceived],
    fresh: &[Vec<&IngestedEvent>],
) -> Vec<AcceptReport> {
    batches
        .iter()
        .zip(fresh)
        .map(|(batch, fresh)| AcceptReport {
            stored: fresh.len(),
            duplicates: batch.events.len() - fresh.len(),
        })
        .collect()
}

/// The events of each batch, first occurrence of each key only (as every backend resolves
/// repeats inside one batch).
pub(crate) fn distinct(batches: &[EventsReceived]) -> Vec<Vec<&IngestedEvent>> {
    batches
        .iter()
        .map(|batch| {
            first_of_each(batch.events.iter().map(|e| (batch.namespace.as_str(), e)))
                .into_iter()
                .map(|(_, e)| e)
                .collect()
        })
        .collect()
}

/// Of each batch's `events`, those whose key is among `stored` (the `(namespace, event_id,
/// µs)` keys the insert returned), each key once over all batches: the events stored first
/// by this call, and by the batch that carried them first.
pub(crate) fn newly_stored<'a>(
    batches: &[EventsReceived],
    events: &[Vec<&'a IngestedEvent>],
    stored: impl IntoIterator<Item = (String, Uuid, i64)>,
) -> Vec<Vec<&'a IngestedEvent>> {
    let mut stored: HashSet<(String, Uuid, i64)> = stored.into_iter().collect();
    batches
        .iter()
        .zip(events)
        .map(|(batch, events)| {
            events
                .iter()
                .filter(|e| {
                    // the key is looked up, not rebuilt, when it was not stored
                    let key = (
                        batch.namespace.clone(),
                        e.event_id,
                        e.timestamp.timestamp_micros(),
                    );
                    stored.remove(&key)
                })
                .copied()
                .collect()
        })
        .collect()
}

/// One [`IndexRecord`] per configured index backend (not `raw`, already written) and per
/// [`RECORD_EVENTS`] events of each batch's `fresh` events, routed by the backend's key and
/// fair-queued by tenant. The rollup's records carry no attributes: it counts keys, types,
/// sources and actors only.
pub(crate) fn index_records(
    backends: &[Backend],
    batches: &[EventsReceived],
    fresh: &[Vec<&IngestedEvent>],
) -> Vec<Message<IndexRecord>> {
    let mut records = Vec::new();
    for (batch, fresh) in batches.iter().zip(fresh) {
        for chunk in fresh.chunks(RECORD_EVENTS) {
            for backend in backends.iter().filter(|b| **b != Backend::Raw) {
                let events = chunk
                    .iter()
                    .map(|e| match backend {
                        Backend::Rollup => IngestedEvent {
                            attributes: serde_json::Map::new(),
                            ..(*e).clone()
                        },
                        _ => (*e).clone(),
                    })
                    .collect();
                let record = IndexRecord {
                    namespace: batch.namespace.clone(),
                    request_id: batch.request_id.clone(),
                    events,
                };
                records.push(
                    Message::new(record)
                        .routing_key(backend.routing_key())
                        .fairness_key(batch.namespace.clone()),
                );
            }
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u128, ts: &str) -> IngestedEvent {
        IngestedEvent {
            event_id: Uuid::from_u128(id),
            event_type: "click".into(),
            actor_id: "u1".into(),
            source: "web".into(),
            timestamp: ts.parse().unwrap(),
            attributes: serde_json::json!({"page": "/a"})
                .as_object()
                .cloned()
                .unwrap(),
        }
    }

    #[test]
    fn only_keys_the_insert_returned_are_fresh_each_once() {
        let a = event(1, "2026-11-24T10:00:00.000001Z");
        let b = event(2, "2026-11-24T10:00:00Z");
        // the same key as `a` down to the microsecond: stored once, so fresh once
        let a_again = event(1, "2026-11-24T10:00:00.0000011Z");
        let batch = |events: Vec<IngestedEvent>| EventsReceived {
            namespace: "ns".into(),
            request_id: "r".into(),
            events,
        };
        let batches = [
            batch(vec![a.clone(), b.clone()]),
            batch(vec![a_again.clone()]),
        ];
        let events = vec![vec![&a, &b], vec![&a_again]];
        let key = ("ns".to_owned(), a.event_id, a.timestamp.timestamp_micros());
        let fresh = newly_stored(&batches, &events, [key]);
        assert_eq!(fresh, vec![vec![&a], vec![]]);
        let reports = reports(&batches, &fresh);
        assert_eq!(
            reports[0],
            AcceptReport {
                stored: 1,
                duplicates: 1
            }
        );
        assert_eq!(
            reports[1],
            AcceptReport {
                stored: 0,
                duplicates: 1
            }
        );
    }

    #[test]
    fn records_go_to_every_index_backend_but_raw_and_the_rollup_gets_no_attributes() {
        let batch = EventsReceived {
            namespace: "ns".into(),
            request_id: "r".into(),
            events: (0..2_500)
                .map(|i| event(i, "2026-11-24T10:00:00Z"))
                .collect(),
        };
        let batches = [batch];
        let fresh = distinct(&batches);
        let records: Vec<_> = index_records(&Backend::ALL, &batches, &fresh)
            .into_iter()
            .map(|m| m.into_new_event().unwrap())
            .collect();
        assert_eq!(records.len(), 9, "3 chunks of at most 1,000 × 3 backends");
        let mut events = 0;
        for r in &records {
            let record: IndexRecord = serde_json::from_str(&r.payload).unwrap();
            events += record.events.len();
            let bare = record.events.iter().all(|e| e.attributes.is_empty());
            assert_eq!(bare, r.routing_key.as_deref() == Some("rollup"));
        }
        assert_eq!(events, 3 * 2_500);
    }
}
