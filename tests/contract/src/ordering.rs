//! Ordering keys (per-key FIFO): order under pool kills, retries, key concurrency, racing
//! publishers, fairness and wake-ups. Dead heads are in [`crate::parking`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use conveyor::{
    Batch, Context, EventHandler, HandlerError, HandlerOptions, Item, Message, Store, WorkerPool,
};

use crate::support::{eventually, job_queue, spawn_with, stats_of, stop, Backend, Job, PerItem};

pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// Job `n` of key `key % 1000` is that key's sequence number `n / 1000`.
pub(crate) fn ordered(key: u64, seq: u64) -> Message<Job> {
    Message::new(Job {
        n: seq * 1000 + key,
    })
    .ordering_key(format!("k{key}"))
}

/// Checks, as each event starts, that its key has nothing else running and that it is the
/// key's next sequence number (or a redelivery of the last one started, after a crash).
#[derive(Clone, Default)]
pub(crate) struct Sequencer {
    pub(crate) state: Arc<Mutex<SeqState>>,
    /// Heads (by job number) that fail for good, while set.
    pub(crate) fail: Arc<Mutex<Vec<u64>>>,
    /// A sleep per event, so batches overlap.
    pub(crate) pause: Duration,
}

#[derive(Default)]
pub(crate) struct SeqState {
    started: HashMap<u64, u64>,
    running: HashMap<u64, usize>,
    delivered: HashMap<u64, Vec<u64>>,
    violations: Vec<String>,
    pub(crate) peak_per_key: usize,
}

/// Marks a key's event as running until dropped (also when its worker is killed).
struct Running {
    state: Arc<Mutex<SeqState>>,
    key: u64,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut s = self.state.lock().unwrap();
        *s.running.entry(self.key).or_default() -= 1;
    }
}

impl Sequencer {
    fn start(&self, n: u64, allowed: usize) -> Running {
        let (key, seq) = (n % 1000, n / 1000);
        let mut s = self.state.lock().unwrap();
        let last = s.started.get(&key).copied();
        let in_order = match last {
            None => seq == 0 || allowed > 1,
            Some(last) => seq == last || seq == last + 1 || allowed > 1,
        };
        if !in_order {
            s.violations
                .push(format!("key {key}: {seq} started after {last:?}"));
        }
        s.started.insert(key, last.map_or(seq, |l| l.max(seq)));
        let running = s.running.entry(key).or_default();
        *running += 1;
        let now = *running;
        if now > allowed {
            s.violations
                .push(format!("key {key}: {now} running at once (at {seq})"));
        }
        s.peak_per_key = s.peak_per_key.max(now);
        Running {
            state: self.state.clone(),
            key,
        }
    }

    pub(crate) fn delivered(&self) -> HashMap<u64, Vec<u64>> {
        self.state.lock().unwrap().delivered.clone()
    }

    pub(crate) fn violations(&self) -> Vec<String> {
        self.state.lock().unwrap().violations.clone()
    }
}

#[async_trait]
impl<S: Store> EventHandler<S> for Sequencer {
    type Event = Job;
    const BATCH_SIZE: usize = 5;

    async fn handle(
        &self,
        batch: Batch<Job>,
        ctx: &mut Context<'_, S>,
    ) -> Result<(), HandlerError> {
        let allowed = ctx_key_concurrency(ctx);
        let guards: Vec<Running> = batch
            .iter()
            .map(|i| self.start(i.payload.n, allowed))
            .collect();
        tokio::time::sleep(self.pause).await;
        let fail = self.fail.lock().unwrap().clone();
        let mut s = self.state.lock().unwrap();
        for item in &batch {
            let n = item.payload.n;
            if fail.contains(&n) {
                ctx.fail(item.id, "the head fails");
            } else {
                s.delivered.entry(n % 1000).or_default().push(n / 1000);
            }
        }
        drop(s);
        drop(guards);
        Ok(())
    }
}

/// The key concurrency the tests run with: 1 unless a test says otherwise through the
/// handler's namespace (kept simple: every test here but one uses 1).
fn ctx_key_concurrency<S: Store>(ctx: &Context<'_, S>) -> usize {
    if ctx.namespace().ends_with("-pairs") {
        2
    } else {
        1
    }
}

