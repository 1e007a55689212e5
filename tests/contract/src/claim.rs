//! Claiming: leases, routing keys, exactly-once under contention, round-robin fairness.

use std::collections::HashSet;
use std::time::Duration;

use conveyor::{ClaimRequest, Completion, Message, Outcome, Queue, Store};

use crate::support::{claim, grouped, job_queue, jobs, stats_of, Backend, Job};

/// A claim takes at most `limit` events, counts the attempt, and a second claim skips them.
pub async fn claim_takes_up_to_limit_and_holds_them<B: Backend>(b: &B) {
    let store = b.store(2).await;
    store.publish_batch(jobs(5)).await.unwrap();
    let first = claim(&store, &job_queue(), "w1", 3).await;
    assert_eq!(first.len(), 3);
    assert!(first.iter().all(|e| e.attempts == 1));
    let second = claim(&store, &job_queue(), "w2", 10).await;
    assert_eq!(second.len(), 2, "claimed events are not handed out twice");
    let stats = stats_of(&store, &job_queue()).await;
    assert_eq!((stats.pending, stats.in_flight), (0, 5));
}

/// A handler's routing key selects only the events published with it.
pub async fn routing_key_selects_its_events_only<B: Backend>(b: &B) {
    let store = b.store(2).await;
    store
        .publish_batch(vec![
            Message::new(Job { n: 1 }).routing_key("raw"),
            Message::new(Job { n: 2 }).routing_key("rollup"),
            Message::new(Job { n: 3 }),
        ])
        .await
        .unwrap();
    let raw = claim(&store, &Queue::new("contract.job", Some("raw")), "w", 10).await;
    assert_eq!(raw.len(), 1);
    assert_eq!(serde_json::from_str::<Job>(&raw[0].payload).unwrap().n, 1);
    let plain = claim(&store, &job_queue(), "w", 10).await;
    assert_eq!(plain.len(), 1);
    assert_eq!(serde_json::from_str::<Job>(&plain[0].payload).unwrap().n, 3);
}

/// Completing for a worker that no longer holds the events changes nothing and says so.
pub async fn completion_by_another_worker_is_refused<B: Backend>(b: &B) {
    let store = b.store(2).await;
    store.publish(Job { n: 1 }).await.unwrap();
    let held = claim(&store, &job_queue(), "owner", 1).await;
    let err = store
        .complete(
            None,
            &Completion {
                worker: "intruder".into(),
                outcomes: vec![(held[0].id, Outcome::Delivered)],
                emitted: vec![],
                delete_delivered: false,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, conveyor::Error::LeaseLost { .. }), "{err}");
    assert_eq!(stats_of(&store, &job_queue()).await.in_flight, 1);
}

/// 8 concurrent claimers over 10,000 events: every event is claimed exactly once.
pub async fn concurrent_claimers_claim_each_event_exactly_once<B: Backend>(b: &B) {
    let store = b.store(12).await;
    store.publish_batch(jobs(10_000)).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let worker = format!("claimer-{w}");
            let mut mine = Vec::new();
            loop {
                let batch = claim(&store, &job_queue(), &worker, 50).await;
                if batch.is_empty() {
                    return mine;
                }
                let outcomes = batch.iter().map(|e| (e.id, Outcome::Delivered)).collect();
                store
                    .complete(
                        None,
                        &Completion {
                            worker: worker.clone(),
                            outcomes,
                            emitted: vec![],
                            delete_delivered: false,
                        },
                    )
                    .await
                    .unwrap();
                mine.extend(batch.into_iter().map(|e| e.id));
            }
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for task in tasks {
        for id in task.await.unwrap() {
            total += 1;
            assert!(seen.insert(id), "event {id} claimed twice");
        }
    }
    assert_eq!(total, 10_000);
    let stats = stats_of(&store, &job_queue()).await;
    assert_eq!(
        (stats.pending, stats.in_flight, stats.delivered),
        (0, 0, 10_000)
    );
}

/// With a large backlog in one fairness group, a claim still serves the other group.
pub async fn claim_round_robins_across_fairness_groups<B: Backend>(b: &B) {
    let store = b.store(2).await;
    store.publish_batch(grouped("a", 1_000)).await.unwrap();
    store.publish_batch(grouped("b", 10)).await.unwrap();
    store.publish_batch(grouped("c", 10)).await.unwrap();
    let batch = claim(&store, &job_queue(), "w", 30).await;
    let count = |g: &str| batch.iter().filter(|e| e.fairness_key == g).count();
    assert_eq!((count("a"), count("b"), count("c")), (10, 10, 10));
}

