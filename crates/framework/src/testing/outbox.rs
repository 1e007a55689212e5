//! What is waiting in the outbox: [`published`] and [`assert_published`].

use crate::error::Result;
use crate::event::Event;
use crate::sql::{sql, SqlStore};

/// Pending payloads (due or delayed) of one event type in a namespace, oldest first. The
/// same statement on both backends: `cast(... as text)` turns Postgres' `jsonb` into the
/// text SQLite stores.
const PENDING: &str = "select cast(payload as text) from conveyor_events \
                       where namespace = $1 and event_type = $2 and status = 'pending' \
                       order by id";

/// The JSON payloads of the pending events of type `E` (due or delayed, any routing key).
async fn pending_json<E: Event, S: SqlStore>(store: &S) -> Result<Vec<String>> {
    // a pool read: no transaction, and on SQLite no wait for the write lock
    let rows: Vec<(String,)> = store
        .fetch_all(sql(PENDING).bind(store.namespace()).bind(E::NAME))
        .await?;
    Ok(rows.into_iter().map(|(payload,)| payload).collect())
}

/// The pending events of type `E` in the store's namespace (due or delayed, whatever their
/// routing key), oldest first: what was published or emitted and is not handled yet.
///
/// # Errors
/// [`Error::Json`](crate::Error::Json) when a payload does not decode as `E`; database errors.
pub async fn published<E: Event, S: SqlStore>(store: &S) -> Result<Vec<E>> {
    pending_json::<E, S>(store)
        .await?
        .iter()
        .map(|payload| Ok(serde_json::from_str(payload)?))
        .collect()
}

/// Assert that a pending event of type `E` matches `predicate` (see [`published`]); returns
/// the matching ones.
///
/// # Example
/// ```no_run
/// # #[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
/// # struct SendReceipt { #[garde(skip)] order_id: String }
/// # impl conveyor::Event for SendReceipt { const NAME: &'static str = "send_receipt"; }
/// # async fn run(store: conveyor::PgStore) {
/// conveyor::testing::assert_published(&store, |r: &SendReceipt| r.order_id == "o-1").await;
/// # }
/// ```
///
/// # Panics
/// When none matches (listing the pending payloads of `E`), when a payload does not decode
/// as `E`, or when the store cannot be read.
pub async fn assert_published<E: Event, S: SqlStore>(
    store: &S,
    predicate: impl Fn(&E) -> bool,
) -> Vec<E> {
    let pending = pending_json::<E, S>(store)
        .await
        .unwrap_or_else(|e| panic!("assert_published: cannot read the outbox: {e}"));
    let matching: Vec<E> = pending
        .iter()
        .map(|payload| {
            serde_json::from_str(payload).unwrap_or_else(|e| {
                panic!(
                    "assert_published: pending {:?} event does not decode as {}: {e}; payload: {payload}",
                    E::NAME,
                    std::any::type_name::<E>()
                )
            })
        })
        .filter(|event| predicate(event))
        .collect();
    assert!(
        !matching.is_empty(),
        "assert_published: no pending {:?} event matches; pending: [{}]",
        E::NAME,
        pending.join(", ")
    );
    matching
}