/// Four pools drain 40 keys of 25 events each while pools are killed mid-batch (like
/// kill -9) and replaced: every key's events run in publish order, one at a time, and all
/// are delivered.
pub async fn keys_run_in_order_one_at_a_time_across_pools_with_kills<B: Backend>(b: &B) {
    let store = b.store(4).await;
    let mut msgs = Vec::new();
    for seq in 0..25 {
        for key in 0..40 {
            msgs.push(ordered(key, seq));
        }
    }
    store.publish_batch(msgs).await.unwrap();
    let handler = Sequencer {
        pause: Duration::from_millis(5),
        ..Sequencer::default()
    };
    let options = HandlerOptions::default()
        .concurrency(2)
        .claim_timeout(Duration::from_millis(600));
    let start_pool = |store: B::S| {
        let pool = WorkerPool::builder(store)
            .register_with(handler.clone(), options.clone())
            .maintenance_interval(Duration::from_millis(100))
            .build()
            .unwrap();
        tokio::spawn(pool.run(std::future::pending()))
    };
    let mut pools = Vec::new();
    for _ in 0..4 {
        pools.push(start_pool(b.store(5).await));
    }
    for kill in 0..6 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let doomed = pools.remove(kill % pools.len());
        doomed.abort();
        let _ = doomed.await;
        pools.push(start_pool(b.store(5).await));
    }
    eventually(WAIT, "every key delivered", || async {
        let d = handler.delivered();
        // a batch killed after its handler ran is handled again: count distinct
        d.len() == 40
            && d.values()
                .all(|v| v.iter().collect::<std::collections::HashSet<_>>().len() == 25)
    })
    .await;
    for pool in pools {
        pool.abort();
        let _ = pool.await;
    }
    assert_eq!(handler.violations(), Vec::<String>::new());
    for (key, seqs) in handler.delivered() {
        let mut dedup = seqs.clone();
        dedup.dedup();
        assert_eq!(
            dedup,
            (0..25).collect::<Vec<_>>(),
            "key {key} delivered {seqs:?}"
        );
    }
    let s = stats_of(&store, &job_queue()).await;
    assert_eq!((s.pending, s.dead), (0, 0), "{s:?}");
}

/// A retry keeps its place at the head of its key: the key's next events wait for it. A
/// retry scheduled in the future blocks only its own key: another key's events run
/// meanwhile.
pub async fn a_retry_keeps_its_place_and_blocks_only_its_key<B: Backend>(b: &B) {
    let store = b.store(4).await;
    // key A: jobs 0, 1, 2; key B: jobs 10, 11
    let msgs = [(0, "a"), (10, "b"), (1, "a"), (11, "b"), (2, "a")]
        .map(|(n, k)| Message::new(Job { n }).ordering_key(k));
    store.publish_batch(msgs).await.unwrap();
    // fails the first attempt of job 0 (key A's head) with a retry 1.5 s ahead, and records
    // every start with its key
    let log = Arc::new(Mutex::new(Vec::<(u64, u32, Instant)>::new()));
    let handler = PerItem::<_, 1>({
        let log = log.clone();
        move |item: &Item<Job>, ctx: &mut Context<'_, B::S>| {
            log.lock()
                .unwrap()
                .push((item.payload.n, item.attempt, Instant::now()));
            if item.payload.n == 0 && item.attempt == 1 {
                ctx.retry_after(item.id, Duration::from_millis(1500), "not yet");
            }
            Ok(())
        }
    });
    let running = spawn_with(&store, handler, HandlerOptions::default().concurrency(2));
    eventually(WAIT, "all five delivered", || async {
        stats_of(&store, &job_queue()).await.delivered == 5
    })
    .await;
    stop(running).await;
    let log = log.lock().unwrap().clone();
    let order: Vec<(u64, u32)> = log.iter().map(|(n, a, _)| (*n, *a)).collect();
    let of_a: Vec<_> = order.iter().filter(|(n, _)| *n < 10).copied().collect();
    assert_eq!(of_a, [(0, 1), (0, 2), (1, 1), (2, 1)], "key a: {order:?}");
    let at = |n: u64, attempt: u32| log.iter().find(|e| e.0 == n && e.1 == attempt).unwrap().2;
    assert!(
        at(11, 1) < at(0, 2),
        "key b waited for key a's retry: {order:?}"
    );
}

