//! Inserting events: the one write path for publish, publish-in-transaction and emitted events.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use sqlx::SqliteConnection;

use super::millis;
use crate::error::Result;
use crate::event::{queue_key, NewEvent, Queue};
use crate::store::insert::{report_and_due, InsertedRow};
use crate::store::PublishReport;

const INSERT: &str = include_str!("sql/insert.sql");
const HELD_KEYS: &str = include_str!("sql/held_keys.sql");
const HOLD_KEYS: &str = include_str!("sql/hold_keys.sql");
const SUBSCRIBERS: &str = include_str!("sql/subscribers.sql");

#[derive(serde::Serialize)]
struct Row<'a> {
    event_type: &'a str,
    /// The queue key: the routing key, and the subscription's name for a named one.
    routing_key: Cow<'a, str>,
    payload: &'a str,
    delay_ms: i64,
    fairness_key: &'a str,
    idempotency_key: Option<&'a str>,
    causation_id: Option<i64>,
    correlation_id: Option<String>,
    priority: i16,
    ordering_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<&'a str>,
}

/// What becomes of one input.
enum Plan {
    /// Stored as rows `n..n + copies` of the insert, one per subscription.
    Insert(usize, usize),
    /// A duplicate of a key held by this event.
    Held(i64),
    /// A duplicate of the `n`th row of this insert (the same key earlier in the batch).
    SameAs(usize),
}

/// Insert `events` at `now` (ms) inside the caller's write transaction, holding their
/// idempotency keys for `window`; report, in input order, which were stored, and the queues
/// that got a due event (to wake after the commit).
///
/// Three statements, atomic in the transaction, which also holds the database's write lock:
/// look up which keys are held, insert the rest, hold their keys.
pub(super) async fn insert(
    conn: &mut SqliteConnection,
    namespace: &str,
    window: Duration,
    events: &[NewEvent],
    now: i64,
) -> Result<(PublishReport, Vec<Queue>)> {
    if events.is_empty() {
        return Ok((PublishReport::default(), Vec::new()));
    }
    let keys: Vec<&str> = events
        .iter()
        .filter_map(|e| e.idempotency_key.as_deref())
        .collect();
    let held: HashMap<String, i64> = if keys.is_empty() {
        HashMap::new()
    } else {
        sqlx::query_as::<_, (String, i64)>(HELD_KEYS)
            .bind(namespace)
            .bind(serde_json::to_string(&keys)?)
            .bind(now)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect()
    };
    let subscribers = subscribers(conn, namespace, events).await?;
    // the first input of each free key is stored; later ones are its duplicates
    let mut first: HashMap<&str, usize> = HashMap::new();
    let mut rows: Vec<Row<'_>> = Vec::with_capacity(events.len());
    let mut plan = Vec::with_capacity(events.len());
    for e in events {
        let key = e.idempotency_key.as_deref();
        let seen = key.map(|k| (k, held.get(k).copied(), first.get(k).copied()));
        let step = match seen {
            Some((_, Some(id), _)) => Plan::Held(id),
            Some((_, None, Some(n))) => Plan::SameAs(n),
            Some((k, None, None)) => {
                first.insert(k, rows.len());
                Plan::Insert(rows.len(), 0)
            }
            None => Plan::Insert(rows.len(), 0),
        };
        let step = match step {
            Plan::Insert(n, _) => {
                let queue = (
                    e.event_type.as_str(),
                    e.routing_key.as_deref().unwrap_or(""),
                );
                let subs = subscribers.get(&queue).map_or(&[][..], Vec::as_slice);
                for sub in subs
                    .iter()
                    .map(String::as_str)
                    .chain(subs.is_empty().then_some(""))
                {
                    rows.push(Row::of(e, queue_key(queue.1, sub)));
                }
                Plan::Insert(n, rows.len() - n)
            }
            other => other,
        };
        plan.push(step);
    }
    // the id of row n is `first_id + n`: one statement under the write lock, `autoincrement`,
    // gives consecutive ids in input order; row n is due when its delay is not positive
    let first_id = if rows.is_empty() {
        0
    } else {
        let done = sqlx::query(INSERT)
            .bind(namespace)
            .bind(serde_json::to_string(&rows)?)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        let n = i64::try_from(rows.len()).unwrap_or(i64::MAX);
        if done.rows_affected() != rows.len() as u64 {
            return Err(sqlx::Error::Protocol(format!(
                "inserted {} of {n} rows",
                done.rows_affected()
            ))
            .into());
        }
        done.last_insert_rowid() - n + 1
    };
    let id_of = |n: usize| first_id + n as i64;
    let due_of = |n: usize| rows[n].delay_ms <= 0;
    if !first.is_empty() {
        let hold: Vec<(&str, i64)> = first.iter().map(|(k, &n)| (*k, id_of(n))).collect();
        sqlx::query(HOLD_KEYS)
            .bind(namespace)
            .bind(serde_json::to_string(&hold)?)
            .bind(now.saturating_add(millis(window)))
            .execute(&mut *conn)
            .await?;
    }
    let mut out: Vec<InsertedRow> = Vec::with_capacity(rows.len());
    for (plan, e) in plan.iter().zip(events) {
        let (id, inserted, due) = match *plan {
            Plan::Insert(n, _) => (id_of(n), true, due_of(n)),
            Plan::SameAs(n) => (id_of(n), false, false),
            Plan::Held(id) => (id, false, false),
        };
        out.push(InsertedRow {
            id,
            inserted,
            event_type: e.event_type.clone(),
            routing_key: e.routing_key.clone().unwrap_or_default(),
            due,
            first: true,
        });
        if let Plan::Insert(n, copies) = *plan {
            for (n, row) in rows
                .iter()
                .enumerate()
                .skip(n + 1)
                .take(copies.saturating_sub(1))
            {
                out.push(InsertedRow {
                    id: id_of(n),
                    inserted: true,
                    event_type: e.event_type.clone(),
                    routing_key: row.routing_key.clone().into_owned(),
                    due: row.delay_ms <= 0,
                    first: false,
                });
            }
        }
    }
    Ok(report_and_due(&out))
}

