//! Operator controls: pause/resume, dead letters, stats, and namespace isolation.

use std::time::Duration;

use conveyor::{Store, WorkerPool};

use crate::support::{
    claim, complete, eventually, job_queue, jobs, spawn, spawn_one, stats_of, stop, Backend,
    Recorder,
};

/// A paused queue is not claimed by any pool; resuming restarts it at once.
pub async fn pause_stops_claiming_and_resume_restarts_it<B: Backend>(b: &B) {
    let store = b.store(6).await;
    store.pause(&job_queue()).await.unwrap();
    store.publish_batch(jobs(10)).await.unwrap();
    let handler = Recorder::<10>::default();
    let log = handler.log.clone();
    // a second store (another process, as far as the pause table is concerned)
    let other = b.store(6).await;
    let running = spawn_one(&other, handler);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(log.distinct(), 0, "paused: nothing claimed");
    let s = stats_of(&store, &job_queue()).await;
    assert!(s.paused);
    assert_eq!(s.pending, 10);

    store.resume(&job_queue()).await.unwrap();
    eventually(Duration::from_secs(5), "handled after resume", || async {
        log.distinct() == 10
    })
    .await;
    stop(running).await;
    assert!(!stats_of(&store, &job_queue()).await.paused);
}

/// Dead letters can be listed with a cursor, replayed with a fresh budget, and purged.
pub async fn dead_letters_list_replay_and_purge<B: Backend>(b: &B) {
    let store = b.store(4).await;
    store.publish_batch(jobs(5)).await.unwrap();
    let batch = claim(&store, &job_queue(), "w", 5).await;
    let outcomes = batch
        .iter()
        .map(|e| {
            (
                e.id,
                conveyor::Outcome::Dead {
                    error: format!("bad {}", e.id),
                },
            )
        })
        .collect();
    complete(&store, "w", outcomes).await;

    let page1 = store
        .dead_letters(Some(&job_queue()), None, 3)
        .await
        .unwrap();
    let page2 = store
        .dead_letters(Some(&job_queue()), Some(page1[2].id), 3)
        .await
        .unwrap();
    assert_eq!((page1.len(), page2.len()), (3, 2));
    assert!(page1[2].id < page2[0].id);
    assert_eq!(
        page1[0].last_error.as_deref(),
        Some(format!("bad {}", page1[0].id).as_str())
    );

    assert_eq!(store.replay(&[page1[0].id, page1[1].id]).await.unwrap(), 2);
    let s = stats_of(&store, &job_queue()).await;
    assert_eq!(
        (s.dead, s.pending, s.retrying),
        (3, 2, 0),
        "replayed with attempts reset"
    );

    assert_eq!(store.purge_dead(Some(&job_queue())).await.unwrap(), 3);
    assert_eq!(stats_of(&store, &job_queue()).await.dead, 0);
}

/// Nothing of one namespace is claimed, counted or listed through another.
pub async fn namespaces_are_isolated<B: Backend>(b: &B) {
    let a = b.store_in(2, "tenant-a").await;
    let other = b.store_in(2, "tenant-b").await;
    a.publish_batch(jobs(3)).await.unwrap();
    let claimed = claim(&other, &job_queue(), "w", 10).await;
    assert!(claimed.is_empty(), "claimed across namespaces");
    assert!(
        other.stats().await.unwrap().is_empty(),
        "counted across namespaces"
    );
    other.pause(&job_queue()).await.unwrap();
    assert!(
        !stats_of(&a, &job_queue()).await.paused,
        "paused across namespaces"
    );
    assert_eq!(stats_of(&a, &job_queue()).await.pending, 3);
}

/// Delivered events are pruned once past the retention window.
pub async fn delivered_events_are_pruned_after_retention<B: Backend>(b: &B) {
    let store = b.store(6).await;
    store.publish_batch(jobs(20)).await.unwrap();
    let pool = WorkerPool::builder(store.clone())
        .register(Recorder::<10>::default())
        .delivered_retention(Duration::from_millis(300))
        .maintenance_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let running = spawn(pool);
    eventually(
        Duration::from_secs(10),
        "delivered and then pruned",
        || async {
            let s = stats_of(&store, &job_queue()).await;
            s.pending == 0 && s.in_flight == 0 && s.delivered == 0
        },
    )
    .await;
    stop(running).await;
}
