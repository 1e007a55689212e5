//! Publishing: single, bulk, idempotency keys, validation.

use std::time::Duration;

use conveyor::{Error, Message, Outcome, Published, Store};

use crate::support::{claim, complete, job_queue, jobs, stats_of, Backend, Job};

/// A single publish returns the new id; ids grow in publish order.
pub async fn publish_returns_increasing_ids<B: Backend>(b: &B) {
    let store = b.store(2).await;
    let first = store.publish(Job { n: 1 }).await.unwrap().id().unwrap();
    let second = store.publish(Job { n: 2 }).await.unwrap().id().unwrap();
    assert!(second > first);
    assert_eq!(stats_of(&store, &job_queue()).await.pending, 2);
}

/// A bulk publish of 10,000 events stores all of them and reports ids in input order.
pub async fn bulk_publish_stores_every_event_in_order<B: Backend>(b: &B) {
    let store = b.store(2).await;
    let report = store.publish_batch(jobs(10_000)).await.unwrap();
    let ids: Vec<_> = report.inserted().collect();
    assert_eq!(ids.len(), 10_000);
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids follow input order"
    );
    assert_eq!(report.duplicates(), 0);
    assert_eq!(stats_of(&store, &job_queue()).await.pending, 10_000);
}

/// A second publish with the same idempotency key is reported and not stored, whether it
/// comes later or in the same batch.
pub async fn duplicate_idempotency_key_is_reported_not_inserted<B: Backend>(b: &B) {
    let store = b.store(2).await;
    let keyed = |n, key: &str| Message::new(Job { n }).idempotency_key(key);
    let first = store.publish(keyed(1, "k1")).await.unwrap();
    let Published::Inserted(k1) = first else {
        panic!("the first publish is stored: {first:?}")
    };
    assert_eq!(
        store.publish(keyed(2, "k1")).await.unwrap(),
        Published::Duplicate(k1),
        "the duplicate names the event holding the key"
    );

    let report = store
        .publish_batch(vec![
            keyed(3, "k2"),
            keyed(4, "k1"),
            keyed(5, "k2"),
            Message::new(Job { n: 6 }),
        ])
        .await
        .unwrap();
    let kinds: Vec<bool> = report.results.iter().map(|p| p.id().is_some()).collect();
    assert_eq!(kinds, [true, false, false, true]);
    let k2 = report.results[0].id().unwrap();
    assert_eq!(report.results[1], Published::Duplicate(k1));
    assert_eq!(
        report.results[2],
        Published::Duplicate(k2),
        "same key earlier in the batch"
    );
    assert_eq!(stats_of(&store, &job_queue()).await.pending, 3);
}

/// An idempotency key outlives its event: it is refused after the event was delivered and
/// pruned (the duplicate names that event), accepted again once the store's window has
/// passed, and pruned itself after that.
pub async fn idempotency_keys_outlive_delivery_until_their_window_passes<B: Backend>(b: &B) {
    let window = Duration::from_millis(800);
    let store = B::with_key_window(b.store(2).await, window);
    let keyed = |n| Message::new(Job { n }).idempotency_key("order-1");
    let first = store.publish(keyed(1)).await.unwrap().id().unwrap();
    let held = claim(&store, &job_queue(), "w", 10).await;
    assert_eq!(held.len(), 1);
    complete(&store, "w", vec![(first, Outcome::Delivered)]).await;
    // past its delivery instant (SQLite keeps milliseconds: a prune in the same one keeps it)
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        store.prune(Duration::ZERO, 100).await.unwrap(),
        1,
        "the event is pruned"
    );
    assert_eq!(stats_of(&store, &job_queue()).await.delivered, 0);
    assert_eq!(
        store.publish(keyed(2)).await.unwrap(),
        Published::Duplicate(first),
        "refused after delivery and pruning"
    );
    let report = store.publish_batch(vec![keyed(3)]).await.unwrap();
    assert_eq!(report.results, [Published::Duplicate(first)]);
    assert_eq!(stats_of(&store, &job_queue()).await.pending, 0);

    tokio::time::sleep(window + Duration::from_millis(200)).await;
    let again = store.publish(keyed(4)).await.unwrap();
    let second = again.id().expect("accepted once the window has passed");
    assert_ne!(second, first);
    assert_eq!(
        store.publish(keyed(5)).await.unwrap(),
        Published::Duplicate(second)
    );
    assert_eq!(stats_of(&store, &job_queue()).await.pending, 1);

    // the second key's window passes too: pruning removes the key row (no event is old)
    tokio::time::sleep(window + Duration::from_millis(200)).await;
    assert_eq!(
        store.prune(Duration::from_secs(3600), 100).await.unwrap(),
        1
    );
}