/// The subscriptions recorded for each (event type, routing key) of `events`, by name.
async fn subscribers<'e>(
    conn: &mut SqliteConnection,
    namespace: &str,
    events: &'e [NewEvent],
) -> Result<HashMap<(&'e str, &'e str), Vec<String>>> {
    let queues: BTreeSet<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e.event_type.as_str(),
                e.routing_key.as_deref().unwrap_or(""),
            )
        })
        .collect();
    let found: Vec<(String, String, String)> = sqlx::query_as(SUBSCRIBERS)
        .bind(namespace)
        .bind(serde_json::to_string(&queues)?)
        .fetch_all(&mut *conn)
        .await?;
    let mut subscribers: HashMap<(&str, &str), Vec<String>> = HashMap::new();
    for (event_type, routing_key, subscription) in found {
        let queue = queues
            .iter()
            .find(|(t, k)| *t == event_type && *k == routing_key);
        if let Some(&queue) = queue {
            subscribers.entry(queue).or_default().push(subscription);
        }
    }
    Ok(subscribers)
}

impl<'a> Row<'a> {
    /// The row of `e`'s copy in the queue `queue_key`.
    fn of(e: &'a NewEvent, queue_key: Cow<'a, str>) -> Self {
        Row {
            event_type: &e.event_type,
            routing_key: queue_key,
            payload: &e.payload,
            delay_ms: millis(e.delay),
            fairness_key: e.fairness_key.as_deref().unwrap_or_default(),
            idempotency_key: e.idempotency_key.as_deref(),
            causation_id: e.causation_id.map(|id| id.0),
            correlation_id: e.correlation_id.map(|id| id.to_string()),
            priority: e.priority,
            ordering_key: e.ordering_key.as_deref(),
            traceparent: e.traceparent.as_deref(),
        }
    }
}
