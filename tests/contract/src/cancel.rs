//! Cancelling events (by id, by idempotency key, from a handler, while running) and the
//! error history of failed attempts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use conveyor::{
    Batch, CancelOutcome, ClaimRequest, Context, EventHandler, EventId, EventStatus, HandlerError,
    Item, Message, Outcome, Queue, Store,
};
use tokio::sync::Semaphore;

use crate::support::{
    claim, complete, eventually, job_queue, jobs, publish_jobs, run_until, spawn_one, stats_of,
    stop, Backend, Followup, Job, PerItem,
};

/// Claim all due jobs for `worker` with `lease`.
async fn claim_for<S: Store>(store: &S, worker: &str, lease: Duration) -> Vec<EventId> {
    let rows = store
        .claim(ClaimRequest {
            queue: &job_queue(),
            worker,
            limit: 10,
            lease,
            fairness_cursor: "",
            priority_aging: Duration::from_secs(60),
        })
        .await
        .expect("claim");
    rows.iter().map(|r| r.id).collect()
}

/// A due, a scheduled and a retrying event are cancelled by id, with the reason; a delivered
/// one and an unknown id are reported; cancelled events are never claimed, are counted, and
/// come back with `replay`.
pub async fn pending_scheduled_and_retrying_events_are_cancelled_by_id<B: Backend>(b: &B) {
    let store = b.store(4).await;
    store
        .publish_batch(vec![Job { n: 2 }, Job { n: 3 }])
        .await
        .unwrap();
    let held = claim_for(&store, "w", Duration::from_secs(30)).await;
    let (retrying, delivered) = (held[0], held[1]);
    let retry = Outcome::Retry {
        delay: Duration::ZERO,
        error: "try again".into(),
    };
    complete(
        &store,
        "w",
        vec![(retrying, retry), (delivered, Outcome::Delivered)],
    )
    .await;
    let due = store.publish(Job { n: 0 }).await.unwrap().id().unwrap();
    let later = Message::new(Job { n: 1 }).delay(Duration::from_secs(3600));
    let scheduled = store.publish(later).await.unwrap().id().unwrap();
    let missing = EventId(i64::MAX);

    let report = store
        .cancel(
            &[due, scheduled, retrying, delivered, missing],
            "not needed",
        )
        .await
        .unwrap();
    assert_eq!(
        report.results,
        [
            (due, CancelOutcome::Cancelled),
            (scheduled, CancelOutcome::Cancelled),
            (retrying, CancelOutcome::Cancelled),
            (delivered, CancelOutcome::Unchanged(EventStatus::Delivered)),
            (missing, CancelOutcome::NotFound),
        ]
    );
    let refused: Vec<EventId> = report.refused().map(|(id, _)| id).collect();
    assert_eq!(refused, [delivered, missing]);
    let s = stats_of(&store, &job_queue()).await;
    assert_eq!(
        (s.cancelled, s.pending, s.retrying, s.delivered),
        (3, 0, 0, 1)
    );
    assert!(
        claim(&store, &job_queue(), "w2", 10).await.is_empty(),
        "cancelled events are never claimed"
    );
    let row = b.row(retrying).await;
    assert_eq!(row.status, "cancelled");
    assert_eq!(row.cancel_reason.as_deref(), Some("not needed"));
    assert_eq!(row.last_error.as_deref(), Some("try again"), "kept");

    let again = store.cancel(&[due], "twice").await.unwrap();
    assert_eq!(
        again.results,
        [(due, CancelOutcome::Unchanged(EventStatus::Cancelled))]
    );
    assert!(store.cancel(&[], "none").await.unwrap().results.is_empty());
    let other = b.store_in(2, "other-tenant").await;
    let elsewhere = other.cancel(&[scheduled], "not mine").await.unwrap();
    assert_eq!(elsewhere.results, [(scheduled, CancelOutcome::NotFound)]);

    assert_eq!(store.replay(&[due]).await.unwrap(), 1, "replayable");
    assert_eq!(claim(&store, &job_queue(), "w3", 10).await[0].id, due);
    assert_eq!(
        b.row(due).await.cancel_reason,
        None,
        "replay clears the reason"
    );
}

/// `cancel_by_key` cancels the event its idempotency key names; a key nobody holds is an
/// empty report, an empty key an error naming it.
pub async fn cancel_by_key_cancels_the_event_holding_the_key<B: Backend>(b: &B) {
    let store = b.store(2).await;
    let keyed = Message::new(Job { n: 1 }).idempotency_key("order-1");
    let id = store.publish(keyed).await.unwrap().id().unwrap();
    store.publish(Job { n: 2 }).await.unwrap();

    let report = store
        .cancel_by_key("order-1", "order withdrawn")
        .await
        .unwrap();
    assert_eq!(report.results, [(id, CancelOutcome::Cancelled)]);
    assert_eq!(
        b.row(id).await.cancel_reason.as_deref(),
        Some("order withdrawn")
    );
    let s = stats_of(&store, &job_queue()).await;
    assert_eq!((s.cancelled, s.pending), (1, 1), "only the keyed event");

    let unknown = store.cancel_by_key("order-2", "nope").await.unwrap();
    assert!(unknown.results.is_empty(), "{unknown:?}");
    let err = store.cancel_by_key("", "nope").await.unwrap_err();
    assert!(
        matches!(err, conveyor::Error::Config(ref m) if m.contains("key")),
        "{err}"
    );
}

