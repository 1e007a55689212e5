//! Priorities: higher first within a queue, due-time order within a level, fairness groups
//! still round-robin, aging against starvation, range checks, delays still respected.

use std::time::Duration;

use conveyor::{ClaimRequest, ClaimedEvent, HandlerOptions, Message, Store};

use crate::support::{complete, eventually, job_queue, spawn_with, stop, Backend, Job, Recorder};

/// Claim up to `limit` events of the job queue for worker `w`, with `aging`.
async fn claim_aging<S: Store>(store: &S, limit: usize, aging: Duration) -> Vec<ClaimedEvent> {
    store
        .claim(ClaimRequest {
            queue: &job_queue(),
            worker: "w",
            limit,
            lease: Duration::from_secs(30),
            fairness_cursor: "",
            priority_aging: aging,
        })
        .await
        .expect("claim")
}

/// The job numbers of a claimed batch, in claim order.
fn numbers(batch: &[ClaimedEvent]) -> Vec<u64> {
    batch
        .iter()
        .map(|e| serde_json::from_str::<Job>(&e.payload).unwrap().n)
        .collect()
}

/// A job numbered `n` at `priority`.
fn at(n: u64, priority: i16) -> Message<Job> {
    Message::new(Job { n }).priority(priority)
}

const MINUTE: Duration = Duration::from_secs(60);

/// Within a queue the highest priority is claimed first, whatever the publish order; the
/// batch comes in that order, ties by publish order.
pub async fn higher_priority_is_claimed_first<B: Backend>(b: &B) {
    let store = b.store(2).await;
    let msgs = vec![at(1, -5), at(2, 0), at(3, 5), at(4, -5), at(5, 0), at(6, 5)];
    store.publish_batch(msgs).await.unwrap();
    assert_eq!(numbers(&claim_aging(&store, 2, MINUTE).await), [3, 6]);
    assert_eq!(numbers(&claim_aging(&store, 3, MINUTE).await), [2, 5, 1]);
    assert_eq!(numbers(&claim_aging(&store, 10, MINUTE).await), [4]);

    store
        .publish_batch(vec![
            at(7, conveyor::PRIORITY_MIN),
            at(8, 1),
            at(9, conveyor::PRIORITY_MAX),
        ])
        .await
        .unwrap();
    assert_eq!(
        numbers(&claim_aging(&store, 10, MINUTE).await),
        [9, 8, 7],
        "one batch holds every level, highest first"
    );
}

/// Events of one priority keep the due-time order (due time, then id), not the publish order.
pub async fn equal_priority_keeps_due_time_order<B: Backend>(b: &B) {
    let store = b.store(2).await;
    let delayed = |n, ms| at(n, 3).delay(Duration::from_millis(ms));
    store
        .publish_batch(vec![delayed(1, 400), delayed(2, 0), delayed(3, 200)])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(numbers(&claim_aging(&store, 10, MINUTE).await), [2, 3, 1]);
}

/// Fairness groups still get equal shares of a batch whatever their priorities: a group of
/// top-priority events does not crowd out a group of lowest-priority ones.
pub async fn fairness_groups_round_robin_with_priorities<B: Backend>(b: &B) {
    let store = b.store(2).await;
    let group = |key: &'static str, base: u64, n: u64, priority: i16| {
        (0..n).map(move |i| at(base + i, priority).fairness_key(key))
    };
    let msgs: Vec<_> = group("a", 0, 100, 10)
        .chain(group("b", 1_000, 10, -10))
        .chain(group("c", 2_000, 10, 0))
        .collect();
    store.publish_batch(msgs).await.unwrap();
    let batch = claim_aging(&store, 30, MINUTE).await;
    let count = |g: &str| batch.iter().filter(|e| e.fairness_key == g).count();
    assert_eq!((count("a"), count("b"), count("c")), (10, 10, 10));
    let keys: Vec<&str> = batch.iter().map(|e| e.fairness_key.as_str()).collect();
    let expected: Vec<&str> = ["a", "c", "b"].iter().flat_map(|g| [*g; 10]).collect();
    assert_eq!(
        keys, expected,
        "the batch is in priority order across groups"
    );
}

