//! Periodic events: one event per tick across pools, the missed-tick policy, bad settings.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use conveyor::{Message, MissedTicks, Periodic, Published, Queue, Store, WorkerPool};

use crate::support::{claim, eventually, spawn, stop, Backend};

/// The payload of the test schedules: which schedule ticked, and the tick's instant.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, garde::Validate)]
pub struct Beat {
    /// The schedule's name.
    #[garde(length(min = 1))]
    pub schedule: String,
    /// The tick.
    #[garde(skip)]
    pub at: DateTime<Utc>,
}

impl conveyor::Event for Beat {
    const NAME: &'static str = "contract.beat";
}

/// The factory of schedule `name`: its beat at each tick.
fn beat(name: &'static str) -> impl Fn(DateTime<Utc>) -> Message<Beat> + Send + Sync + 'static {
    move |at| {
        Message::new(Beat {
            schedule: name.to_owned(),
            at,
        })
    }
}

/// Every beat published so far (claimed, so call it once the pools stopped), as (schedule,
/// tick), in tick order.
async fn beats<S: Store>(store: &S) -> Vec<(String, DateTime<Utc>)> {
    let queue = Queue::new(<Beat as conveyor::Event>::NAME, None);
    let mut beats: Vec<(String, DateTime<Utc>)> = claim(store, &queue, "contract", 10_000)
        .await
        .iter()
        .map(|e| {
            let beat: Beat = serde_json::from_str(&e.payload).expect("a beat");
            (beat.schedule, beat.at)
        })
        .collect();
    beats.sort_by_key(|(_, at)| *at);
    beats
}

/// Three pools on one store run an every-300 ms schedule for about 2.4 s: each tick's event
/// is published exactly once, with no gap between the first and the last, on the
/// schedule's instants.
pub async fn three_pools_publish_each_tick_exactly_once<B: Backend>(b: &B) {
    let every = Duration::from_millis(300);
    let mut pools = Vec::new();
    for _ in 0..3 {
        let pool = WorkerPool::builder(b.store(3).await)
            .periodic(Periodic::every("beat", every, beat("beat")))
            .build()
            .unwrap();
        pools.push(spawn(pool));
    }
    tokio::time::sleep(Duration::from_millis(2_400)).await;
    for running in pools {
        stop(running).await;
    }
    let store = b.store(2).await;
    let ticks: Vec<DateTime<Utc>> = beats(&store).await.into_iter().map(|(_, at)| at).collect();
    assert!(ticks.len() >= 6, "too few ticks in 2.4 s: {ticks:?}");
    let distinct: BTreeSet<_> = ticks.iter().collect();
    assert_eq!(
        distinct.len(),
        ticks.len(),
        "a tick published twice: {ticks:?}"
    );
    for pair in ticks.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            TimeDelta::milliseconds(300),
            "a gap: {ticks:?}"
        );
    }
    for tick in &ticks {
        assert_eq!(tick.timestamp_millis() % 300, 0, "off schedule: {tick}");
    }
    let last = store.last_tick("beat").await.unwrap();
    assert_eq!(last, ticks.last().copied());
}

/// `publish_tick` records a tick once: again, or an earlier one, publishes nothing.
pub async fn a_tick_is_published_once_and_never_behind_the_last<B: Backend>(b: &B) {
    let store = b.store(2).await;
    let tick = Utc::now().duration_trunc(TimeDelta::seconds(1)).unwrap();
    let event = |at| beat("spi")(at).into_new_event().unwrap();
    assert_eq!(store.last_tick("spi").await.unwrap(), None);
    let first = store.publish_tick("spi", tick, event(tick)).await.unwrap();
    assert!(matches!(first, Some(Published::Inserted(_))), "{first:?}");
    assert_eq!(
        store.publish_tick("spi", tick, event(tick)).await.unwrap(),
        None
    );
    let earlier = tick - TimeDelta::seconds(1);
    assert_eq!(
        store
            .publish_tick("spi", earlier, event(earlier))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.last_tick("spi").await.unwrap(), Some(tick));
    let later = tick + TimeDelta::seconds(1);
    let next = store
        .publish_tick("spi", later, event(later))
        .await
        .unwrap();
    assert!(matches!(next, Some(Published::Inserted(_))), "{next:?}");
    assert_eq!(store.last_tick("spi").await.unwrap(), Some(later));
    // another namespace keeps its own schedule of the same name
    let other = b.store_in(2, "other").await;
    assert_eq!(other.last_tick("spi").await.unwrap(), None);
    let published: Vec<DateTime<Utc>> = beats(&store).await.into_iter().map(|(_, at)| at).collect();
    assert_eq!(published, vec![tick, later]);
}