/// With a key concurrency of 2, two events of a key run at once, never three.
pub async fn key_concurrency_lets_n_of_a_key_run_at_once<B: Backend>(b: &B) {
    let store = b.store_in(4, "ordering-pairs").await;
    store
        .publish_batch((0..12).map(|seq| ordered(7, seq)))
        .await
        .unwrap();
    let handler = Sequencer {
        pause: Duration::from_millis(100),
        ..Sequencer::default()
    };
    let running = spawn_with(
        &store,
        handler.clone(),
        HandlerOptions::default()
            .concurrency(4)
            .batch_size(1)
            .key_concurrency(2),
    );
    eventually(WAIT, "the key drained", || async {
        handler.delivered().get(&7).is_some_and(|v| v.len() == 12)
    })
    .await;
    stop(running).await;
    assert_eq!(handler.violations(), Vec::<String>::new());
    assert_eq!(handler.state.lock().unwrap().peak_per_key, 2);
}

/// Ordering keys keep fairness (a small group is not starved by a large one of many keys)
/// and wake-ups (an idle pool with a long poll interval starts an ordered event, and the
/// next of its key, within a second).
pub async fn fairness_and_wakeups_hold_with_ordering_keys<B: Backend>(b: &B) {
    let store = b.store(4).await;
    let big: Vec<_> = (0..2000)
        .map(|n| {
            Message::new(Job { n })
                .fairness_key("a")
                .ordering_key(format!("a{}", n % 200))
        })
        .collect();
    store.publish_batch(big).await.unwrap();
    let small: Vec<_> = (0..20)
        .map(|n| {
            Message::new(Job { n: 5000 + n })
                .fairness_key("b")
                .ordering_key(format!("b{}", n % 4))
        })
        .collect();
    store.publish_batch(small).await.unwrap();
    let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
    let recorder = PerItem::<_, 50>({
        let seen = seen.clone();
        move |item: &Item<Job>, _: &mut Context<'_, B::S>| {
            seen.lock().unwrap().push(item.payload.n);
            Ok(())
        }
    });
    let running = spawn_with(
        &store,
        recorder,
        HandlerOptions::default().poll_interval(Duration::from_secs(10)),
    );
    eventually(WAIT, "group b drained", || async {
        seen.lock().unwrap().iter().filter(|n| **n >= 5000).count() == 20
    })
    .await;
    let at = seen
        .lock()
        .unwrap()
        .iter()
        .rposition(|n| *n >= 5000)
        .unwrap();
    assert!(at < 400, "group b's last event came {at}th");
    eventually(WAIT, "everything", || async {
        seen.lock().unwrap().len() == 2020
    })
    .await;
    // idle now: an ordered pair is started within a second, the second after the first
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t0 = Instant::now();
    store
        .publish_batch([9001, 9002].map(|n| Message::new(Job { n }).ordering_key("late")))
        .await
        .unwrap();
    eventually(Duration::from_secs(5), "the late pair", || async {
        seen.lock().unwrap().ends_with(&[9001, 9002])
    })
    .await;
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t0.elapsed()
    );
    stop(running).await;
}

/// Publishers racing with the same ordering keys in opposite orders, while a pool completes
/// them, neither deadlock nor break the order: every publish succeeds and each key still
/// runs one at a time in publish order.
pub async fn racing_publishers_of_the_same_keys_do_not_deadlock<B: Backend>(b: &B) {
    let store = b.store(6).await;
    let handler = Sequencer::default();
    let running = spawn_with(
        &store,
        handler.clone(),
        HandlerOptions::default().concurrency(3),
    );
    let publisher = |reverse: bool| {
        let store = store.clone();
        tokio::spawn(async move {
            for round in 0..20u64 {
                let mut keys: Vec<u64> = (0..20).collect();
                if reverse {
                    keys.reverse();
                }
                // each publisher owns every other sequence number of a key
                let seq = round * 2 + u64::from(reverse);
                let msgs: Vec<_> = keys.iter().map(|k| ordered(*k, seq)).collect();
                store.publish_batch(msgs).await.expect("publish");
            }
        })
    };
    let (a, b2) = (publisher(false), publisher(true));
    a.await.unwrap();
    b2.await.unwrap();
    eventually(WAIT, "800 delivered", || async {
        handler.delivered().values().map(Vec::len).sum::<usize>() == 800
    })
    .await;
    stop(running).await;
    // the two publishers interleave, so a key's sequence numbers arrive in any order: what
    // must hold is one at a time
    let violations: Vec<String> = handler
        .violations()
        .into_iter()
        .filter(|v| v.contains("at once"))
        .collect();
    assert_eq!(violations, Vec::<String>::new());
}