/// Aging: an event due for longer than the aging is claimed before fresher events of any
/// priority, oldest first; under a long aging the same events go by priority.
pub async fn aged_events_are_claimed_before_fresh_high_priority<B: Backend>(b: &B) {
    let store = b.store(2).await;
    store.publish(at(1, -10)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    store.publish(at(2, -3)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    store
        .publish_batch(vec![at(3, 10), at(4, 10), at(5, 10)])
        .await
        .unwrap();

    let strict = claim_aging(&store, 3, MINUTE).await;
    assert_eq!(numbers(&strict), [3, 4, 5], "not aged yet: by priority");
    let ids: Vec<_> = strict.iter().map(|e| e.id).collect();
    store.release("w", &ids, true).await.unwrap();

    let aged = claim_aging(&store, 3, Duration::from_millis(300)).await;
    assert_eq!(
        numbers(&aged),
        [1, 2, 3],
        "the aged low-priority events first, oldest first, then by priority"
    );
}

/// `HandlerOptions::priority_aging` reaches the claim: a pool with a short aging handles an
/// old low-priority event before fresh high-priority ones.
pub async fn handler_options_set_the_priority_aging<B: Backend>(b: &B) {
    let store = b.store(6).await;
    store.publish(at(1, conveyor::PRIORITY_MIN)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    store
        .publish_batch(vec![at(2, 10), at(3, 10)])
        .await
        .unwrap();
    let recorder = Recorder::<1>::default();
    let log = recorder.log.clone();
    let options = HandlerOptions::default().priority_aging(Duration::from_millis(300));
    let running = spawn_with(&store, recorder, options);
    eventually(Duration::from_secs(10), "3 jobs handled", || {
        let log = log.clone();
        async move { log.distinct() == 3 }
    })
    .await;
    stop(running).await;
    let order: Vec<u64> = log.batches().iter().map(|b| b[0].1).collect();
    assert_eq!(order, [1, 2, 3]);
}

/// A priority out of range is refused at publish with an error naming `priority` and the
/// range; the bounds themselves are accepted, and one bad message refuses its whole batch.
pub async fn priority_out_of_range_is_refused_at_publish<B: Backend>(b: &B) {
    let store = b.store(2).await;
    for bad in [11, -11, i16::MAX, i16::MIN] {
        let err = store.publish(at(1, bad)).await.unwrap_err();
        assert!(matches!(err, conveyor::Error::Validation { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("priority"), "{text}");
        assert!(text.contains("-10..=10"), "{text}");
    }
    let err = store
        .publish_batch(vec![at(1, 0), at(2, 42)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("priority"), "{err}");
    assert!(
        claim_aging(&store, 10, MINUTE).await.is_empty(),
        "nothing stored"
    );

    store
        .publish_batch(vec![
            at(3, conveyor::PRIORITY_MAX),
            at(4, conveyor::PRIORITY_MIN),
        ])
        .await
        .unwrap();
    assert_eq!(numbers(&claim_aging(&store, 10, MINUTE).await), [3, 4]);
}

/// A delayed high-priority event is not claimed before it is due, however high its priority;
/// once due it goes first.
pub async fn delayed_high_priority_events_wait_until_due<B: Backend>(b: &B) {
    let store = b.store(2).await;
    store
        .publish_batch(vec![
            at(1, 10).delay(Duration::from_millis(600)),
            at(2, -10),
            at(3, -10),
        ])
        .await
        .unwrap();
    assert_eq!(numbers(&claim_aging(&store, 1, MINUTE).await), [2]);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(numbers(&claim_aging(&store, 1, MINUTE).await), [1]);
    assert_eq!(numbers(&claim_aging(&store, 1, MINUTE).await), [3]);
}

/// Priorities order the events free to run, never a key's own order: a key's later,
/// higher-priority event waits behind its head, while among heads the higher priority is
/// claimed first.
pub async fn priorities_apply_among_ordering_key_heads<B: Backend>(b: &B) {
    let store = b.store(2).await;
    let keyed = |n: u64, key: &str, priority: i16| at(n, priority).ordering_key(key);
    store
        .publish_batch([
            keyed(1, "a", -5),
            keyed(2, "a", 9),
            keyed(3, "b", 5),
            at(4, 0),
        ])
        .await
        .unwrap();
    let first = claim_aging(&store, 10, MINUTE).await;
    assert_eq!(
        numbers(&first),
        [3, 4, 1],
        "heads by priority; 2 waits behind 1"
    );
    let outcomes = first
        .iter()
        .map(|e| (e.id, conveyor::Outcome::Delivered))
        .collect();
    complete(&store, "w", outcomes).await;
    assert_eq!(numbers(&claim_aging(&store, 10, MINUTE).await), [2]);
}
