//! What both backends' inserts share: the rows an insert returns, and the publish report
//! and due queues made of them.

use std::collections::{BTreeSet, HashSet};

use super::{queue, PublishReport};
use crate::event::{EventId, Published, Queue};

/// A row either backend's `insert.sql` returns, one per stored event.
#[derive(sqlx::FromRow)]
pub(crate) struct InsertedRow {
    id: i64,
    idempotency_key: Option<String>,
    event_type: String,
    routing_key: String,
    /// Whether the event is due at once (it has no delay).
    due: bool,
}

/// The report of one insert, in input order, and the distinct queues that got a due event,
/// from the `rows` it returned; `keys` are the inputs' idempotency keys.
pub(crate) fn report_and_due<'k>(
    keys: impl IntoIterator<Item = Option<&'k str>>,
    rows: &[InsertedRow],
) -> (PublishReport, Vec<Queue>) {
    let due: BTreeSet<(&str, &str)> = rows
        .iter()
        .filter(|row| row.due)
        .map(|row| (row.event_type.as_str(), row.routing_key.as_str()))
        .collect();
    let due = due
        .into_iter()
        .map(|(t, k)| queue(t.to_owned(), k.to_owned()))
        .collect();
    let stored_keys: HashSet<&str> = rows
        .iter()
        .filter_map(|row| row.idempotency_key.as_deref())
        .collect();
    let ids = rows.iter().map(|row| row.id).collect();
    (report_in_input_order(keys, &stored_keys, ids), due)
}

/// The report of one insert in input order: `keys` are the inputs' idempotency keys,
/// `stored_keys` the keys of the rows it stored, `ids` the ids it assigned, which (sorted)
/// follow the order of the inserted inputs. The first input with a stored key got in; later
/// ones with that key, and inputs whose key was already taken, are duplicates.
fn report_in_input_order<'k>(
    keys: impl IntoIterator<Item = Option<&'k str>>,
    stored_keys: &HashSet<&str>,
    mut ids: Vec<i64>,
) -> PublishReport {
    ids.sort_unstable();
    let mut ids = ids.into_iter();
    let mut seen_keys = HashSet::new();
    let results = keys
        .into_iter()
        .map(|key| {
            let stored = match key {
                None => true,
                Some(k) => stored_keys.contains(k) && seen_keys.insert(k),
            };
            match (stored, stored.then(|| ids.next()).flatten()) {
                (true, Some(id)) => Published::Inserted(EventId(id)),
                _ => Published::Duplicate,
            }
        })
        .collect();
    PublishReport { results }
}
