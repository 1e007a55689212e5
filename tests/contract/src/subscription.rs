//! Several subscribers per event type: copies per subscription, recorded in the database.

use std::time::Duration;

use conveyor::{Error, HandlerOptions, Message, Published, Queue, Store, WorkerPool};

use crate::support::{
    eventually, job_queue, jobs, spawn, spawn_with, stats_of, stop, Backend, Log, PerItem, Recorder,
};

/// The job queue of subscription `name`.
fn sub(name: &str) -> Queue {
    job_queue().in_subscription(name)
}

/// A pool of one [`Recorder`] per name in `subs`, each under that subscription, and their logs.
fn pool_of<S: Store>(store: &S, subs: &[&str]) -> (WorkerPool<S>, Vec<Log>) {
    let mut builder = WorkerPool::builder(store.clone());
    let mut logs = Vec::new();
    for name in subs {
        let recorder = Recorder::<10>::default();
        logs.push(recorder.log.clone());
        builder = builder.register_with(recorder, HandlerOptions::default().subscription(*name));
    }
    (builder.build().expect("a valid pool"), logs)
}

/// Two handlers of one event type under two subscriptions each handle every event once,
/// with a copy (and an id) of their own; the publish reports the first copy's id.
pub async fn every_subscription_gets_every_event<B: Backend>(b: &B) {
    let store = b.store(8).await;
    let (pool, logs) = pool_of(&store, &["billing", "email"]);
    pool.subscribe().await.unwrap();
    let report = store.publish_batch(jobs(20)).await.unwrap();
    assert_eq!(report.inserted().count(), 20, "one result per message");
    let running = spawn(pool);
    eventually(
        Duration::from_secs(10),
        "both subscriptions drained",
        || async { logs.iter().all(|l| l.distinct() == 20) },
    )
    .await;
    stop(running).await;
    for log in &logs {
        assert!(log.handled().values().all(|&n| n == 1), "each copy once");
        let mut ns: Vec<u64> = log.batches().concat().iter().map(|(_, n, _)| *n).collect();
        ns.sort_unstable();
        assert_eq!(ns, (0..20).collect::<Vec<_>>(), "every job");
    }
    let billing: Vec<_> = logs[0].handled().into_keys().collect();
    assert!(
        billing.iter().all(|id| !logs[1].handled().contains_key(id)),
        "each subscription has copies of its own"
    );
    let first = report.inserted().next().unwrap();
    let copy = store.event(first).await.unwrap().unwrap();
    assert_eq!(copy.queue, sub("billing"), "the first copy, by name");
    assert_eq!(
        stats_of(&store, &job_queue()).await.pending,
        0,
        "no default copy"
    );
}

/// A subscription recorded by a pool that is not running still gets a copy of every event
/// published meanwhile, and its handler gets them when it starts.
pub async fn a_recorded_subscription_gets_copies_while_its_process_is_down<B: Backend>(b: &B) {
    let store = b.store(8).await;
    let (audit, audit_logs) = pool_of(&store, &["audit"]);
    audit.subscribe().await.unwrap();
    drop(audit);
    let (live, live_logs) = pool_of(&store, &["live"]);
    let running = spawn(live);
    eventually(Duration::from_secs(5), "live recorded", || async {
        store.subscriptions().await.unwrap().len() == 2
    })
    .await;
    store.publish_batch(jobs(5)).await.unwrap();
    eventually(Duration::from_secs(10), "live handled", || async {
        live_logs[0].distinct() == 5
    })
    .await;
    stop(running).await;
    assert_eq!(
        stats_of(&store, &sub("audit")).await.pending,
        5,
        "kept for audit"
    );

    let recorder = Recorder::<10>::default();
    let log = recorder.log.clone();
    let running = spawn_with(
        &store,
        recorder,
        HandlerOptions::default().subscription("audit"),
    );
    eventually(Duration::from_secs(10), "audit caught up", || async {
        log.distinct() == 5
    })
    .await;
    stop(running).await;
    assert_eq!(audit_logs[0].distinct(), 0);
    let subs = store.subscriptions().await.unwrap();
    assert!(
        subs.iter().all(|s| s.handler.contains("Recorder")),
        "{subs:?}"
    );
}

