//! Queue counters: every count of `stats()` matches a `count(*) … group by` oracle over the
//! outbox, and the totals match what a random workload did, through pool kills, retries,
//! dead letters, cancel, replay, purge, prune and skip_key.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use conveyor::{
    Batch, Context, EventHandler, EventId, HandlerError, HandlerOptions, Message, QueueStats,
    Store, WorkerPool,
};

use crate::ordering::WAIT;
use crate::support::{eventually, job_queue, stats_of, Backend, Job};

/// The oracle: rows per (event type, routing key, status, blocked, attempted), the same SQL
/// on every backend.
pub const ORACLE: &str = "select event_type, routing_key, cast(status as text) as status, \
    cast(case when blocked then 1 else 0 end as bigint) as blocked, \
    cast(case when attempts > 0 then 1 else 0 end as bigint) as attempted, count(*) as n \
    from conveyor_events where namespace = $1 group by 1, 2, 3, 4, 5";

/// A row of [`ORACLE`].
pub type OracleRow = (String, String, String, i64, i64, i64);

/// The state counts of one queue, in [`QueueStats`] field order: pending, waiting,
/// in_flight, retrying, dead, delivered, cancelled.
type Counts = [i64; 7];

fn of_stats(s: &QueueStats) -> Counts {
    [
        s.pending,
        s.waiting,
        s.in_flight,
        s.retrying,
        s.dead,
        s.delivered,
        s.cancelled,
    ]
}

fn of_oracle(rows: &[OracleRow]) -> BTreeMap<(String, String), Counts> {
    let mut out: BTreeMap<(String, String), Counts> = BTreeMap::new();
    for (et, rk, status, blocked, attempted, n) in rows {
        let c = out.entry((et.clone(), rk.clone())).or_default();
        match status.as_str() {
            "pending" => {
                c[0] += n;
                c[1] += n * blocked;
                c[3] += n * attempted;
            }
            "claimed" => c[2] += n,
            "dead" => c[4] += n,
            "delivered" => c[5] += n,
            "cancelled" => c[6] += n,
            other => panic!("unknown status {other}"),
        }
    }
    out
}

