//! What both backends' operator controls share: the row of the stats query (the same
//! columns and types on Postgres and SQLite) and its [`QueueStats`]. The dead-letter rows
//! stay one per backend, as their types differ (`jsonb` and `timestamptz` against JSON text
//! and integer milliseconds).

use super::{queue, QueueStats};

/// A row of either backend's `stats.sql`.
#[derive(sqlx::FromRow)]
pub(crate) struct StatsRow {
    event_type: String,
    routing_key: String,
    pending: i64,
    due: i64,
    in_flight: i64,
    retrying: i64,
    dead: i64,
    delivered: i64,
    oldest_due_age_secs: f64,
    paused: bool,
}

impl From<StatsRow> for QueueStats {
    fn from(r: StatsRow) -> Self {
        QueueStats {
            queue: queue(r.event_type, r.routing_key),
            pending: r.pending,
            due: r.due,
            in_flight: r.in_flight,
            retrying: r.retrying,
            dead: r.dead,
            delivered: r.delivered,
            oldest_due_age_secs: r.oldest_due_age_secs,
            paused: r.paused,
        }
    }
}