/// A subscription that fails dead-letters its own copies; the other delivers its copies.
pub async fn a_failing_subscription_leaves_the_others_alone<B: Backend>(b: &B) {
    let store = b.store(8).await;
    let ok = Recorder::<10>::default();
    let log = ok.log.clone();
    let failing = PerItem::<_, 10>(
        |_: &conveyor::Item<crate::support::Job>, _: &mut conveyor::Context<'_, B::S>| {
            Err(conveyor::HandlerError::fail("no such account"))
        },
    );
    let pool = WorkerPool::builder(store.clone())
        .register_with(ok, HandlerOptions::default().subscription("ok"))
        .register_with(failing, HandlerOptions::default().subscription("failing"))
        .build()
        .unwrap();
    pool.subscribe().await.unwrap();
    store.publish_batch(jobs(4)).await.unwrap();
    let running = spawn(pool);
    eventually(Duration::from_secs(10), "both settled", || async {
        log.distinct() == 4 && stats_of(&store, &sub("failing")).await.dead == 4
    })
    .await;
    stop(running).await;
    let dead = store
        .dead_letters(Some(&sub("failing")), None, 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 4);
    assert!(dead.iter().all(|d| d.queue == sub("failing")));
    assert!(store
        .dead_letters(Some(&sub("ok")), None, 10)
        .await
        .unwrap()
        .is_empty());
}

/// Two handlers on one subscription are a build error; the same handler type under two
/// subscriptions is not; a name with control characters is refused.
pub async fn two_handlers_on_one_subscription_are_a_build_error<B: Backend>(b: &B) {
    let store = b.store(2).await;
    let on = |name: &str| HandlerOptions::default().subscription(name);
    let err = WorkerPool::builder(store.clone())
        .register_with(Recorder::<1>::default(), on("billing"))
        .register_with(Recorder::<2>::default(), on("billing"))
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    assert!(err.to_string().contains("contract.job@billing"), "{err}");
    WorkerPool::builder(store.clone())
        .register_with(Recorder::<1>::default(), on("billing"))
        .register_with(Recorder::<1>::default(), on("email"))
        .register(Recorder::<1>::default())
        .build()
        .expect("three subscriptions");
    let err = WorkerPool::builder(store.clone())
        .register_with(Recorder::<1>::default(), on("bad\u{1f}name"))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("subscription"), "{err}");
    let err = store
        .publish(Message::new(crate::support::Job { n: 1 }).routing_key("a\u{1f}b"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("routing_key"), "{err}");
}

/// Removing a subscription deletes its pending copies and stops new ones; removing one that
/// is not recorded says so. Routing keys keep selecting their own subscriptions.
pub async fn unsubscribe_removes_a_subscription_and_its_pending_copies<B: Backend>(b: &B) {
    let store = b.store(4).await;
    let (pool, _) = pool_of(&store, &["a", "b"]);
    pool.subscribe().await.unwrap();
    store.publish_batch(jobs(3)).await.unwrap();
    assert_eq!(stats_of(&store, &sub("b")).await.pending, 3);

    assert_eq!(store.unsubscribe(&sub("b")).await.unwrap(), Some(3));
    assert_eq!(store.unsubscribe(&sub("b")).await.unwrap(), None, "gone");
    assert_eq!(store.unsubscribe(&sub("nobody")).await.unwrap(), None);
    let names: Vec<Queue> = store
        .subscriptions()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.queue)
        .collect();
    assert_eq!(names, vec![sub("a")]);
    store.publish_batch(jobs(2)).await.unwrap();
    assert_eq!(stats_of(&store, &sub("a")).await.pending, 5);
    assert_eq!(stats_of(&store, &sub("b")).await.pending, 0);

    // a routed event reaches only the subscriptions of its routing key: none here, so the
    // default copy keeps it, as before subscriptions existed
    store
        .publish(Message::new(crate::support::Job { n: 9 }).routing_key("r"))
        .await
        .unwrap();
    let routed = Queue::new(<crate::support::Job as conveyor::Event>::NAME, Some("r"));
    assert_eq!(stats_of(&store, &routed).await.pending, 1);
    assert_eq!(stats_of(&store, &sub("a")).await.pending, 5);

    // a duplicate key stores no copy at all
    let key = |n| Message::new(crate::support::Job { n }).idempotency_key("once");
    let first = store.publish(key(1)).await.unwrap();
    let again = store.publish(key(2)).await.unwrap();
    assert_eq!(again, Published::Duplicate(first.id().unwrap()));
    assert_eq!(stats_of(&store, &sub("a")).await.pending, 6);
}
