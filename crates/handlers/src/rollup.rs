//! [`RollupHandler`]: IndexRecord[rollup] → the daily rollups; [`rebuild_rollups`] repairs them.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use conveyor::{Batch, Context, EventHandler, HandlerError};
use uuid::Uuid;

use crate::events::IndexRecord;
use crate::policy::RetryPolicy;
use crate::raw_store::batch_events;

const COUNT_BATCH: &str = include_str!("sql/rollup_count_batch.sql");
const LOCK: &str = include_str!("sql/rollup_lock.sql");
const DELETE_COUNTS: &str = include_str!("sql/rollup_delete_counts.sql");
const DELETE_ACTORS: &str = include_str!("sql/rollup_delete_actors.sql");
const DELETE_SEEN: &str = include_str!("sql/rollup_delete_seen.sql");
const REBUILD_SEEN: &str = include_str!("sql/rollup_rebuild_seen.sql");
const REBUILD_COUNTS: &str = include_str!("sql/rollup_rebuild_counts.sql");
const REBUILD_ACTORS: &str = include_str!("sql/rollup_rebuild_actors.sql");

/// Counts the events of `rollup` [`IndexRecord`]s in `analytics_daily_event_counts`
/// (per namespace, UTC day, event type and source) and `analytics_daily_actors` (distinct
/// actors per namespace and day).
///
/// - **Consumes** [`IndexRecord`] with routing key `rollup`, up to 50 records per batch
///   (those [`PipelineStore::accept`](crate::PipelineStore::accept) publishes carry no
///   attributes, which the rollup does not read);
///   registered with concurrency 1 (several batches at once stay exact, see below).
/// - **Emits** nothing.
/// - **Exact**: at quiescence the counts equal
///   `select namespace, (ts at time zone 'UTC')::date, event_type, source, count(*) from events_raw group by 1, 2, 3, 4`,
///   whatever duplicates, retries and crashes happened. One statement per batch, in the
///   transaction that completes it, inserts the batch's keys into `analytics_rollup_seen`
///   and counts only the keys it newly inserted; a batch that rolls back leaves neither
///   seen keys nor counts behind, and one reprocessed after committing counts nothing.
///   Concurrent batches insert in key order, so they neither double count (the second
///   waits on the first's uncommitted key) nor deadlock.
///
/// Events sharing a key `(namespace, event_id, timestamp)` but differing in
/// content are counted as whichever copy arrived first, which may not be the copy the raw
/// store kept; [`rebuild_rollups`] realigns such days.
#[derive(Debug, Clone)]
pub struct RollupHandler {
    policy: RetryPolicy,
}

impl RollupHandler {
    /// A handler retrying with `policy`.
    pub fn new(policy: RetryPolicy) -> Self {
        Self { policy }
    }
}

#[async_trait]
impl EventHandler for RollupHandler {
    type Event = IndexRecord;
    const ROUTING_KEY: Option<&'static str> = Some("rollup");
    const BATCH_SIZE: usize = 50;

    async fn handle(
        &self,
        batch: Batch<IndexRecord>,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        let events = batch_events(&batch);
        let n = events.len();
        let (mut namespaces, mut ids, mut timestamps) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut types, mut actors, mut sources) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (namespace, event) in events {
            namespaces.push(namespace);
            ids.push(event.event_id);
            timestamps.push(event.timestamp);
            types.push(event.event_type.as_str());
            actors.push(event.actor_id.as_str());
            sources.push(event.source.as_str());
        }
        let counted: i64 = sqlx::query_scalar(COUNT_BATCH)
            .bind(namespaces)
            .bind::<Vec<Uuid>>(ids)
            .bind::<Vec<DateTime<Utc>>>(timestamps)
            .bind(types)
            .bind(actors)
            .bind(sources)
            .fetch_one(ctx.db().await?)
            .await?;
        tracing::debug!(
            records = batch.len(),
            events = n,
            counted,
            "rollups updated"
        );
        Ok(())
    }

    fn backoff(&self, attempt: u32) -> std::time::Duration {
        self.policy.backoff(attempt)
    }

    fn max_retries(&self) -> u32 {
        self.policy.max_retries
    }
}

/// What [`rebuild_rollups`] recomputed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RebuildReport {
    /// Days recomputed.
    pub days: i64,
    /// Events counted from `events_raw`.
    pub events: i64,
}

/// Recompute the rollups of days `from..=to` (UTC) from `events_raw`.
///
/// In one transaction that locks the rollup tables against the [`RollupHandler`] (reads go
/// on): forget the days' counts, actors and seen keys, then count every event `events_raw`
/// holds in those days and mark it seen. Use it to repair counts, or after changing what
/// the raw store keeps.
///
/// **Known edge**: a rebuild counts only what `events_raw` holds at that moment. An event
/// the rollup already counted but the raw store has not yet stored (its `raw` record still
/// queued) is forgotten and never counted again; an event stored but not yet counted is
/// counted now and skipped by the handler later. Rebuild when the `raw` queue is drained,
/// and not for days past the partition retention, whose raw events are gone.
///
/// # Errors
/// [`crate::Error::InvalidQuery`] if `from > to`; database errors (nothing is changed then).
pub async fn rebuild_rollups(
    pool: &sqlx::PgPool,
    from: NaiveDate,
    to: NaiveDate,
) -> crate::Result<RebuildReport> {
    let (start, end) = rebuild_window(from, to)?;
    let mut tx = pool.begin().await?;
    sqlx::query(LOCK).execute(&mut *tx).await?;
    for statement in [DELETE_COUNTS, DELETE_ACTORS] {
        sqlx::query(statement)
            .bind(from)
            .bind(to)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(DELETE_SEEN)
        .bind(start)
        .bind(end)
        .execute(&mut *tx)
        .await?;
    let events = sqlx::query(REBUILD_SEEN)
        .bind(start)
        .bind(end)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    for statement in [REBUILD_COUNTS, REBUILD_ACTORS] {
        sqlx::query(statement)
            .bind(start)
            .bind(end)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(RebuildReport::rebuilt(from, to, events))
}

/// The instants `[start, end)` of days `from..=to` (UTC midnights of `from` and of the day
/// after `to`), the window every backend's rebuild recomputes.
///
/// # Errors
/// [`crate::Error::InvalidQuery`] if `from > to` or `to` is the last representable day.
pub(crate) fn rebuild_window(
    from: NaiveDate,
    to: NaiveDate,
) -> crate::Result<(DateTime<Utc>, DateTime<Utc>)> {
    if from > to {
        return Err(crate::Error::InvalidQuery(format!(
            "from {from} is after to {to}"
        )));
    }
    let start = from.and_time(chrono::NaiveTime::MIN).and_utc();
    let end = to
        .succ_opt()
        .ok_or_else(|| crate::Error::InvalidQuery(format!("to {to} is out of range")))?
        .and_time(chrono::NaiveTime::MIN)
        .and_utc();
    Ok((start, end))
}

impl RebuildReport {
    /// The report of a committed rebuild of days `from..=to` that counted `events`, logged.
    pub(crate) fn rebuilt(from: NaiveDate, to: NaiveDate, events: u64) -> Self {
        let report = RebuildReport {
            days: (to - from).num_days() + 1,
            events: i64::try_from(events).unwrap_or(i64::MAX),
        };
        tracing::info!(%from, %to, days = report.days, events = report.events, "rollups rebuilt");
        report
    }
}