/// Handles a batch only once the test lets it: item `n = 0` is delivered, the others retried.
#[derive(Clone)]
struct Gated {
    started: Arc<AtomicUsize>,
    go: Arc<Semaphore>,
}

impl Default for Gated {
    fn default() -> Self {
        Self {
            started: Arc::default(),
            go: Arc::new(Semaphore::new(0)),
        }
    }
}

#[async_trait]
impl<S: Store> EventHandler<S> for Gated {
    type Event = Job;
    const BATCH_SIZE: usize = 2;

    async fn handle(
        &self,
        batch: Batch<Job>,
        ctx: &mut Context<'_, S>,
    ) -> Result<(), HandlerError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        self.go.acquire().await.expect("open").forget();
        for item in &batch {
            if item.payload.n != 0 {
                ctx.retry_after(item.id, Duration::ZERO, "downstream said no");
            }
        }
        Ok(())
    }
}

/// A cancel while the handler runs is only requested: the batch finishes undisturbed, the
/// item it delivered stays delivered and the item it retried becomes cancelled.
pub async fn a_running_event_is_cancelled_unless_its_batch_delivers_it<B: Backend>(b: &B) {
    let store = b.store(6).await;
    let ids = publish_jobs(&store, 2).await;
    let handler = Gated::default();
    let (started, go) = (handler.started.clone(), handler.go.clone());
    let running = spawn_one(&store, handler);
    eventually(Duration::from_secs(10), "the batch to start", || async {
        started.load(Ordering::SeqCst) == 1
    })
    .await;

    let report = store.cancel(&ids, "operator: stop").await.unwrap();
    assert_eq!(
        report.results,
        [
            (ids[0], CancelOutcome::Requested),
            (ids[1], CancelOutcome::Requested)
        ]
    );
    let s = stats_of(&store, &job_queue()).await;
    assert_eq!((s.in_flight, s.cancelled), (2, 0), "still running");
    go.add_permits(1);
    eventually(Duration::from_secs(10), "the batch to complete", || async {
        let s = stats_of(&store, &job_queue()).await;
        s.delivered == 1 && s.cancelled == 1
    })
    .await;
    stop(running).await;

    assert_eq!(
        b.row(ids[0]).await.status,
        "delivered",
        "the work committed"
    );
    let retried = b.row(ids[1]).await;
    assert_eq!(retried.status, "cancelled");
    assert_eq!(retried.cancel_reason.as_deref(), Some("operator: stop"));
    assert_eq!(retried.errors.len(), 1, "the failed attempt is recorded");
    assert_eq!(retried.errors[0].error, "downstream said no");
    assert!(claim(&store, &job_queue(), "w", 10).await.is_empty());
    assert_eq!(started.load(Ordering::SeqCst), 1, "never handled again");
}

/// A held event whose cancel was requested becomes cancelled, not pending, when its lease
/// expires and the reaper takes it back, or when its worker releases it; the expiry is in
/// its error history.
pub async fn a_held_event_with_a_cancel_request_is_cancelled_when_reaped_or_released<B: Backend>(
    b: &B,
) {
    let store = b.store(2).await;
    store.publish_batch(jobs(2)).await.unwrap();
    let held = claim_for(&store, "w1", Duration::from_millis(50)).await;
    let report = store.cancel(&held, "shutting the shop").await.unwrap();
    assert!(report
        .results
        .iter()
        .all(|(_, o)| *o == CancelOutcome::Requested));

    assert_eq!(store.release("w1", &held[1..], false).await.unwrap(), 1);
    assert_eq!(b.row(held[1]).await.status, "cancelled", "released");

    tokio::time::sleep(Duration::from_millis(150)).await;
    let woken = store.reap(10).await.unwrap();
    assert!(woken.is_empty(), "nothing went back to pending: {woken:?}");
    let reaped = b.row(held[0]).await;
    assert_eq!(reaped.status, "cancelled");
    assert_eq!(reaped.cancel_reason.as_deref(), Some("shutting the shop"));
    assert_eq!(reaped.errors.len(), 1);
    assert_eq!(reaped.errors[0].error, "lease expired");
    assert_eq!(reaped.errors[0].worker.as_deref(), Some("w1"));
    assert!(claim(&store, &job_queue(), "w2", 10).await.is_empty());
    assert_eq!(stats_of(&store, &job_queue()).await.cancelled, 2);
}

