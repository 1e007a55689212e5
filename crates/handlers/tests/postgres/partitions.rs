//! Postgres-only: `PartitionManager` (SQLite has no partitions), one fresh database per
//! test: partitions created for the window, events placed by UTC day, partitions dropped
//! past retention, and the default partition reported and drained.

use chrono::Days;
use conveyor::PgStore;
use conveyor_handlers::{PartitionManager, RawStoreHandler, RetryPolicy, RollupHandler};
use sqlx::PgPool;

use crate::contract::fixtures::{deliver, event, eventually, manager, raw, record, today};

/// Migrate the fresh database, create the partitions around [`today`], and return a store.
async fn setup(pool: &PgPool) -> anyhow::Result<PgStore> {
    conveyor_handlers::migrate(pool).await?;
    manager().maintain(pool, today()).await?;
    Ok(PgStore::new(pool.clone()))
}

/// A single `i64` a statement returns.
async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Whether a table named `name` exists.
async fn table_exists(pool: &PgPool, name: &str) -> bool {
    sqlx::query_scalar("select to_regclass($1) is not null")
        .bind(name)
        .fetch_one(pool)
        .await
        .expect("to_regclass")
}

/// The day partitions of `parent`, sorted.
async fn day_partitions(pool: &PgPool, parent: &str) -> Vec<String> {
    sqlx::query_scalar(
        "select c.relname::text from pg_inherits i join pg_class c on c.oid = i.inhrelid
          where i.inhparent = $1::text::regclass and c.relname <> $1 || '_default'
          order by 1",
    )
    .bind(parent)
    .fetch_all(pool)
    .await
    .expect("list partitions")
}

async fn store_raw_and_rollup(store: &PgStore, events: Vec<conveyor_handlers::IngestedEvent>) {
    let policy = RetryPolicy::default();
    deliver(
        store,
        &RawStoreHandler::new(policy),
        vec![record("acme", events.clone())],
    )
    .await;
    deliver(
        store,
        &RollupHandler::new(policy),
        vec![record("acme", events)],
    )
    .await;
}

