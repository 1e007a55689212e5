//! Raw storage: `RawStoreHandler` through the framework, read back with `raw_events`; each
//! event is stored once per namespace however often it arrives.

use chrono::{DateTime, TimeDelta, Utc};
use conveyor_handlers::{PipelineStore, RawEventQuery};

use super::fixtures::{at, deliver, event, raw, record, spread};
use super::Harness;

/// Every raw event of `namespace` over 2026-11-22..2026-11-30.
fn window(namespace: &str) -> RawEventQuery {
    RawEventQuery {
        namespace: namespace.into(),
        from: at("2026-11-22T00:00:00Z"),
        to: at("2026-11-30T00:00:00Z"),
        event_type: None,
        after: None,
        limit: 1000,
    }
}

/// A batch of two records lands once, each event with its fields.
pub(crate) async fn a_batch_lands_once<H: Harness>(h: &H) -> anyhow::Result<()> {
    let first = event("click", "u1", "web", "2026-11-24T10:00:00Z");
    let records = vec![
        record(
            "acme",
            vec![
                first.clone(),
                event("view", "u2", "ios", "2026-11-24T11:00:00Z"),
            ],
        ),
        record(
            "acme",
            vec![event("click", "u3", "web", "2026-11-25T09:30:00Z")],
        ),
    ];
    deliver(h.store(), &raw(), records).await;

    assert_eq!(h.scalar("select count(*) from events_raw").await, 3);
    let stored = h.store().raw_events(&window("acme")).await?;
    let row = stored
        .iter()
        .find(|r| r.event_id == first.event_id)
        .unwrap();
    assert_eq!(row.timestamp, first.timestamp);
    assert_eq!(
        (
            row.event_type.as_str(),
            row.actor_id.as_str(),
            row.source.as_str()
        ),
        ("click", "u1", "web")
    );
    assert_eq!(row.attributes, serde_json::Value::Object(first.attributes));
    Ok(())
}

/// A batch delivered again leaves the stored rows untouched (`received_at` included).
pub(crate) async fn reprocessing_the_same_batch_changes_nothing<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    let records = vec![record(
        "acme",
        vec![
            event("click", "u1", "web", "2026-11-24T10:00:00Z"),
            event("view", "u2", "web", "2026-11-23T10:00:00Z"),
        ],
    )];
    let received = "select cast(received_at as text) from events_raw order by event_id";
    deliver(h.store(), &raw(), records.clone()).await;
    let before = h.strings(received).await;
    deliver(h.store(), &raw(), records).await;
    assert_eq!(before.len(), 2);
    assert_eq!(
        before,
        h.strings(received).await,
        "the stored rows were not touched again"
    );
    Ok(())
}

/// Copies of an event within one batch (inside a record and across records) are stored
/// once, and the first occurrence wins.
pub(crate) async fn duplicates_inside_one_batch_are_stored_once<H: Harness>(
    h: &H,
) -> anyhow::Result<()> {
    let e = event("click", "u1", "web", "2026-11-24T10:00:00Z");
    let mut later_copy = e.clone();
    later_copy.source = "copy".into();
    let records = vec![
        record("acme", vec![e.clone(), e.clone()]),
        record("acme", vec![later_copy]),
    ];
    deliver(h.store(), &raw(), records).await;
    assert_eq!(h.strings("select source from events_raw").await, ["web"]);
    Ok(())
}

/// Repeats inside a batch and a batch delivered twice store each event once per namespace:
/// the same event in another namespace is another row.
pub(crate) async fn repeats_are_stored_once_per_namespace<H: Harness>(h: &H) -> anyhow::Result<()> {
    let e = spread(6);
    let records = vec![
        record("acme", [&e[..4], &e[1..2]].concat()),
        record("acme", e[3..].to_vec()),
        record("globex", e[..1].to_vec()),
    ];
    deliver(h.store(), &raw(), records.clone()).await;
    deliver(h.store(), &raw(), records).await;

    assert_eq!(h.scalar("select count(*) from events_raw").await, 7);
    assert_eq!(h.store().raw_events(&window("acme")).await?.len(), 6);
    let globex = h.store().raw_events(&window("globex")).await?;
    assert_eq!(
        globex.iter().map(|r| r.event_id).collect::<Vec<_>>(),
        [e[0].event_id]
    );
    Ok(())
}

/// Timestamps keep their microseconds: two events one microsecond apart are two rows, read
/// back exactly.
pub(crate) async fn timestamps_keep_microseconds_and_events_differing_by_one_are_distinct<
    H: Harness,
>(
    h: &H,
) -> anyhow::Result<()> {
    let a = event("click", "u1", "web", "2026-11-24T10:00:00.123456Z");
    let mut b = a.clone();
    b.timestamp += TimeDelta::microseconds(1);
    deliver(
        h.store(),
        &raw(),
        vec![record("acme", vec![a.clone(), b.clone()])],
    )
    .await;
    let q = RawEventQuery {
        namespace: "acme".into(),
        from: a.timestamp,
        to: b.timestamp + TimeDelta::microseconds(1),
        event_type: None,
        after: None,
        limit: 10,
    };
    let got: Vec<DateTime<Utc>> = h
        .store()
        .raw_events(&q)
        .await?
        .iter()
        .map(|r| r.timestamp)
        .collect();
    assert_eq!(got, [a.timestamp, b.timestamp]);
    Ok(())
}
