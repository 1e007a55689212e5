//! Operator commands over a [`Store`]: stats, pause/resume, dead letters.

use anyhow::Context as _;
use conveyor::{EventId, Queue, Store};

use crate::config::{OptionalQueueArgs, QueueArgs};

pub(crate) async fn pause<S: Store>(store: &S, q: QueueArgs) -> anyhow::Result<()> {
    store.pause(&queue(q)).await.context("pausing")?;
    println!("paused");
    Ok(())
}

pub(crate) async fn resume<S: Store>(store: &S, q: QueueArgs) -> anyhow::Result<()> {
    store.resume(&queue(q)).await.context("resuming")?;
    println!("resumed");
    Ok(())
}

pub(crate) async fn dead_letters<S: Store>(
    store: &S,
    q: OptionalQueueArgs,
    after: Option<i64>,
    limit: u32,
) -> anyhow::Result<()> {
    let q = optional_queue(q);
    let dead = store
        .dead_letters(q.as_ref(), after.map(EventId), limit as usize)
        .await
        .context("listing dead letters")?;
    for d in &dead {
        println!("{}", serde_json::to_string(d)?);
    }
    if dead.len() == limit as usize {
        if let Some(last) = dead.last() {
            eprintln!("more may follow: --after {}", last.id);
        }
    }
    Ok(())
}

pub(crate) async fn replay<S: Store>(store: &S, ids: Vec<i64>) -> anyhow::Result<()> {
    let ids: Vec<EventId> = ids.into_iter().map(EventId).collect();
    let n = store.replay(&ids).await.context("replaying")?;
    println!("replayed {n} of {} dead letters", ids.len());
    Ok(())
}

pub(crate) async fn purge<S: Store>(
    store: &S,
    q: OptionalQueueArgs,
    all: bool,
) -> anyhow::Result<()> {
    let q = optional_queue(q);
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
        "{:<32} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>6}",
        "queue",
        "pending",
        "due",
        "in_flight",
        "retrying",
        "dead",
        "delivered",
        "oldest_s",
        "paused"
    );
    for s in &stats {
        println!(
            "{:<32} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10.1} {:>6}",
            s.queue.to_string(),
            s.pending,
            s.due,
            s.in_flight,
            s.retrying,
            s.dead,
            s.delivered,
            s.oldest_due_age_secs,
            s.paused
        );
    }
    Ok(())
}

fn queue(q: QueueArgs) -> Queue {
    Queue::new(q.event_type, q.routing_key.as_deref())
}

fn optional_queue(q: OptionalQueueArgs) -> Option<Queue> {
    q.event_type
        .map(|t| Queue::new(t, q.routing_key.as_deref()))
}
