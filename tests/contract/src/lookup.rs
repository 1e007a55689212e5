//! Lookup and listing: `Store::event` and `Store::events` in every state.

use std::time::Duration;

use conveyor::{EventFilter, EventId, EventStatus, Message, Outcome, Queue, Store};

use crate::support::{claim, complete, job_queue, Backend, Followup, Job};

/// Each event is found by id with the status operators see, and another namespace's event
/// or an unknown id is not found.
pub async fn events_are_looked_up_by_id_in_every_status<B: Backend>(b: &B) {
    let store = b.store(4).await;
    let report = store
        .publish_batch((0..5).map(|n| {
            Message::new(Job { n })
                .fairness_key("g")
                .idempotency_key(format!("k{n}"))
        }))
        .await
        .unwrap();
    let ids: Vec<EventId> = report.inserted().collect();
    let scheduled = store
        .publish(
            Message::new(Job { n: 9 })
                .fairness_key("g")
                .priority(3)
                .delay(Duration::from_secs(3600)),
        )
        .await
        .unwrap()
        .id()
        .unwrap();
    // claim four of the five due ones; the fifth stays pending
    let held = claim(&store, &job_queue(), "w", 4).await;
    assert_eq!(held.len(), 4);
    complete(
        &store,
        "w",
        vec![
            (held[0].id, Outcome::Delivered),
            (
                held[1].id,
                Outcome::Dead {
                    error: "boom".into(),
                },
            ),
            (
                held[2].id,
                Outcome::Retry {
                    delay: Duration::from_secs(3600),
                    error: "later".into(),
                },
            ),
        ],
    )
    .await;
    let status = |id| {
        let store = store.clone();
        async move { store.event(id).await.unwrap().expect("found").status }
    };
    assert_eq!(status(held[0].id).await, EventStatus::Delivered);
    assert_eq!(status(held[1].id).await, EventStatus::Dead);
    assert_eq!(status(held[2].id).await, EventStatus::Retrying);
    assert_eq!(status(held[3].id).await, EventStatus::Running);
    let pending: Vec<EventId> = ids
        .iter()
        .copied()
        .filter(|id| held.iter().all(|h| h.id != *id))
        .collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(status(pending[0]).await, EventStatus::Pending);
    assert_eq!(status(scheduled).await, EventStatus::Scheduled);
    assert_eq!(store.event(scheduled).await.unwrap().unwrap().priority, 3);

    let running = store.event(held[3].id).await.unwrap().unwrap();
    assert_eq!(running.claimed_by.as_deref(), Some("w"));
    assert!(running.lease_expires_at.is_some());
    assert_eq!(running.attempts, 1);
    assert_eq!(running.queue, job_queue());
    assert_eq!(running.fairness_key, "g");
    let n = running.payload["n"].as_u64().unwrap();
    assert_eq!(running.idempotency_key, Some(format!("k{n}")));
    let dead = store.event(held[1].id).await.unwrap().unwrap();
    assert_eq!(dead.last_error.as_deref(), Some("boom"));
    assert!(dead.claimed_by.is_none());
    assert_eq!(dead.errors.len(), 1, "the failure is in its history");
    assert_eq!(
        (dead.errors[0].attempt, dead.errors[0].worker.as_deref()),
        (1, Some("w"))
    );

    store.cancel(&[pending[0]], "not needed").await.unwrap();
    let cancelled = store.event(pending[0]).await.unwrap().unwrap();
    assert_eq!(cancelled.status, EventStatus::Cancelled);
    assert_eq!(cancelled.cancel_reason.as_deref(), Some("not needed"));

    let max = *ids.iter().chain([&scheduled]).max().unwrap();
    assert!(store.event(EventId(max.0 + 1000)).await.unwrap().is_none());
    assert!(store.event(EventId(0)).await.unwrap().is_none());
    let other = b.store_in(2, "elsewhere").await;
    assert!(other.event(ids[0]).await.unwrap().is_none(), "namespaced");
}

/// Listing narrows by queue, status and publish time, pages with a cursor, and refuses a
/// page above the maximum, naming `limit`.
pub async fn events_are_listed_by_queue_status_and_time_with_a_cursor<B: Backend>(b: &B) {
    let store = b.store(4).await;
    store
        .publish_batch((0..7).map(|n| Job { n }))
        .await
        .unwrap();
    let followups = Queue::new(<Followup as conveyor::Event>::NAME, None);
    store
        .publish_batch((0..2).map(|of| Followup { of }))
        .await
        .unwrap();
    let held = claim(&store, &job_queue(), "w", 2).await;

    let all = store.events(&EventFilter::default()).await.unwrap();
    assert_eq!(all.events.len(), 9);
    assert!(all.next.is_none(), "one page holds them all");
    assert!(all.events.windows(2).all(|w| w[0].id < w[1].id), "id order");

    let of_queue = |queue: &Queue, status: Option<EventStatus>| EventFilter {
        queue: Some(queue.clone()),
        status,
        ..EventFilter::default()
    };
    let f = store.events(&of_queue(&followups, None)).await.unwrap();
    assert_eq!(f.events.len(), 2);
    assert!(f.events.iter().all(|e| e.queue == followups));
    let running = store
        .events(&of_queue(&job_queue(), Some(EventStatus::Running)))
        .await
        .unwrap();
    let mut running: Vec<EventId> = running.events.iter().map(|e| e.id).collect();
    running.sort();
    let mut claimed: Vec<EventId> = held.iter().map(|e| e.id).collect();
    claimed.sort();
    assert_eq!(running, claimed);
    let pending = store
        .events(&of_queue(&job_queue(), Some(EventStatus::Pending)))
        .await
        .unwrap();
    assert_eq!(pending.events.len(), 5);

    // pages of 3 walk every job once, and the last page says so
    let mut seen = Vec::new();
    let mut after = None;
    for _ in 0..10 {
        let page = store
            .events(&EventFilter {
                after,
                limit: 3,
                ..of_queue(&job_queue(), None)
            })
            .await
            .unwrap();
        seen.extend(page.events.iter().map(|e| e.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "every job once: {seen:?}");
    seen.dedup();
    assert_eq!(seen.len(), 7);

    let first = &all.events[0];
    let future = first.created_at + chrono::Duration::hours(1);
    let none_yet = store
        .events(&EventFilter {
            created_from: Some(future),
            ..EventFilter::default()
        })
        .await
        .unwrap();
    assert!(none_yet.events.is_empty());
    let before = store
        .events(&EventFilter {
            created_until: Some(future),
            ..EventFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(before.events.len(), 9);

    let err = store
        .events(&EventFilter {
            limit: EventFilter::MAX_LIMIT + 1,
            ..EventFilter::default()
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
}