/// With more fairness groups than a batch holds, successive claims rotate through all of them.
pub async fn fairness_cursor_rotates_through_many_groups<B: Backend>(b: &B) {
    let store = b.store(2).await;
    let msgs: Vec<_> = (0..40u64)
        .flat_map(|g| {
            (0..3).map(move |i| Message::new(Job { n: i }).fairness_key(format!("g{g:02}")))
        })
        .collect();
    store.publish_batch(msgs).await.unwrap();
    let mut cursor = String::new();
    let mut groups = HashSet::new();
    for _ in 0..4 {
        let batch = store
            .claim(ClaimRequest {
                queue: &job_queue(),
                worker: "w",
                limit: 10,
                lease: Duration::from_secs(30),
                fairness_cursor: &cursor,
                priority_aging: Duration::from_secs(60),
            })
            .await
            .unwrap();
        assert_eq!(batch.len(), 10);
        let keys: HashSet<_> = batch.iter().map(|e| e.fairness_key.clone()).collect();
        assert_eq!(
            keys.len(),
            10,
            "one event per group when groups outnumber the batch"
        );
        cursor = keys.iter().max().unwrap().clone();
        groups.extend(keys);
    }
    assert_eq!(
        groups.len(),
        40,
        "four claims of ten visit all forty groups"
    );
}

/// With `delete_delivered` (a pool whose delivered retention is zero), a completion deletes
/// its delivered events and gives retried and dead ones their states as usual; a pool so
/// configured drains without leaving delivered rows.
pub async fn completion_can_delete_delivered_events<B: Backend>(b: &B) {
    let store = b.store(8).await;
    store.publish_batch(jobs(3)).await.unwrap();
    let held = claim(&store, &job_queue(), "w", 3).await;
    let retry = Outcome::Retry {
        delay: Duration::from_secs(3600),
        error: "later".into(),
    };
    let dead = Outcome::Dead {
        error: "never".into(),
    };
    store
        .complete(
            None,
            &Completion {
                worker: "w".into(),
                outcomes: vec![
                    (held[0].id, Outcome::Delivered),
                    (held[1].id, retry),
                    (held[2].id, dead),
                ],
                emitted: vec![],
                delete_delivered: true,
            },
        )
        .await
        .unwrap();
    let s = stats_of(&store, &job_queue()).await;
    assert_eq!((s.delivered, s.pending, s.dead, s.in_flight), (0, 1, 1, 0));

    store.publish_batch(jobs(20)).await.unwrap();
    let handler = crate::support::Recorder::<5>::default();
    let log = handler.log.clone();
    let running = crate::support::spawn(
        conveyor::WorkerPool::builder(store.clone())
            .register(handler)
            .delivered_retention(Duration::ZERO)
            .build()
            .unwrap(),
    );
    crate::support::eventually(Duration::from_secs(10), "20 jobs handled", || {
        let log = log.clone();
        async move { log.distinct() == 20 }
    })
    .await;
    crate::support::stop(running).await;
    let s = stats_of(&store, &job_queue()).await;
    assert_eq!((s.delivered, s.pending, s.dead, s.in_flight), (0, 1, 1, 0));
}

/// A large claim returns every field as a small one does (SQLite reads a claim of more than
/// a few events back as one JSON row, a small one row by row).
pub async fn a_large_claim_returns_what_a_small_one_does<B: Backend>(b: &B) {
    let store = b.store(2).await;
    let correlation = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    let started = chrono::Utc::now() - chrono::Duration::seconds(5);
    for (queue, n) in [("small", 3u64), ("large", 40)] {
        let msgs: Vec<Message<Job>> = (0..n)
            .map(|n| {
                Message::new(Job { n })
                    .routing_key(queue)
                    .fairness_key("tenant \"é\"")
                    .correlation_id(correlation)
            })
            .collect();
        store.publish_batch(msgs).await.unwrap();
        let claimed = claim(&store, &Queue::new("contract.job", Some(queue)), "w", 100).await;
        let mut seen: Vec<u64> = claimed
            .iter()
            .map(|e| serde_json::from_str::<Job>(&e.payload).unwrap().n)
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..n).collect::<Vec<_>>(), "{queue}");
        for e in &claimed {
            assert_eq!(e.attempts, 1, "{queue}: {e:?}");
            assert_eq!(e.fairness_key, "tenant \"é\"", "{queue}: {e:?}");
            assert_eq!(e.correlation_id, Some(correlation), "{queue}: {e:?}");
            assert_eq!(
                (e.causation_id, &e.last_error, &e.ordering_key),
                (None, &None, &None),
                "{queue}: {e:?}"
            );
            assert!(
                e.created_at > started && e.due_at >= e.created_at,
                "{queue}: {e:?}"
            );
        }
        let s = stats_of(&store, &Queue::new("contract.job", Some(queue))).await;
        assert_eq!((s.pending, s.in_flight), (0, n as i64), "{queue}");
    }
}
