//! Hooks: after-commit exactly once per committed batch (none when the commit fails and the
//! batch is redelivered), and hooks that panic or stall never stop a worker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use conveyor::{
    sql, Batch, Context, EventHandler, EventId, HandlerError, HandlerOptions, HookEvent,
    PublishSource, Rollback, SqlStore, Store, WorkerPool,
};

use crate::support::{
    eventually, job_queue, jobs, publish_jobs, spawn, stats_of, stop, Backend, Followup, Job,
};

const WAIT: Duration = Duration::from_secs(20);

/// Every record the pool's hooks were given, in order.
#[derive(Debug, Clone, Default)]
struct Seen(Arc<Mutex<Vec<HookEvent>>>);

impl Seen {
    fn hook(&self) -> impl Fn(&HookEvent) + Send + Sync + 'static {
        let seen = self.0.clone();
        move |event| seen.lock().unwrap().push(event.clone())
    }

    fn all(&self) -> Vec<HookEvent> {
        self.0.lock().unwrap().clone()
    }
}

/// A child row whose parent is checked only at commit (deferred), on every SQL backend.
const CREATE_PARENTS: &str = "create table contract_parents (id bigint primary key)";
const CREATE_CHILDREN: &str = "create table contract_children (parent bigint not null \
     references contract_parents (id) deferrable initially deferred)";
const INSERT_ORPHAN: &str = "insert into contract_children (parent) values ($1)";

/// On its first attempt at an even job, writes a row that violates a deferred foreign key:
/// `handle` succeeds and the batch's commit fails. Emits a followup every time.
struct CommitFailsOnce;

#[async_trait]
impl<S: SqlStore> EventHandler<S> for CommitFailsOnce {
    type Event = Job;
    const CLAIM_TIMEOUT: Duration = Duration::from_secs(1);

    async fn handle(
        &self,
        batch: Batch<Job>,
        ctx: &mut Context<'_, S>,
    ) -> Result<(), HandlerError> {
        for item in &batch {
            if item.payload.n % 2 == 0 && item.attempt == 1 {
                ctx.execute(sql(INSERT_ORPHAN).bind(item.payload.n as i64))
                    .await?;
            }
            ctx.emit_for(item.id, Followup { of: item.payload.n })?;
        }
        Ok(())
    }
}

/// Each committed batch gets exactly one after-commit (and its emitted events one publish
/// record, after it); a batch whose commit fails gets an after-rollback and no after-commit,
/// and once the reaper returns its events, its redelivery commits and gets its one.
pub async fn after_commit_fires_once_per_committed_batch_even_when_a_commit_fails<B>(b: &B)
where
    B: Backend,
    B::S: SqlStore,
{
    let store = b.store(8).await;
    let mut tx = store.begin().await.unwrap();
    for create in [CREATE_PARENTS, CREATE_CHILDREN] {
        <B::S as SqlStore>::execute_in(&mut tx, sql(create))
            .await
            .unwrap();
    }
    store.commit(tx).await.unwrap();
    let ids = publish_jobs(&store, 6).await;

    let seen = Seen::default();
    let pool = WorkerPool::builder(store.clone())
        .register_with(CommitFailsOnce, HandlerOptions::default().concurrency(2))
        .maintenance_interval(Duration::from_millis(200))
        .hook(seen.hook())
        .build()
        .unwrap();
    let running = spawn(pool);
    eventually(WAIT, "every job delivered", || async {
        stats_of(&store, &job_queue()).await.delivered == 6
    })
    .await;
    stop(running).await;

    let events = seen.all();
    let mut commits: HashMap<EventId, Vec<u32>> = HashMap::new();
    let mut rollbacks = Vec::new();
    let mut published = HashMap::<EventId, usize>::new();
    let mut reaped = false;
    for event in &events {
        match event {
            HookEvent::AfterCommit(record) => {
                for (id, attempt) in &record.batch.events {
                    commits.entry(*id).or_default().push(*attempt);
                }
                assert_eq!(record.counts.delivered, record.batch.events.len());
                assert!(record.commit_duration.is_some());
            }
            HookEvent::AfterRollback(record, why) => {
                assert!(
                    matches!(why, Rollback::CommitFailed { .. }),
                    "rolled back because {why}"
                );
                rollbacks.extend(record.batch.events.iter().copied());
            }
            HookEvent::Published {
                source: PublishSource::Emitted(batch),
                events,
            } => {
                for (id, _) in &batch.events {
                    *published.entry(*id).or_default() += events.len();
                }
            }
            HookEvent::Reaped { queues } => reaped |= queues.contains(&job_queue()),
            _ => {}
        }
    }
    for (i, id) in ids.iter().enumerate() {
        // even jobs committed on their second attempt, odd ones on their first
        let expected = if i % 2 == 0 { 2 } else { 1 };
        assert_eq!(
            commits.get(id),
            Some(&vec![expected]),
            "job {i}: {events:#?}"
        );
        assert_eq!(published.get(id), Some(&1), "job {i}'s followup, once");
    }
    let mut rolled_back: Vec<EventId> = rollbacks.iter().map(|(id, _)| *id).collect();
    rolled_back.sort();
    assert_eq!(rolled_back, vec![ids[0], ids[2], ids[4]], "{events:#?}");
    assert!(rollbacks.iter().all(|(_, attempt)| *attempt == 1));
    assert!(reaped, "the reaper's return of the failed batches is seen");
    let before = events
        .iter()
        .filter(|e| matches!(e, HookEvent::BeforeHandle(_)))
        .count();
    let after = events
        .iter()
        .filter(|e| matches!(e, HookEvent::AfterHandle(_)))
        .count();
    assert_eq!((before, after), (9, 9), "6 batches and 3 redeliveries");
}

