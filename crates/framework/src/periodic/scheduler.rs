//! The scheduler task of one [`Periodic`] in one pool: sleep until the next tick, publish it
//! through [`Store::publish_tick`], apply the [`MissedTicks`] policy at start and when it
//! fell behind. It stops when the pool starts shutting down, and never fails: a database
//! error is logged and the next tick is tried.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::{MissedTicks, Periodic, Schedule};
use crate::hooks::{HookEvent, Hooks, PublishSource};
use crate::store::Store;

/// Run `periodic`'s schedule on `store` until `stop` is cancelled.
pub(crate) async fn run<S: Store>(
    store: S,
    periodic: Periodic,
    hooks: Arc<Hooks>,
    stop: CancellationToken,
) {
    let Ok(schedule) = &periodic.schedule else {
        // refused by `build()`
        return;
    };
    let name = periodic.name.as_str();
    if periodic.missed == MissedTicks::RunLatest {
        catch_up(&store, &periodic, schedule, &hooks).await;
    }
    let mut after = Utc::now();
    loop {
        let Some(tick) = schedule.next(after) else {
            tracing::info!(periodic = name, "the schedule has no further ticks");
            return;
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = until(tick) => {}
        }
        publish(&store, &periodic, tick, &hooks).await;
        after = tick;
        let now = Utc::now();
        if schedule.next(tick).is_some_and(|next| next <= now) {
            // ticks passed while this one was published (a slow database, a suspended host)
            after = now;
            if periodic.missed == MissedTicks::RunLatest {
                if let Some(latest) = schedule.latest(now).filter(|l| *l > tick) {
                    publish(&store, &periodic, latest, &hooks).await;
                }
            }
        }
    }
}

/// At start: one event for the latest scheduled tick if the recorded one is older.
async fn catch_up<S: Store>(store: &S, periodic: &Periodic, schedule: &Schedule, hooks: &Hooks) {
    let Some(latest) = schedule.latest(Utc::now()) else {
        return;
    };
    match store.last_tick(&periodic.name).await {
        Ok(Some(last)) if last < latest => {
            tracing::info!(periodic = periodic.name, last = %last, tick = %latest, "catching up on the latest missed tick");
            publish(store, periodic, latest, hooks).await;
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(periodic = periodic.name, error.message = %e, "reading the last tick failed; not catching up")
        }
    }
}

/// Sleep until the wall clock reaches `tick` (the timer runs on the monotonic clock, which
/// may drift from the wall clock: wake up and check again).
async fn until(tick: DateTime<Utc>) {
    while let Ok(wait) = (tick - Utc::now()).to_std() {
        if wait.is_zero() {
            return;
        }
        tokio::time::sleep(wait).await;
    }
}

/// Publish `tick`'s event unless another process already did, and tell the hooks.
async fn publish<S: Store>(store: &S, periodic: &Periodic, tick: DateTime<Utc>, hooks: &Hooks) {
    let name = periodic.name.as_str();
    let event = match (periodic.factory)(tick) {
        Ok(event) => event,
        Err(e) => {
            tracing::warn!(periodic = name, tick = %tick, error.message = %e, "the periodic event's payload is invalid; tick skipped");
            return;
        }
    };
    let copy = hooks.active().then(|| event.clone());
    match store.publish_tick(name, tick, event).await {
        Ok(Some(published)) => {
            tracing::debug!(periodic = name, tick = %tick, ?published, "published the tick's event");
            if let Some(event) = copy {
                hooks.fire(|| HookEvent::Published {
                    source: PublishSource::Periodic {
                        name: name.to_owned(),
                        tick,
                        published,
                    },
                    events: Arc::new(vec![event]),
                });
            }
        }
        Ok(None) => tracing::trace!(periodic = name, tick = %tick, "tick already published"),
        Err(e) => {
            tracing::warn!(periodic = name, tick = %tick, error.message = %e, "publishing the tick's event failed")
        }
    }
}
