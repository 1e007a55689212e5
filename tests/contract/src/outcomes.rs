//! Per-item outcomes, poison payloads, retries, and the atomic outbox.

use std::marker::PhantomData;
use std::time::Duration;

use async_trait::async_trait;
use conveyor::{Batch, Context, EventHandler, HandlerError, Item, NewEvent, Queue, Store};

use crate::support::{
    job_queue, run_until, stats_of, Backend, Followup, Job, Log, PerItem, Recorder,
};

/// One batch with one ok, one retry and one fail lands exactly as stated.
pub async fn per_item_outcomes_in_one_batch_land_as_stated<B: Backend>(b: &B) {
    let store = b.store(6).await;
    store.publish_batch(crate::support::jobs(3)).await.unwrap();
    // n = 0 is delivered, n = 1 retried in an hour, n = 2 failed permanently
    let mixed = PerItem::<_, 3>(|item: &Item<Job>, ctx: &mut Context<'_, B::S>| {
        match item.payload.n {
            1 => ctx.retry_after(item.id, Duration::from_secs(3600), "try later"),
            2 => ctx.fail(item.id, "never going to work"),
            _ => {}
        }
        Ok(())
    });
    run_until(&store, mixed, "all three outcomes", |s| {
        s.delivered == 1 && s.retrying == 1 && s.dead == 1
    })
    .await;
    let q = job_queue();
    let dead = store.dead_letters(Some(&q), None, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].payload["n"], 2);
    assert_eq!(dead[0].last_error.as_deref(), Some("never going to work"));
    let s = stats_of(&store, &q).await;
    assert_eq!((s.pending, s.due), (1, 0), "the retry waits its hour");
}

