//! Dead heads of ordering keys: parked keys, skipping and replaying them, and the skip
//! policy.

use std::time::Duration;

use conveyor::{DeadHead, HandlerOptions, Store};

use crate::ordering::{ordered, Sequencer, WAIT};
use crate::support::{eventually, job_queue, spawn_with, stats_of, stop, Backend};

/// A head that dies parks its key under `DeadHead::Park`: the events behind it wait, other
/// keys flow, the key is listed, and skipping it lets the rest run. Replaying a parked key's
/// dead head puts it back at the head and unparks the key.
pub async fn a_dead_head_parks_its_key_until_skipped_or_replayed<B: Backend>(b: &B) {
    let store = b.store(4).await;
    let handler = Sequencer::default();
    // keys 1 and 2 have dead heads (job 1 and job 2); key 3 flows
    *handler.fail.lock().unwrap() = vec![1, 2];
    let mut msgs = Vec::new();
    for seq in 0..3 {
        for key in 1..=3 {
            msgs.push(ordered(key, seq));
        }
    }
    store.publish_batch(msgs).await.unwrap();
    let running = spawn_with(
        &store,
        handler.clone(),
        HandlerOptions::default().on_dead_head(DeadHead::Park),
    );
    eventually(WAIT, "two keys parked, key 3 done", || async {
        store.parked_keys(None, 10).await.unwrap().len() == 2
            && handler.delivered().get(&3).is_some_and(|v| v.len() == 3)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        handler.delivered().get(&1),
        None,
        "nothing behind key 1's dead head ran"
    );
    let parked = store.parked_keys(Some(&job_queue()), 10).await.unwrap();
    let keys: Vec<&str> = parked.iter().map(|p| p.ordering_key.as_str()).collect();
    assert_eq!(keys, ["k1", "k2"]);
    assert_eq!(parked[0].queue, job_queue());
    let s = stats_of(&store, &job_queue()).await;
    assert_eq!((s.dead, s.pending), (2, 4), "{s:?}");
    assert_eq!((s.waiting, s.parked_keys), (4, 2), "{s:?}");
    // what an operator sees of an event held behind a parked key
    let behind = store
        .events(&conveyor::EventFilter {
            status: Some(conveyor::EventStatus::Waiting),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(behind.events.len(), 4);
    assert_eq!(behind.events[0].ordering_key.as_deref(), Some("k1"));

    // skip key 1: its dead head stays dead, the rest runs
    let head = store.skip_key(&job_queue(), "k1").await.unwrap();
    assert_eq!(head, Some(parked[0].event_id));
    assert_eq!(
        store.skip_key(&job_queue(), "k1").await.unwrap(),
        None,
        "no longer parked"
    );
    eventually(WAIT, "key 1's rest", || async {
        handler.delivered().get(&1).is_some_and(|v| v == &[1, 2])
    })
    .await;

    // replay key 2's head, now succeeding: it runs first, then the rest, in order
    handler.fail.lock().unwrap().clear();
    assert_eq!(store.replay(&[parked[1].event_id]).await.unwrap(), 1);
    eventually(WAIT, "key 2 in order", || async {
        handler.delivered().get(&2).is_some_and(|v| v == &[0, 1, 2])
    })
    .await;
    stop(running).await;
    assert!(store.parked_keys(None, 10).await.unwrap().is_empty());
    assert_eq!(stats_of(&store, &job_queue()).await.parked_keys, 0);
    assert_eq!(handler.violations(), Vec::<String>::new());
}

/// Under `DeadHead::Skip` a dead head goes to the dead letters and its key moves on.
pub async fn a_dead_head_under_skip_moves_on<B: Backend>(b: &B) {
    let store = b.store(4).await;
    let handler = Sequencer::default();
    *handler.fail.lock().unwrap() = vec![1];
    store
        .publish_batch((0..3).map(|seq| ordered(1, seq)))
        .await
        .unwrap();
    let running = spawn_with(
        &store,
        handler.clone(),
        HandlerOptions::default().on_dead_head(DeadHead::Skip),
    );
    eventually(WAIT, "the rest of the key", || async {
        handler.delivered().get(&1).is_some_and(|v| v == &[1, 2])
    })
    .await;
    stop(running).await;
    assert!(store.parked_keys(None, 10).await.unwrap().is_empty());
    assert_eq!(stats_of(&store, &job_queue()).await.dead, 1);
}