#[sqlx::test(migrations = false)]
async fn maintain_creates_the_window_for_both_tables_and_is_idempotent(
    pool: PgPool,
) -> anyhow::Result<()> {
    conveyor_handlers::migrate(&pool).await?;
    let m = PartitionManager {
        ahead_days: 2,
        retention_days: 3,
    };
    let report = m.maintain(&pool, today()).await?;

    // 2026-11-23 ..= 2026-11-27: three days kept (today included) and two ahead
    let days = ["20261123", "20261124", "20261125", "20261126", "20261127"];
    for parent in ["events_raw", "analytics_rollup_seen"] {
        let expected: Vec<String> = days.iter().map(|d| format!("{parent}_p{d}")).collect();
        assert_eq!(day_partitions(&pool, parent).await, expected);
        for name in &expected {
            assert!(
                report.created.contains(name),
                "{name} not reported as created"
            );
        }
    }
    assert_eq!(report.created.len(), 10);
    assert!(report.dropped.is_empty());
    assert_eq!(report.default_rows, 0);

    let again = m.maintain(&pool, today()).await?;
    assert!(
        again.created.is_empty() && again.dropped.is_empty(),
        "{again:?}"
    );
    assert_eq!(day_partitions(&pool, "events_raw").await.len(), 5);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn an_out_of_range_event_is_reported_as_default_rows(pool: PgPool) -> anyhow::Result<()> {
    let store = setup(&pool).await?;
    assert_eq!(PartitionManager::default_rows(&pool).await?, 0);
    deliver(
        &store,
        &RawStoreHandler::new(RetryPolicy::default()),
        vec![record(
            "acme",
            vec![
                event("click", "u1", "web", "2026-11-25T10:00:00Z"),
                event("click", "u1", "web", "2027-06-01T10:00:00Z"),
            ],
        )],
    )
    .await;

    assert_eq!(PartitionManager::default_rows(&pool).await?, 1);
    let report = manager().maintain(&pool, today()).await?;
    assert_eq!(report.default_rows, 1);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn partitions_past_retention_are_dropped_with_old_default_and_search_rows(
    pool: PgPool,
) -> anyhow::Result<()> {
    let store = setup(&pool).await?; // window 2026-11-19 ..= 2026-11-28
    store_raw_and_rollup(
        &store,
        vec![
            event("old", "u1", "web", "2026-11-19T12:00:00Z"),
            event("kept", "u1", "web", "2026-11-22T00:00:00Z"),
            // before every partition: in the default partition, and expired from it too
            event("ancient", "u1", "web", "2026-11-01T00:00:00Z"),
        ],
    )
    .await;
    for (id, ts) in [(1, "2026-11-19T12:00:00Z"), (2, "2026-11-22T00:00:00Z")] {
        let event_id = uuid::Uuid::from_u128(id);
        sqlx::query(
            "insert into search_documents (namespace, event_id, ts, event_type, source, body)
             values ('acme', $1, $2::timestamptz, 'click', 'web', 'click web u1')",
        )
        .bind(event_id)
        .bind(ts)
        .execute(&pool)
        .await?;
        sqlx::query(
            "insert into search_embeddings (namespace, event_id, ts, event_type, source, embedding)
             values ('acme', $1, $2::timestamptz, 'click', 'web', array[1, 0]::real[])",
        )
        .bind(event_id)
        .bind(ts)
        .execute(&pool)
        .await?;
    }

    // three days later the window starts on 2026-11-22
    let later = today().checked_add_days(Days::new(3)).unwrap();
    let report = manager().maintain(&pool, later).await?;

    let mut gone = Vec::new();
    for parent in ["events_raw", "analytics_rollup_seen"] {
        for d in ["20261119", "20261120", "20261121"] {
            gone.push(format!("{parent}_p{d}"));
        }
    }
    let mut dropped = report.dropped.clone();
    dropped.sort();
    gone.sort();
    assert_eq!(dropped, gone);
    for name in &gone {
        assert!(!table_exists(&pool, name).await, "{name} still exists");
    }
    assert!(table_exists(&pool, "events_raw_p20261122").await);
    assert!(
        table_exists(&pool, "events_raw_p20261201").await,
        "created ahead of the new today"
    );

    let raw: Vec<(String,)> = sqlx::query_as("select event_type from events_raw")
        .fetch_all(&pool)
        .await?;
    assert_eq!(raw, vec![("kept".to_owned(),)]);
    assert_eq!(
        scalar(&pool, "select count(*) from analytics_rollup_seen").await,
        1
    );
    for table in ["search_documents", "search_embeddings"] {
        let ids: Vec<(uuid::Uuid,)> = sqlx::query_as(&format!("select event_id from {table}"))
            .fetch_all(&pool)
            .await?;
        assert_eq!(ids, vec![(uuid::Uuid::from_u128(2),)], "{table}");
    }
    Ok(())
}

/// Rows the default partition holds for a day whose partition is then created are moved into
/// that partition (not skipped), for both tables, and nothing else moves.
#[sqlx::test(migrations = false)]
async fn default_rows_in_a_new_partitions_range_move_into_it(pool: PgPool) -> anyhow::Result<()> {
    let store = setup(&pool).await?; // partitions up to 2026-11-28
    store_raw_and_rollup(
        &store,
        vec![
            event("early", "u1", "web", "2026-12-01T08:00:00Z"),
            event("far", "u1", "web", "2027-03-01T08:00:00Z"),
        ],
    )
    .await;
    assert_eq!(PartitionManager::default_rows(&pool).await?, 2);
    let placement = "select tableoid::regclass::text from events_raw order by ts";
    let seen_placement = "select tableoid::regclass::text from analytics_rollup_seen order by ts";

    // five days later the window reaches 2026-12-03
    let later = today().checked_add_days(Days::new(5)).unwrap();
    let report = manager().maintain(&pool, later).await?;

    assert!(report.created.contains(&"events_raw_p20261201".to_owned()));
    assert_eq!(
        report.default_rows, 1,
        "only the far event stays in the default"
    );
    let raw: Vec<String> = sqlx::query_scalar(placement).fetch_all(&pool).await?;
    assert_eq!(raw, ["events_raw_p20261201", "events_raw_default"]);
    let seen: Vec<String> = sqlx::query_scalar(seen_placement).fetch_all(&pool).await?;
    assert_eq!(
        seen,
        [
            "analytics_rollup_seen_p20261201",
            "analytics_rollup_seen_default"
        ]
    );
    // the moved partition is a full partition: its primary key still deduplicates
    let dup = sqlx::query(
        "insert into events_raw (namespace, event_id, ts, event_type, actor_id, source)
         select namespace, event_id, ts, event_type, actor_id, source from events_raw
          where event_type = 'early'",
    )
    .execute(&pool)
    .await;
    assert!(
        dup.is_err(),
        "duplicate key accepted by the attached partition"
    );
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn run_maintains_the_current_day_until_cancelled(pool: PgPool) -> anyhow::Result<()> {
    conveyor_handlers::migrate(&pool).await?;
    let m = PartitionManager {
        ahead_days: 0,
        retention_days: 1,
    };
    let token = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(m.run(
        conveyor::PgStore::new(pool.clone()),
        std::time::Duration::from_millis(50),
        token.clone(),
    ));
    let name = format!("events_raw_p{}", chrono::Utc::now().format("%Y%m%d"));
    eventually(
        std::time::Duration::from_secs(10),
        "today's partition",
        || table_exists(&pool, &name),
    )
    .await;
    token.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(5), task).await??;
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
    deliver(&store, &raw(), records).await;

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
