//! Operator commands over a [`Store`]: stats, pause/resume, dead letters, cancel.

use std::collections::BTreeSet;

use anyhow::Context as _;
use conveyor::{CancelOutcome, DeadLetter, EventId, Queue, Store};

use crate::config::{OptionalQueueArgs, QueueArgs};
use crate::lookup::cut;

/// Bad input to a command (an unknown queue): `conveyor` exits 2, as for a bad flag.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub String);

/// Dead letters read per page by `replay --all`.
const REPLAY_PAGE: usize = 1_000;

/// `pause` (`paused` true) or `resume` a queue, refusing an unknown one unless `force`.
pub(crate) async fn set_paused<S: Store>(
    store: &S,
    q: QueueArgs,
    force: bool,
    paused: bool,
) -> anyhow::Result<()> {
    let queue = q.queue();
    let verb = if paused { "pause" } else { "resume" };
    if !force {
        known(store, &queue, verb).await?;
    }
    if paused {
        store.pause(&queue).await
    } else {
        store.resume(&queue).await
    }
    .with_context(|| format!("{verb} {queue}"))?;
    println!("{verb}d {queue}");
    Ok(())
}

/// A [`UsageError`] listing the known queues unless `queue` has events or a pause record in
/// this namespace: a typo would otherwise pause a queue nobody consumes.
async fn known<S: Store>(store: &S, queue: &Queue, verb: &str) -> anyhow::Result<()> {
    let stats = store.stats().await.context("reading the known queues")?;
    if stats.iter().any(|s| &s.queue == queue) {
        return Ok(());
    }
    let names: BTreeSet<String> = stats.iter().map(|s| s.queue.to_string()).collect();
    let list = if names.is_empty() {
        "none".to_owned()
    } else {
        names.into_iter().collect::<Vec<_>>().join(", ")
    };
    Err(UsageError(format!(
        "{verb}: unknown queue {queue} in namespace {}; known queues: {list} \
         (give --force to {verb} it anyway)",
        store.namespace()
    ))
    .into())
}

pub(crate) async fn dead_letters<S: Store>(
    store: &S,
    q: OptionalQueueArgs,
    after: Option<i64>,
    limit: u32,
    json: bool,
) -> anyhow::Result<()> {
    let q = q.queue();
    let dead = store
        .dead_letters(q.as_ref(), after.map(EventId), limit as usize)
        .await
        .context("listing dead letters")?;
    if json {
        for d in &dead {
            println!("{}", serde_json::to_string(d)?);
        }
    } else {
        print_dead_table(&dead);
    }
    if dead.len() == limit as usize {
        if let Some(last) = dead.last() {
            eprintln!("more may follow: --after {}", last.id);
        }
    }
    Ok(())
}

fn print_dead_table(dead: &[DeadLetter]) {
    println!(
        "{:>12} {:<32} {:>8} {:>8} {:<20} error",
        "id", "queue", "attempts", "failures", "died_at"
    );
    for d in dead {
        println!(
            "{:>12} {:<32} {:>8} {:>8} {:<20} {}",
            d.id.to_string(),
            d.queue.to_string(),
            d.attempts,
            d.errors.len(),
            d.died_at.format("%Y-%m-%d %H:%M:%S"),
            cut(d.last_error.as_deref().unwrap_or("")),
        );
    }
}

/// Replay every dead letter of `queue` (or of every queue), page by page; returns how many.
pub(crate) async fn replay_all<S: Store>(
    store: &S,
    queue: Option<&Queue>,
) -> conveyor::Result<u64> {
    let mut replayed = 0;
    loop {
        // replayed rows leave the dead set, so each page starts from the oldest again
        let page = store.dead_letters(queue, None, REPLAY_PAGE).await?;
        if page.is_empty() {
            return Ok(replayed);
        }
        let page: Vec<EventId> = page.iter().map(|d| d.id).collect();
        let n = store.replay(&page).await?;
        replayed += n;
        if n == 0 {
            return Ok(replayed);
        }
    }
}

