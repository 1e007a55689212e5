//! Stats reads of one store keep the probes of queues that did not change (see the
//! framework's `store::stats_cache`); these cases check the reads stay exact anyway: a
//! delayed event comes due with no write at all, and a claim-and-snooze cycle leaves every
//! count as it was while moving the events' due time.

use std::time::Duration;

use conveyor::{Message, Outcome, Store};

use crate::support::{claim, complete, job_queue, stats_of, Backend, Job};

/// How long the delayed event waits.
const DELAY: Duration = Duration::from_millis(1200);

/// A store's repeated reads: a delayed event comes due with no write, and a claim-and-snooze
/// cycle nobody read moves both events to scheduled though every counter is as it was.
pub async fn stats_follow_the_clock_and_every_change<B: Backend>(b: &B) {
    let store = b.store(2).await;
    store
        .publish_batch(vec![
            Message::new(Job { n: 1 }),
            Message::new(Job { n: 2 }).delay(DELAY),
        ])
        .await
        .unwrap();
    // folded into the base rows (Postgres), so later reads see no deltas of these writes
    store.compact_counters().await.unwrap();
    let q = job_queue();
    for read in ["first read", "second read, nothing changed"] {
        let s = stats_of(&store, &q).await;
        assert_eq!((s.pending, s.due, s.scheduled), (2, 1, 1), "{read}: {s:?}");
    }

    // no write: the delayed event comes due by the clock alone
    tokio::time::sleep(DELAY + Duration::from_millis(200)).await;
    let s = stats_of(&store, &q).await;
    assert_eq!(
        (s.pending, s.due, s.scheduled),
        (2, 2, 0),
        "came due: {s:?}"
    );
    assert!(s.oldest_due_age_secs >= DELAY.as_secs_f64(), "{s:?}");

    // claimed and snoozed, unread in between: every counter is back where it was (the
    // attempt is taken back), but nothing is due for a minute
    let held = claim(&store, &q, "w", 10).await;
    assert_eq!(held.len(), 2);
    let snoozed = held
        .iter()
        .map(|e| {
            let delay = Duration::from_secs(60);
            (e.id, Outcome::Snoozed { delay })
        })
        .collect();
    complete(&store, "w", snoozed).await;
    let s = stats_of(&store, &q).await;
    assert_eq!(
        (s.pending, s.due, s.scheduled, s.in_flight, s.retrying),
        (2, 0, 2, 0, 0),
        "snoozed: {s:?}"
    );
    assert_eq!(s.oldest_due_age_secs, 0.0, "nothing due: {s:?}");

    // one more event, folded before the read: it is due, and the oldest
    store.publish(Message::new(Job { n: 3 })).await.unwrap();
    store.compact_counters().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = stats_of(&store, &q).await;
    assert_eq!(
        (s.pending, s.due, s.scheduled),
        (3, 1, 2),
        "published: {s:?}"
    );
    assert!(s.oldest_due_age_secs >= 0.3, "{s:?}");

    // a fresh store (nothing kept) reads the same
    let fresh = stats_of(&b.store(2).await, &q).await;
    let s = stats_of(&store, &q).await;
    assert_eq!(
        (fresh.pending, fresh.due, fresh.scheduled),
        (s.pending, s.due, s.scheduled)
    );
}