/// Compare every queue's counts with the oracle; `due + scheduled + waiting = pending`.
/// While pools run, the two reads are not one snapshot: the stats are read between two
/// oracle reads and compared only when both oracle reads agree (retried until they do).
async fn check<B: Backend>(b: &B, store: &B::S, when: &str) -> QueueStats {
    let oracle =
        || async { of_oracle(&b.oracle(conveyor::DEFAULT_NAMESPACE).await.expect("oracle")) };
    for _ in 0..200 {
        let before = oracle().await;
        let stats = store.stats().await.expect("stats");
        if oracle().await != before {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        for s in &stats {
            let key = (
                s.queue.event_type.clone(),
                s.queue.routing_key.clone().unwrap_or_default(),
            );
            let want = before.get(&key).copied().unwrap_or_default();
            assert_eq!(of_stats(s), want, "{when}: counts of {} ({s:?})", s.queue);
            assert_eq!(s.due + s.scheduled + s.waiting, s.pending, "{when}: {s:?}");
            assert!(s.due >= 0 && s.scheduled >= 0, "{when}: {s:?}");
        }
        for (key, want) in &before {
            let listed = stats.iter().any(|s| {
                s.queue.event_type == key.0
                    && s.queue.routing_key.as_deref().unwrap_or_default() == key.1
            });
            assert!(
                listed || *want == Counts::default(),
                "{when}: {key:?} missing"
            );
        }
        return stats_of(store, &job_queue()).await;
    }
    panic!("{when}: the rows never held still for a comparison");
}

/// Wait until nothing of the job queue is due or running and only `scheduled` events are
/// due later (no retry backoff left).
async fn drain<S: Store>(store: &S, scheduled: usize, what: &str) {
    eventually(WAIT, what, || async {
        let s = stats_of(store, &job_queue()).await;
        s.due == 0 && s.in_flight == 0 && s.scheduled == scheduled as i64
    })
    .await;
}

/// Job `n`: `n % 10 == 7` dies at once, `== 6` retries once 50 ms later, the rest deliver
/// after a short sleep (so kills land mid-batch).
#[derive(Clone, Default)]
struct Mixed;

#[async_trait]
impl<S: Store> EventHandler<S> for Mixed {
    type Event = Job;
    const BATCH_SIZE: usize = 4;

    async fn handle(
        &self,
        batch: Batch<Job>,
        ctx: &mut Context<'_, S>,
    ) -> Result<(), HandlerError> {
        tokio::time::sleep(Duration::from_millis(3)).await;
        for item in &batch {
            match item.payload.n % 10 {
                7 => ctx.fail(item.id, "poison"),
                6 if item.attempt == 1 => {
                    ctx.retry_after(item.id, Duration::from_millis(50), "once more")
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn start_pool<S: Store>(
    store: S,
    zero_retention: bool,
) -> tokio::task::JoinHandle<conveyor::Result<()>> {
    let options = HandlerOptions::default()
        .concurrency(2)
        .claim_timeout(Duration::from_millis(500));
    let mut builder = WorkerPool::builder(store)
        .register_with(Mixed, options)
        .maintenance_interval(Duration::from_millis(100));
    if zero_retention {
        builder = builder.delivered_retention(Duration::ZERO);
    }
    tokio::spawn(builder.build().unwrap().run(std::future::pending()))
}

async fn kill(pool: tokio::task::JoinHandle<conveyor::Result<()>>) {
    pool.abort();
    let _ = pool.await;
}

/// Sum of the error histories of `ids` (each under five entries here): the failed attempts.
async fn failures<B: Backend>(b: &B, ids: &[EventId]) -> i64 {
    let mut n = 0;
    for id in ids {
        if let Some((.., errors)) = b.raw_row(*id).await.unwrap() {
            let e: Vec<serde_json::Value> =
                errors.map_or_else(Vec::new, |e| serde_json::from_str(&e).unwrap());
            n += e.len() as i64;
        }
    }
    n
}

/// A seeded random workload (the seed is printed; `CONVEYOR_SEED` replays one) of delayed,
/// ordered and prioritized publishes drained by pools killed mid-batch, with retries and
/// dead letters, then cancel, replay, skip_key, purge and a zero-retention prune: after each
/// step every count of `stats()` equals the oracle, and the totals equal what happened.
pub async fn counters_match_the_rows_through_a_random_workload<B: Backend>(b: &B) {
    let seed = std::env::var("CONVEYOR_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("counters workload seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let store = b.store(4).await;
    let mut ids = Vec::new();
    let mut delayed = Vec::new();
    for round in 0..4 {
        let mut msgs = Vec::new();
        let mut later = Vec::new();
        for i in 0..60 {
            let n = round * 1000 + i;
            let mut m = Message::new(Job { n }).priority(rng.i16(-3..=3));
            match rng.u8(0..10) {
                0 => later.push(m.delay(Duration::from_secs(3600))),
                1..=3 => {
                    m = m.ordering_key(format!("k{}", rng.u8(0..6)));
                    msgs.push(m);
                }
                _ => msgs.push(m),
            }
        }
        ids.extend(store.publish_batch(msgs).await.unwrap().inserted());
        if !later.is_empty() {
            let report = store.publish_batch(later).await.unwrap();
            ids.extend(report.inserted());
            delayed.extend(report.inserted());
        }
        check(b, &store, &format!("after publish round {round}")).await;
    }
    let published = ids.len() as i64;

    let mut pools = Vec::new();
    // pools here keep delivered rows, so the error histories hold every failed attempt
    for _ in 0..3 {
        pools.push(start_pool(b.store(5).await, false));
    }
    for k in 0..4 {
        tokio::time::sleep(Duration::from_millis(rng.u64(50..300))).await;
        let doomed = pools.remove(rng.usize(0..pools.len()));
        kill(doomed).await;
        check(b, &store, &format!("after kill {k}")).await;
        pools.push(start_pool(b.store(5).await, false));
    }
    drain(&store, delayed.len(), "drained").await;
    for pool in pools.drain(..) {
        kill(pool).await;
    }
    let s = check(b, &store, "drained").await;
    assert_eq!(s.enqueued_total, published, "{s:?}");
    assert_eq!(s.scheduled, delayed.len() as i64, "{s:?}");
    assert_eq!(s.dead_total, s.dead, "nothing dead was replayed yet: {s:?}");
    assert_eq!(
        s.completed_total,
        published - s.pending - s.in_flight - s.dead - s.cancelled,
        "every other event was delivered once: {s:?}"
    );
    assert_eq!(s.failed_total, failures(b, &ids).await, "{s:?}");

    // cancel half the delayed events, replay the dead, skip the parked keys
    let cancelled = &delayed[..delayed.len() / 2];
    store.cancel(cancelled, "not needed").await.unwrap();
    check(b, &store, "after cancel").await;
    let dead: Vec<EventId> = store
        .dead_letters(None, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    let replayed = &dead[..dead.len() / 2];
    store.replay(replayed).await.unwrap();
    check(b, &store, "after replay").await;
    for key in store.parked_keys(None, 100).await.unwrap() {
        store.skip_key(&key.queue, &key.ordering_key).await.unwrap();
    }
    check(b, &store, "after skip_key").await;
    let before = s;
    // this pool deletes what it delivers: completed_total still counts those
    let pool = start_pool(b.store(5).await, true);
    drain(&store, delayed.len() - cancelled.len(), "drained again").await;
    kill(pool).await;
    let s = check(b, &store, "drained again").await;
    assert_eq!(s.enqueued_total, published, "{s:?}");
    // replayed poison dies again; poison that waited behind a skipped key dies now: every
    // dead letter not left from before is a new death
    let poison_replayed = replayed.len() as i64;
    let left_dead = before.dead - poison_replayed;
    assert_eq!(
        s.dead_total,
        before.dead_total + s.dead - left_dead,
        "{s:?}"
    );
    assert_eq!(
        s.completed_total,
        published - s.pending - s.in_flight - s.dead - cancelled.len() as i64,
        "rows deleted at completion count as completed (the cancelled ones were pruned by \
         the zero-retention pool): {s:?}"
    );
    // a retried event delivered by the deleting pool took its history with it
    assert!(s.failed_total >= failures(b, &ids).await, "{s:?}");
    assert!(
        s.failed_total >= before.failed_total + poison_replayed,
        "{s:?}"
    );

    store.purge_dead(None).await.unwrap();
    check(b, &store, "after purge").await;
    store.prune(Duration::ZERO, 100_000).await.unwrap();
    let after = check(b, &store, "after prune").await;
    assert_eq!(
        (after.delivered, after.cancelled, after.dead),
        (0, 0, 0),
        "{after:?}"
    );
    assert_eq!(
        (
            after.enqueued_total,
            after.completed_total,
            after.failed_total,
            after.dead_total
        ),
        (
            s.enqueued_total,
            s.completed_total,
            s.failed_total,
            s.dead_total
        ),
        "deleting rows never lowers a total"
    );
}

/// Publishers, two pools and a compactor looping `compact_counters` all at once (on
/// Postgres the compaction folds deltas while writers append them; on SQLite it is a
/// no-op): the counts equal the oracle afterwards, and the totals the writes.
pub async fn counters_stay_exact_while_compaction_runs<B: Backend>(b: &B) {
    let store = b.store(4).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let compactor = {
        let (store, stop) = (b.store(2).await, stop.clone());
        tokio::spawn(async move {
            let mut folded = 0;
            while !stop.is_cancelled() {
                folded += store.compact_counters().await.expect("compaction");
                tokio::task::yield_now().await;
            }
            folded
        })
    };
    let pools = [
        start_pool(b.store(5).await, false),
        start_pool(b.store(5).await, true),
    ];
    let mut publishers = Vec::new();
    for p in 0..4u64 {
        let store = b.store(2).await;
        publishers.push(tokio::spawn(async move {
            for batch in 0..25u64 {
                let msgs: Vec<Message<Job>> = (0..8u64)
                    .map(|i| {
                        Message::new(Job {
                            n: p * 10_000 + batch * 10 + i,
                        })
                    })
                    .collect();
                store.publish_batch(msgs).await.expect("publish");
            }
        }));
    }
    for p in publishers {
        p.await.unwrap();
    }
    drain(&store, 0, "drained").await;
    for pool in pools {
        kill(pool).await;
    }
    stop.cancel();
    let folded = compactor.await.unwrap();
    let s = check(b, &store, "after concurrent compaction").await;
    assert_eq!(s.enqueued_total, 800, "{s:?}");
    assert_eq!(s.dead_total, s.dead, "{s:?}");
    println!("compaction folded {folded} deltas while the writers ran");
}

/// One completion whose delivered outcomes span two queues, and name an event another
/// worker holds: without a handler transaction the held events are completed and the lost
/// one reported. Each queue counts its own deliveries (the SQLite completion counts the
/// first event's queue without reading rows back, and must still find the rest); the
/// event held by another worker stays in flight.
pub async fn a_completion_across_queues_counts_each_queue<B: Backend>(b: &B) {
    let store = b.store(2).await;
    let other = conveyor::Queue::new(<Job as conveyor::Event>::NAME, Some("other"));
    let msgs: Vec<Message<Job>> = (0..4u64)
        .map(|n| Message::new(Job { n }))
        .chain((4..6u64).map(|n| Message::new(Job { n }).routing_key("other")))
        .collect();
    store.publish_batch(msgs).await.expect("publish");
    let mine = crate::support::claim(&store, &job_queue(), "w", 3).await;
    let theirs = crate::support::claim(&store, &job_queue(), "someone else", 1).await;
    let others = crate::support::claim(&store, &other, "w", 2).await;
    assert_eq!((mine.len(), theirs.len(), others.len()), (3, 1, 2));
    let delivered = |e: &conveyor::ClaimedEvent| (e.id, conveyor::Outcome::Delivered);
    // the first event names the batch's queue; the other queue's and the unheld one follow
    let completion = conveyor::Completion {
        worker: "w".into(),
        outcomes: mine
            .iter()
            .take(1)
            .chain(&others)
            .chain(&theirs)
            .chain(mine.iter().skip(1))
            .map(delivered)
            .collect(),
        emitted: vec![],
        delete_delivered: false,
    };
    let lost = store.complete(None, &completion).await;
    assert!(
        matches!(
            lost,
            Err(conveyor::Error::LeaseLost {
                expected: 6,
                held: 5,
                ..
            })
        ),
        "{lost:?}"
    );
    let stats = check(b, &store, "after the completion").await;
    assert_eq!(
        (stats.delivered, stats.in_flight, stats.completed_total),
        (3, 1, 3)
    );
    let other = stats_of(&store, &other).await;
    assert_eq!(
        (other.delivered, other.in_flight, other.completed_total),
        (2, 0, 2)
    );
}

/// A zero-retention completion that delivers (deletes) the head of an ordering key and
/// retries another event: the event behind the head is unblocked by the deletion, and
/// every count still equals the oracle (on Postgres the completion counts its updated rows
/// itself while the unblocking update, run by a trigger of the same statement, is counted
/// by the update trigger).
pub async fn a_deleting_completion_counts_the_events_it_unblocks<B: Backend>(b: &B) {
    let store = b.store(2).await;
    let msgs = vec![
        Message::new(Job { n: 0 }).ordering_key("k"),
        Message::new(Job { n: 1 }).ordering_key("k"),
        Message::new(Job { n: 2 }),
    ];
    let ids: Vec<EventId> = store
        .publish_batch(msgs)
        .await
        .unwrap()
        .inserted()
        .collect();
    let held = crate::support::claim(&store, &job_queue(), "w", 10).await;
    let mut held_ids: Vec<EventId> = held.iter().map(|e| e.id).collect();
    held_ids.sort();
    assert_eq!(held_ids, [ids[0], ids[2]], "the second of the key waits");
    let completion = conveyor::Completion {
        worker: "w".into(),
        outcomes: vec![
            (ids[0], conveyor::Outcome::Delivered),
            (
                ids[2],
                conveyor::Outcome::Retry {
                    delay: Duration::from_secs(3600),
                    error: "later".into(),
                },
            ),
        ],
        emitted: vec![],
        delete_delivered: true,
    };
    store.complete(None, &completion).await.expect("complete");
    let s = check(b, &store, "after the deleting completion").await;
    assert_eq!(
        (s.pending, s.waiting, s.due, s.scheduled, s.in_flight),
        (2, 0, 1, 1, 0),
        "{s:?}"
    );
    assert_eq!((s.completed_total, s.failed_total), (1, 1), "{s:?}");
}