/// `ctx.cancel` cancels one item with its reason: not an error, not a dead letter, and the
/// events it emitted are dropped.
pub async fn a_handler_cancels_an_item_with_ctx_cancel<B: Backend>(b: &B) {
    let store = b.store(6).await;
    let ids = publish_jobs(&store, 2).await;
    let handler = PerItem::<_, 2>(|item: &Item<Job>, ctx: &mut Context<'_, B::S>| {
        ctx.emit_for(item.id, Followup { of: item.payload.n })?;
        if item.payload.n == 1 {
            ctx.cancel(item.id, "customer left");
        }
        Ok(())
    });
    run_until(&store, handler, "one delivered, one cancelled", |s| {
        s.delivered == 1 && s.cancelled == 1
    })
    .await;
    let row = b.row(ids[1]).await;
    assert_eq!(row.status, "cancelled");
    assert_eq!(row.cancel_reason.as_deref(), Some("customer left"));
    assert_eq!(
        (row.last_error, row.errors.len()),
        (None, 0),
        "not an error"
    );
    assert_eq!(stats_of(&store, &job_queue()).await.dead, 0);
    let followups = Queue::new(<Followup as conveyor::Event>::NAME, None);
    assert_eq!(
        stats_of(&store, &followups).await.pending,
        1,
        "only the delivered item's"
    );
}

/// Cancelled events are pruned after the delivered retention, like delivered ones.
pub async fn cancelled_events_are_pruned_after_the_retention<B: Backend>(b: &B) {
    let store = b.store(2).await;
    let ids = publish_jobs(&store, 3).await;
    store.cancel(&ids[..2], "obsolete").await.unwrap();
    assert_eq!(
        store.prune(Duration::from_secs(3600), 100).await.unwrap(),
        0
    );
    assert_eq!(stats_of(&store, &job_queue()).await.cancelled, 2);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(store.prune(Duration::ZERO, 100).await.unwrap(), 2);
    let s = stats_of(&store, &job_queue()).await;
    assert_eq!((s.cancelled, s.pending), (0, 1), "the pending one stays");
    assert!(b.raw_row(ids[0]).await.unwrap().is_none());
}

/// Fails every attempt, six retries without delay.
struct AlwaysFails;

#[async_trait]
impl<S: Store> EventHandler<S> for AlwaysFails {
    type Event = Job;
    const MAX_RETRIES: u32 = 6;

    async fn handle(&self, batch: Batch<Job>, _: &mut Context<'_, S>) -> Result<(), HandlerError> {
        let attempt = batch.iter().map(|i| i.attempt).max().unwrap_or(0);
        Err(HandlerError::retry(format!("failure of attempt {attempt}")))
    }

    fn backoff(&self, _: u32) -> Duration {
        Duration::ZERO
    }
}

/// An event failing 7 times keeps its last 5 failures (attempt, time, worker, error), oldest
/// first, and its dead letter shows them.
pub async fn the_error_history_keeps_the_last_five_failures<B: Backend>(b: &B) {
    let store = b.store(6).await;
    store.publish(Job { n: 1 }).await.unwrap();
    run_until(&store, AlwaysFails, "dead after 7 attempts", |s| {
        s.dead == 1
    })
    .await;
    let dead = store.dead_letters(None, None, 10).await.unwrap();
    let errors = &dead[0].errors;
    let attempts: Vec<u32> = errors.iter().map(|e| e.attempt).collect();
    assert_eq!(attempts, [3, 4, 5, 6, 7], "{errors:?}");
    for e in errors {
        assert!(
            e.error
                .starts_with(&format!("failure of attempt {}", e.attempt)),
            "{e:?}"
        );
        assert!(e.worker.as_deref().is_some_and(|w| !w.is_empty()), "{e:?}");
    }
    assert!(errors.windows(2).all(|w| w[0].at <= w[1].at), "{errors:?}");
    assert!(errors[4].error.contains("gave up after 7 attempts"));
    assert_eq!(
        dead[0].last_error.as_deref(),
        Some(errors[4].error.as_str())
    );
}

/// A lease lost to the reaper is recorded as `lease expired` with the worker that held it,
/// before the next attempt's failure.
pub async fn a_reaped_attempt_is_recorded_as_lease_expired<B: Backend>(b: &B) {
    let store = b.store(2).await;
    store.publish(Job { n: 1 }).await.unwrap();
    claim_for(&store, "w1", Duration::from_millis(50)).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(store.reap(10).await.unwrap(), [job_queue()]);
    let held = claim_for(&store, "w2", Duration::from_secs(30)).await;
    let dead = Outcome::Dead {
        error: "boom".into(),
    };
    complete(&store, "w2", vec![(held[0], dead)]).await;

    let letters = store.dead_letters(None, None, 10).await.unwrap();
    let history: Vec<(u32, Option<&str>, &str)> = letters[0]
        .errors
        .iter()
        .map(|e| (e.attempt, e.worker.as_deref(), e.error.as_str()))
        .collect();
    assert_eq!(
        history,
        [(1, Some("w1"), "lease expired"), (2, Some("w2"), "boom")]
    );
}