/// With a last tick recorded days ago, three pools starting an hourly schedule publish
/// exactly one catch-up event, for the latest hour; with `MissedTicks::Skip`, and for a
/// schedule never run before, they publish nothing.
pub async fn a_missed_tick_is_caught_up_once_at_start<B: Backend>(b: &B) {
    let store = b.store(2).await;
    let hourly = Duration::from_secs(3600);
    let hour = TimeDelta::hours(1);
    let long_ago = (Utc::now() - TimeDelta::days(3))
        .duration_trunc(hour)
        .unwrap();
    for name in ["catch-up", "skip"] {
        let recorded = store
            .publish_tick(
                name,
                long_ago,
                beat(name)(long_ago).into_new_event().unwrap(),
            )
            .await
            .unwrap();
        assert!(recorded.is_some());
    }
    let latest = Utc::now().duration_trunc(hour).unwrap();
    let mut pools = Vec::new();
    for _ in 0..3 {
        let pool = WorkerPool::builder(b.store(3).await)
            .periodic(Periodic::every("catch-up", hourly, beat("catch-up")))
            .periodic(Periodic::every("skip", hourly, beat("skip")).missed_ticks(MissedTicks::Skip))
            .periodic(Periodic::every("first-run", hourly, beat("first-run")))
            .build()
            .unwrap();
        pools.push(spawn(pool));
    }
    eventually(Duration::from_secs(10), "the catch-up tick", || async {
        store
            .last_tick("catch-up")
            .await
            .unwrap()
            .is_some_and(|t| t > long_ago)
    })
    .await;
    // let every pool's start-up finish
    tokio::time::sleep(Duration::from_millis(500)).await;
    for running in pools {
        stop(running).await;
    }
    let beats = beats(&store).await;
    let of = |name: &str| -> Vec<DateTime<Utc>> {
        beats
            .iter()
            .filter(|(s, _)| s == name)
            .map(|(_, at)| *at)
            .collect()
    };
    let caught_up = of("catch-up");
    assert_eq!(caught_up.len(), 2, "{beats:?}");
    assert_eq!(caught_up[0], long_ago);
    // the latest hour when the pools started (the next one if the test crossed the hour)
    assert!(
        caught_up[1] == latest || caught_up[1] == latest + hour,
        "{caught_up:?}"
    );
    assert_eq!(of("skip"), vec![long_ago], "{beats:?}");
    assert_eq!(of("first-run"), Vec::<DateTime<Utc>>::new(), "{beats:?}");
    assert_eq!(store.last_tick("first-run").await.unwrap(), None);
}

/// A cron expression that does not parse, a zero interval, an empty name and a name
/// registered twice are `build()` errors naming what is wrong, never panics.
pub async fn bad_periodic_settings_are_build_errors<B: Backend>(b: &B) {
    let store = b.store(2).await;
    let build = |periodic: Vec<Periodic>| {
        periodic
            .into_iter()
            .fold(WorkerPool::builder(store.clone()), |builder, p| {
                builder.periodic(p)
            })
            .build()
            .map(|_| ())
    };
    let every = Duration::from_secs(1);
    let cases = [
        (
            vec![Periodic::cron("bad", "61 * * * * *", beat("bad"))],
            "cron expression \"61 * * * * *\" does not parse",
        ),
        (
            vec![Periodic::cron("words", "every tuesday", beat("words"))],
            "\"every tuesday\"",
        ),
        (
            vec![Periodic::every("zero", Duration::ZERO, beat("zero"))],
            "interval",
        ),
        (vec![Periodic::every("", every, beat("empty"))], "name"),
        (
            vec![
                Periodic::every("twice", every, beat("twice")),
                Periodic::cron("twice", "* * * * * *", beat("twice")),
            ],
            "\"twice\" is registered twice",
        ),
    ];
    for (periodic, expected) in cases {
        let err = build(periodic).unwrap_err();
        assert!(matches!(err, conveyor::Error::Config(_)), "{err}");
        assert!(err.to_string().contains(expected), "{err}");
    }
    build(vec![
        Periodic::every("a", every, beat("a")),
        Periodic::cron("b", "*/5 * * * *", beat("b")),
    ])
    .expect("distinct valid schedules");
}
