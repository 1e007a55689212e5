//! What both backends' inserts share: the rows an insert yields, and the publish report
//! and due queues made of them.

use std::collections::BTreeSet;

use super::{queue, PublishReport};
use crate::event::{EventId, Published, Queue};

/// A row either backend's insert yields: one `first` row per input, in input order, and
/// one more per later copy stored for another subscription (after its input's first row).
#[derive(sqlx::FromRow)]
pub(crate) struct InsertedRow {
    /// The new event's id, or for a duplicate the id of the event that holds the key.
    pub(crate) id: i64,
    /// Whether this input was stored (false: a duplicate).
    pub(crate) inserted: bool,
    pub(crate) event_type: String,
    pub(crate) routing_key: String,
    /// Whether the stored event is due at once (it has no delay).
    pub(crate) due: bool,
    /// Whether the row stands for its input in the report (its first copy, or the duplicate).
    pub(crate) first: bool,
}

/// The report of one insert, in input order, and the distinct queues that got a due event,
/// from the `rows` it yielded (see [`InsertedRow`]).
pub(crate) fn report_and_due(rows: &[InsertedRow]) -> (PublishReport, Vec<Queue>) {
    let due: BTreeSet<(&str, &str)> = rows
        .iter()
        .filter(|row| row.inserted && row.due)
        .map(|row| (row.event_type.as_str(), row.routing_key.as_str()))
        .collect();
    let due = due
        .into_iter()
        .map(|(t, k)| queue(t.to_owned(), k.to_owned()))
        .collect();
    let results = rows
        .iter()
        .filter(|row| row.first)
        .map(|row| match row.inserted {
            true => Published::Inserted(EventId(row.id)),
            false => Published::Duplicate(EventId(row.id)),
        })
        .collect();
    (PublishReport { results }, due)
}