/// Payloads that do not deserialize or fail validation are dead on first sight, with the
/// message, and never reach the handler.
pub async fn poison_payload_is_dead_lettered_on_first_sight<B: Backend>(b: &B) {
    let store = b.store(6).await;
    let raw = |payload: &str| NewEvent {
        event_type: "contract.job".into(),
        payload: payload.into(),
        routing_key: None,
        delay: Duration::ZERO,
        idempotency_key: None,
        fairness_key: None,
        correlation_id: None,
        causation_id: None,
        priority: conveyor::PRIORITY_DEFAULT,
        ordering_key: None,
        traceparent: None,
    };
    store
        .insert(vec![raw(r#"{"n":"seven"}"#), raw(r#"{"n":5000000}"#)])
        .await
        .unwrap();
    let handler = Recorder::<10>::default();
    let log = handler.log.clone();
    run_until(&store, handler, "both poison events dead", |s| s.dead == 2).await;
    assert_eq!(log.distinct(), 0, "the handler never saw them");
    let dead = store.dead_letters(None, None, 10).await.unwrap();
    assert!(
        dead.iter().all(|d| d.attempts == 1),
        "not retried: {dead:?}"
    );
    let errors: Vec<_> = dead.iter().map(|d| d.last_error.clone().unwrap()).collect();
    assert!(errors[0].contains("invalid type"), "{}", errors[0]);
    assert!(
        errors[1].contains("n:") || errors[1].contains("n "),
        "names the field: {}",
        errors[1]
    );
}

/// Always fails transiently; retries twice with a short, growing, capped backoff.
#[derive(Default)]
struct Flaky {
    log: Log,
}

#[async_trait]
impl<S: Store> EventHandler<S> for Flaky {
    type Event = Job;
    const MAX_RETRIES: u32 = 2;

    async fn handle(&self, batch: Batch<Job>, _: &mut Context<'_, S>) -> Result<(), HandlerError> {
        self.log.record(&batch);
        Err(HandlerError::retry("downstream unavailable"))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        conveyor::retry::backoff_with(
            attempt,
            Duration::from_millis(200),
            Duration::from_millis(300),
            0.5,
        )
    }
}

/// Retries wait the handler's backoff, which grows and is capped; after MAX_RETRIES the
/// event is dead with its last error.
pub async fn retries_back_off_then_dead_letter_after_max_retries<B: Backend>(b: &B) {
    let store = b.store(6).await;
    store.publish(Job { n: 1 }).await.unwrap();
    let handler = Flaky::default();
    let log = handler.log.clone();
    run_until(&store, handler, "dead after retries", |s| s.dead == 1).await;
    let attempts = log.attempts();
    let numbers: Vec<u32> = attempts.iter().map(|a| a.1).collect();
    assert_eq!(numbers, [1, 2, 3], "first attempt plus MAX_RETRIES = 2");
    let gap1 = attempts[1].2 - attempts[0].2;
    let gap2 = attempts[2].2 - attempts[1].2;
    assert!(
        gap1 >= Duration::from_millis(190),
        "first backoff ~200ms, was {gap1:?}"
    );
    assert!(
        gap2 >= Duration::from_millis(290),
        "second backoff capped at 300ms, was {gap2:?}"
    );
    assert_eq!(attempts[1].3.as_deref(), Some("downstream unavailable"));
    let dead = store.dead_letters(None, None, 10).await.unwrap();
    let error = dead[0].last_error.as_deref().unwrap();
    assert!(
        error.contains("downstream unavailable") && error.contains("3 attempts"),
        "{error}"
    );
}

/// Write marker `key` in the batch's transaction; a failed write is a retry.
async fn mark<B: Backend>(ctx: &mut Context<'_, B::S>, key: &str) -> Result<(), HandlerError> {
    B::write_marker(ctx.tx().await?, key)
        .await
        .map_err(HandlerError::retry)
}

/// Writes a marker and emits a follow-up, then succeeds or fails.
struct Writer<B> {
    fail: bool,
    _b: PhantomData<fn() -> B>,
}

#[async_trait]
impl<B: Backend> EventHandler<B::S> for Writer<B> {
    type Event = Job;

    async fn handle(
        &self,
        batch: Batch<Job>,
        ctx: &mut Context<'_, B::S>,
    ) -> Result<(), HandlerError> {
        let n = batch.iter().next().unwrap().payload.n;
        ctx.emit(Followup { of: n })?;
        mark::<B>(ctx, &format!("job-{n}")).await?;
        if self.fail {
            return Err(HandlerError::fail("failed after writing"));
        }
        Ok(())
    }
}

async fn run_writer<B: Backend>(b: &B, fail: bool) -> B::S {
    let store = b.store(6).await;
    store.publish(Job { n: 7 }).await.unwrap();
    let handler = Writer::<B> {
        fail,
        _b: PhantomData,
    };
    run_until(&store, handler, "the job finished", |s| {
        s.delivered + s.dead == 1
    })
    .await;
    store
}

/// A handler that emits, writes, then fails leaves neither the emitted event nor the row.
pub async fn failed_handler_leaves_no_writes_and_no_emitted_events<B: Backend>(b: &B) {
    writes_and_emits_follow_the_outcome(b, true).await;
}

/// A handler that emits, writes and succeeds leaves both, exactly once.
pub async fn successful_handler_commits_writes_and_emitted_events_once<B: Backend>(b: &B) {
    writes_and_emits_follow_the_outcome(b, false).await;
}

/// Run a [`Writer`] that fails or not: its marker and follow-up are committed exactly once
/// when the job is delivered, and not at all when it dies.
async fn writes_and_emits_follow_the_outcome<B: Backend>(b: &B, fail: bool) {
    let store = run_writer(b, fail).await;
    let kept = i64::from(!fail);
    assert_eq!(b.count_markers("job-7").await.unwrap(), kept);
    let followups = stats_of(&store, &Queue::new("contract.followup", None)).await;
    assert_eq!(followups.pending, kept);
    let job = stats_of(&store, &job_queue()).await;
    assert_eq!((job.delivered, job.dead), (kept, 1 - kept));
}

/// `testing::run_batch` reports per-item outcomes and commits only the emitted events of
/// delivered items (an emitted event follows its cause).
pub async fn run_batch_reports_outcomes_and_emits_only_for_delivered_items<B: Backend>(b: &B) {
    let store = b.store(4).await;
    // fails even numbers, emits a follow-up for every item
    let picky = PerItem::<_, 10>(|item: &Item<Job>, ctx: &mut Context<'_, B::S>| {
        if item.payload.n.is_multiple_of(2) {
            ctx.fail(item.id, "even");
        }
        ctx.emit_for(item.id, Followup { of: item.payload.n })?;
        Ok(())
    });
    let run = conveyor::testing::run_batch(&store, &picky, crate::support::jobs(4))
        .await
        .unwrap();
    let dead = run
        .outcomes
        .iter()
        .filter(|(_, o)| matches!(o, conveyor::Outcome::Dead { .. }))
        .count();
    assert_eq!((run.outcomes.len(), dead), (4, 2));
    assert_eq!(
        run.emitted.len(),
        2,
        "follow-ups of failed items are dropped"
    );
    assert!(run.emitted.iter().all(|e| e.causation_id.is_some()));
    let followups = stats_of(&store, &Queue::new("contract.followup", None)).await;
    assert_eq!(followups.pending, 2);
}

/// Writes a marker in its batch's transaction, then hangs far past any timeout.
struct Hangs<B>(PhantomData<B>);

#[async_trait]
impl<B: Backend> EventHandler<B::S> for Hangs<B> {
    type Event = Job;
    const MAX_RETRIES: u32 = 1;

    async fn handle(
        &self,
        batch: Batch<Job>,
        ctx: &mut Context<'_, B::S>,
    ) -> Result<(), HandlerError> {
        let n = batch.iter().next().unwrap().payload.n;
        mark::<B>(ctx, &format!("hang-{n}")).await?;
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(())
    }

    fn backoff(&self, _attempt: u32) -> Duration {
        Duration::from_millis(10)
    }
}

/// A `handle` call past its timeout is dropped: its writes roll back, the batch is retried
/// as an attempt with "timed out after …", and dead-lettered when retries run out; the
/// worker is free again meanwhile (the whole run takes about two timeouts, not an hour).
pub async fn a_handler_past_its_timeout_is_retried_then_dead<B: Backend>(b: &B) {
    let store = b.store(6).await;
    store.publish(Job { n: 1 }).await.unwrap();
    let started = std::time::Instant::now();
    let options = conveyor::HandlerOptions::default().timeout(Duration::from_millis(200));
    let running = crate::support::spawn_with(&store, Hangs::<B>(PhantomData), options);
    crate::support::eventually(
        Duration::from_secs(20),
        "dead after two timeouts",
        || async { stats_of(&store, &job_queue()).await.dead == 1 },
    )
    .await;
    crate::support::stop(running).await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let dead = store.dead_letters(None, None, 10).await.unwrap();
    assert_eq!(dead[0].attempts, 2, "{dead:?}");
    let error = dead[0].last_error.clone().unwrap();
    assert!(error.contains("timed out after 200ms"), "{error}");
    assert_eq!(b.count_markers("hang-1").await.unwrap(), 0, "rolled back");
}

/// A zero handler timeout is refused at build, naming the option.
pub async fn a_zero_timeout_is_a_build_error<B: Backend>(b: &B) {
    let store = b.store(2).await;
    let built = conveyor::WorkerPool::builder(store)
        .register_with(
            Hangs::<B>(PhantomData),
            conveyor::HandlerOptions::default().timeout(Duration::ZERO),
        )
        .build();
    let Err(err) = built else {
        panic!("a zero timeout was accepted")
    };
    let err = err.to_string();
    assert!(err.contains("HandlerOptions::timeout"), "{err}");
}

/// A snoozed event comes back after its delay without using up an attempt: the handler
/// sees attempt 1 every time, and snoozing more often than `MAX_RETRIES` allows retries
/// never dead-letters it.
pub async fn snoozed_events_come_back_without_using_an_attempt<B: Backend>(b: &B) {
    let store = b.store(6).await;
    store.publish(Job { n: 1 }).await.unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    // MAX_RETRIES is 5: seven snoozes would have dead-lettered it as retries
    let snoozer = PerItem::<_, 1>(move |item: &Item<Job>, ctx: &mut Context<'_, B::S>| {
        let mut seen = log.lock().unwrap();
        seen.push(item.attempt);
        if seen.len() <= 7 {
            ctx.snooze(item.id, Duration::from_millis(20));
        }
        Ok(())
    });
    run_until(&store, snoozer, "delivered after seven snoozes", |s| {
        s.delivered == 1
    })
    .await;
    assert_eq!(*seen.lock().unwrap(), [1; 8], "no attempt used up");
    assert_eq!(stats_of(&store, &job_queue()).await.dead, 0);
}