/// An invalid payload is refused at publish with the field named, and nothing is stored.
pub async fn invalid_payload_is_refused_at_publish<B: Backend>(b: &B) {
    let store = b.store(2).await;
    let err = store
        .publish_batch(vec![Job { n: 1 }, Job { n: 2_000_000 }])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Validation { .. }), "{err}");
    assert!(err.to_string().contains('n'), "names the field: {err}");
    assert_eq!(stats_of(&store, &job_queue()).await.pending, 0);
}

/// A delayed event is stored but not claimable until its delay has passed.
pub async fn delayed_event_is_not_due_until_its_delay_passes<B: Backend>(b: &B) {
    let store = b.store(2).await;
    let delay = std::time::Duration::from_millis(600);
    store
        .publish(Message::new(Job { n: 1 }).delay(delay))
        .await
        .unwrap();
    assert_eq!(
        claim(&store, &job_queue(), "w", 10).await.len(),
        0,
        "not due yet"
    );
    tokio::time::sleep(delay + std::time::Duration::from_millis(100)).await;
    assert_eq!(
        claim(&store, &job_queue(), "w", 10).await.len(),
        1,
        "due after the delay"
    );
}

/// An event scheduled at an instant is not due before it and is due after it; one
/// scheduled in the past is due at once; the later of `delay` and `scheduled_at` wins.
pub async fn scheduled_event_is_due_at_its_instant<B: Backend>(b: &B) {
    let store = b.store(2).await;
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(600);
    store
        .publish(Message::new(Job { n: 1 }).scheduled_at(at))
        .await
        .unwrap();
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    store
        .publish(
            Message::new(Job { n: 2 })
                .delay(Duration::from_secs(3600))
                .scheduled_at(past),
        )
        .await
        .unwrap();
    store
        .publish(
            Message::new(Job { n: 3 })
                .scheduled_at(past)
                .delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let now: Vec<u64> = claim(&store, &job_queue(), "w", 10)
        .await
        .iter()
        .map(|e| serde_json::from_str::<Job>(&e.payload).unwrap().n)
        .collect();
    assert_eq!(now, [2], "only the one scheduled in the past is due");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let later = claim(&store, &job_queue(), "w", 10).await;
    assert_eq!(later.len(), 1, "due at its instant");
    assert_eq!(
        stats_of(&store, &job_queue()).await.pending,
        1,
        "the hour's delay waits"
    );
}

/// `begin` / `publish_in` / `commit` through the `Store` trait alone: nothing is visible
/// before the commit, everything after it; a dropped transaction publishes nothing.
pub async fn publish_in_commits_with_the_transaction<B: Backend>(b: &B) {
    let store = b.store(2).await;
    let mut tx = store.begin().await.unwrap();
    let one = store.publish_in(&mut tx, Job { n: 1 }).await.unwrap();
    let batch = store
        .publish_batch_in(&mut tx, vec![Job { n: 2 }, Job { n: 3 }])
        .await
        .unwrap();
    assert!(one.id().is_some());
    assert_eq!(batch.inserted().count(), 2);
    let before = stats_of(&store, &job_queue()).await.pending;
    assert_eq!(before, 0, "invisible before the commit");
    store.commit(tx).await.unwrap();
    assert_eq!(stats_of(&store, &job_queue()).await.pending, 3);

    let mut tx = store.begin().await.unwrap();
    store.publish_in(&mut tx, Job { n: 4 }).await.unwrap();
    drop(tx);
    assert_eq!(
        stats_of(&store, &job_queue()).await.pending,
        3,
        "rolled back"
    );
}