/// A sync hook that panics at every record, an async one that panics and an async one that
/// hangs: events are still delivered at once, and each failure is counted.
pub async fn a_panicking_or_stalled_hook_never_stops_a_worker<B: Backend>(b: &B) {
    let store = b.store(8).await;
    store.publish_batch(jobs(20)).await.unwrap();
    let recorder = crate::support::Recorder::<1>::default();
    let log = recorder.log.clone();
    let pool = WorkerPool::builder(store.clone())
        .register(recorder)
        .hook(|event: &HookEvent| {
            if matches!(event, HookEvent::AfterCommit(_)) {
                panic!("a hook bug");
            }
        })
        .async_hook(|_: Arc<HookEvent>| async { panic!("an async hook bug") })
        .async_hook_with(
            |_: Arc<HookEvent>| async { tokio::time::sleep(Duration::from_secs(3600)).await },
            2,
            Duration::from_millis(200),
        )
        .shutdown_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let failures = pool.hook_failures();
    let running = spawn(pool);
    eventually(Duration::from_secs(10), "every job delivered", || async {
        stats_of(&store, &job_queue()).await.delivered == 20
    })
    .await;
    stop(running).await;
    assert_eq!(log.distinct(), 20);
    assert!(failures.panicked() >= 20 + 20, "{failures:?}");
    assert!(failures.timed_out() >= 1, "{failures:?}");
    assert!(failures.dropped() >= 1, "{failures:?}");
    assert_eq!(
        failures.total(),
        failures.panicked() + failures.timed_out() + failures.dropped()
    );
}

/// Its first attempt waits a second (heartbeats renew the lease meanwhile); later attempts
/// are quick.
struct Waits;

#[async_trait]
impl<S: Store> EventHandler<S> for Waits {
    type Event = Job;
    const CLAIM_TIMEOUT: Duration = Duration::from_millis(300);

    async fn handle(&self, batch: Batch<Job>, _: &mut Context<'_, S>) -> Result<(), HandlerError> {
        if batch.iter().any(|item| item.attempt == 1) {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Ok(())
    }
}

/// A batch whose events are taken back while it runs (released under its worker's id, as
/// the reaper does with an expired lease) is reported as lost by the next heartbeat and
/// rolls back (no after-commit); its redelivery commits once.
pub async fn a_lost_lease_is_reported_and_rolls_the_batch_back<B: Backend>(b: &B) {
    let store = b.store(8).await;
    let id = store.publish(Job { n: 1 }).await.unwrap().id().unwrap();
    let seen = Seen::default();
    let pool = WorkerPool::builder(store.clone())
        .register(Waits)
        .hook(seen.hook())
        .build()
        .unwrap();
    let running = spawn(pool);
    let mut worker = None;
    eventually(WAIT, "the first attempt to start", || {
        worker = seen.all().iter().find_map(|e| match e {
            HookEvent::BeforeHandle(record) => Some(record.batch.worker.clone()),
            _ => None,
        });
        std::future::ready(worker.is_some())
    })
    .await;
    let released = store.release(&worker.unwrap(), &[id], false).await.unwrap();
    assert_eq!(released, 1);
    eventually(WAIT, "the job delivered", || async {
        stats_of(&store, &job_queue()).await.delivered == 1
    })
    .await;
    stop(running).await;

    let events = seen.all();
    let lost: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            HookEvent::LeaseLost { batch, held } => Some((batch.events.clone(), *held)),
            _ => None,
        })
        .collect();
    assert_eq!(lost, vec![(vec![(id, 1)], 0)], "once: {events:#?}");
    let rollbacks: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            HookEvent::AfterRollback(record, why) => Some((record.batch.events.clone(), why)),
            _ => None,
        })
        .collect();
    assert_eq!(rollbacks, vec![(vec![(id, 1)], &Rollback::LeaseLost)]);
    let commits: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            HookEvent::AfterCommit(record) => Some(record.batch.events.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        commits,
        vec![vec![(id, 2)]],
        "redelivered once, committed once"
    );
}