/// Replay `ids` one at a time (so each one that is not a dead letter is named), or with
/// `all` every dead letter of the queue filter, page by page.
pub(crate) async fn replay<S: Store>(
    store: &S,
    ids: Vec<i64>,
    q: OptionalQueueArgs,
    all: bool,
) -> anyhow::Result<()> {
    if all {
        let q = q.queue();
        let replayed = replay_all(store, q.as_ref())
            .await
            .context("replaying dead letters")?;
        println!("replayed {replayed} dead letters");
        return Ok(());
    }
    if q.event_type.is_some() {
        return Err(UsageError("replay: --event-type (--queue) needs --all".into()).into());
    }
    let mut missing = Vec::new();
    for &id in &ids {
        if store
            .replay(&[EventId(id)])
            .await
            .with_context(|| format!("replaying {id}"))?
            == 0
        {
            missing.push(id.to_string());
        }
    }
    println!(
        "replayed {} of {} dead letters",
        ids.len() - missing.len(),
        ids.len()
    );
    if !missing.is_empty() {
        anyhow::bail!(
            "not a dead letter or cancelled event in namespace {}: {}",
            store.namespace(),
            missing.join(", ")
        );
    }
    Ok(())
}

/// Cancel `ids`, or with `key` the event published with that idempotency key; one line per
/// id, and an error (exit 1) naming every id not found or already finished.
pub(crate) async fn cancel<S: Store>(
    store: &S,
    ids: Vec<i64>,
    key: Option<String>,
    reason: &str,
) -> anyhow::Result<()> {
    let report = match &key {
        Some(key) => store
            .cancel_by_key(key, reason)
            .await
            .with_context(|| format!("cancelling the event of key {key:?}"))?,
        None => {
            let ids: Vec<EventId> = ids.into_iter().map(EventId).collect();
            store.cancel(&ids, reason).await.context("cancelling")?
        }
    };
    if let (Some(key), true) = (&key, report.results.is_empty()) {
        anyhow::bail!(
            "no event holds idempotency key {key:?} in namespace {}",
            store.namespace()
        );
    }
    for (id, outcome) in &report.results {
        match outcome {
            CancelOutcome::Cancelled => println!("{id} cancelled"),
            CancelOutcome::Requested => println!(
                "{id} running: cancel requested (cancelled when its batch completes, \
                 unless the handler delivers it)"
            ),
            CancelOutcome::Unchanged(status) => println!("{id} not cancelled: already {status}"),
            CancelOutcome::NotFound => println!("{id} not found"),
        }
    }
    let refused: Vec<String> = report.refused().map(|(id, _)| id.to_string()).collect();
    if !refused.is_empty() {
        anyhow::bail!(
            "not found or already finished in namespace {}: {}",
            store.namespace(),
            refused.join(", ")
        );
    }
    Ok(())
}

pub(crate) async fn purge<S: Store>(
    store: &S,
    q: OptionalQueueArgs,
    all: bool,
) -> anyhow::Result<()> {
    let q = q.queue();
    if q.is_none() && !all {
        anyhow::bail!("purge: give --event-type to purge one queue, or --all for every queue");
    }
    let n = store.purge_dead(q.as_ref()).await.context("purging")?;
    println!("purged {n} dead letters");
    Ok(())
}

pub(crate) async fn stats<S: Store>(store: &S, json: bool) -> anyhow::Result<()> {
    let stats = store.stats().await.context("reading stats")?;
    if json {
        for s in &stats {
            println!("{}", serde_json::to_string(s)?);
        }
        return Ok(());
    }
    println!(
        "{:<32} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>6} {:>10} {:>10} {:>10} {:>10}",
        "queue",
        "pending",
        "due",
        "in_flight",
        "retrying",
        "dead",
        "delivered",
        "cancelled",
        "oldest_s",
        "paused",
        "enqueued",
        "completed",
        "failed",
        "died"
    );
    for s in &stats {
        println!(
            "{:<32} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10.1} {:>6} {:>10} {:>10} {:>10} {:>10}",
            s.queue.to_string(),
            s.pending,
            s.due,
            s.in_flight,
            s.retrying,
            s.dead,
            s.delivered,
            s.cancelled,
            s.oldest_due_age_secs,
            s.paused,
            s.enqueued_total,
            s.completed_total,
            s.failed_total,
            s.dead_total
        );
    }
    Ok(())
}
