//! `RawStoreHandler` against real Postgres, one fresh database per test, driven through the
//! framework's decode → handle → complete path (`conveyor::testing::run_batch`).

mod common;

use conveyor_handlers::{RawStoreHandler, RetryPolicy};
use sqlx::PgPool;

use common::{deliver, event, record, scalar, setup};

fn handler() -> RawStoreHandler {
    RawStoreHandler::new(RetryPolicy::default())
}

#[sqlx::test(migrations = false)]
async fn a_batch_lands_once(pool: PgPool) -> anyhow::Result<()> {
    let store = setup(&pool).await?;
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
    deliver(&store, &handler(), records).await;

    assert_eq!(scalar(&pool, "select count(*) from events_raw").await, 3);
    let (event_type, actor, source, attributes): (String, String, String, serde_json::Value) =
        sqlx::query_as(
            "select event_type, actor_id, source, attributes from events_raw
              where namespace = 'acme' and event_id = $1 and ts = $2",
        )
        .bind(first.event_id)
        .bind(first.timestamp)
        .fetch_one(&pool)
        .await?;
    assert_eq!(
        (event_type.as_str(), actor.as_str(), source.as_str()),
        ("click", "u1", "web")
    );
    assert_eq!(attributes, serde_json::Value::Object(first.attributes));
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn reprocessing_the_same_batch_changes_nothing(pool: PgPool) -> anyhow::Result<()> {
    let store = setup(&pool).await?;
    let records = vec![record(
        "acme",
        vec![
            event("click", "u1", "web", "2026-11-24T10:00:00Z"),
            event("view", "u2", "web", "2026-11-23T10:00:00Z"),
        ],
    )];
    deliver(&store, &handler(), records.clone()).await;
    let before: Vec<(uuid::Uuid, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("select event_id, received_at from events_raw order by event_id")
            .fetch_all(&pool)
            .await?;

    deliver(&store, &handler(), records).await;
    let after: Vec<(uuid::Uuid, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("select event_id, received_at from events_raw order by event_id")
            .fetch_all(&pool)
            .await?;
    assert_eq!(before.len(), 2);
    assert_eq!(before, after, "the stored rows were not touched again");
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn duplicates_inside_one_batch_are_stored_once(pool: PgPool) -> anyhow::Result<()> {
    let store = setup(&pool).await?;
    let e = event("click", "u1", "web", "2026-11-24T10:00:00Z");
    let mut later_copy = e.clone();
    later_copy.source = "copy".into();
    // twice in one record, again in a second record of the same batch (a later copy that
    // differs in content: the first occurrence wins)
    let records = vec![
        record("acme", vec![e.clone(), e.clone()]),
        record("acme", vec![later_copy]),
    ];
    deliver(&store, &handler(), records).await;

    let rows: Vec<(String,)> = sqlx::query_as("select source from events_raw")
        .fetch_all(&pool)
        .await?;
    assert_eq!(rows, vec![("web".to_owned(),)]);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn events_land_in_their_day_partition_and_out_of_range_ones_in_the_default(
    pool: PgPool,
) -> anyhow::Result<()> {
    let store = setup(&pool).await?;
    let records = vec![record(
        "acme",
        vec![
            event("a", "u1", "web", "2026-11-24T23:59:59.999999Z"),
            event("b", "u1", "web", "2026-11-25T00:00:00Z"),
            // the 25th in +02:00 but the 24th in UTC: partitions go by the UTC day
            event("c", "u1", "web", "2026-11-25T01:30:00+02:00"),
            event("d", "u1", "web", "2031-01-01T00:00:00Z"),
        ],
    )];
    deliver(&store, &handler(), records).await;

    let placed: Vec<(String, String)> = sqlx::query_as(
        "select event_type, tableoid::regclass::text from events_raw order by event_type",
    )
    .fetch_all(&pool)
    .await?;
    let expected = [
        ("a", "events_raw_p20261124"),
        ("b", "events_raw_p20261125"),
        ("c", "events_raw_p20261124"),
        ("d", "events_raw_default"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(t, p)| (t.to_string(), p.to_string()))
        .collect();
    assert_eq!(placed, expected);
    Ok(())
}
