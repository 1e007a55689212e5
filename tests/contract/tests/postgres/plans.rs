//! Postgres-only plan checks: the hot statements' generic plans, and the work their
//! triggers do, on realistic row counts.

use conveyor::{PgStore, Store};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use super::execute;

/// Postgres-only: the claim stays an index scan on the partial pending index as a generic
/// (prepared) plan, however many rows the table holds, with events at several priority
/// levels, some of them aged, in several fairness groups: no sequential scan, and no bitmap
/// scan (which would lose the index order and sort a whole group's backlog).
#[sqlx::test(migrator = "conveyor::MIGRATOR")]
async fn claim_uses_the_pending_index_in_its_generic_plan(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    execute(
        &mut *conn,
        "insert into conveyor_events (namespace, event_type, payload, status, priority,
                                      fairness_key, available_at)
         select 'default', 'contract.job', '{}',
                case when g % 100 = 0 then 'pending' else 'delivered' end::conveyor_event_status,
                (g % 7) - 3, 'g' || (g % 3), now() - (g % 10) * interval '1 minute'
           from generate_series(1, 50000) g",
    )
    .await;
    execute(&mut *conn, "analyze conveyor_events").await;
    let plan = generic_claim_plan(&mut conn).await;
    assert!(plan.contains("conveyor_events_pending_idx"), "{plan}");
    assert!(!plan.contains("Seq Scan on conveyor_events"), "{plan}");
    assert!(
        !plan.contains("Bitmap Heap Scan on conveyor_events"),
        "{plan}"
    );
    let level_seeks = plan
        .lines()
        .filter(|l| l.contains("Index Cond") && l.contains("(priority = "))
        .filter(|l| l.contains("(available_at <= now())"))
        .count();
    assert_eq!(
        level_seeks, 2,
        "offers and locks seek one (group, level) and its due bound in the index: {plan}"
    );
    let claimed: Vec<(i64,)> = sqlx::query_as(
        "execute claim_plan('default', 'contract.job', '', 'w', 100, 30000, '', 300000)",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(claimed.len(), 100, "the generic plan claims a full batch");
}

/// Postgres-only: with statistics taken before the backlog arrived (autovacuum off, as on
/// this project's machines), the claim's generic plan still walks the pending index and never
/// the stats read's due index (`conveyor_events_due_idx`), which the planner then thinks
/// empty; walking it read the queue's whole backlog per probe and cut the drain to a fifth.
#[sqlx::test(migrator = "conveyor::MIGRATOR")]
async fn claim_keeps_the_pending_index_with_stale_statistics(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    execute(&mut *conn, "analyze conveyor_events").await;
    execute(
        &mut *conn,
        "insert into conveyor_events (namespace, event_type, payload)
         select 'default', 'contract.job', '{}' from generate_series(1, 50000)",
    )
    .await;
    let plan = generic_claim_plan(&mut conn).await;
    assert!(plan.contains("conveyor_events_pending_idx"), "{plan}");
    assert!(!plan.contains("conveyor_events_due_idx"), "{plan}");
}

/// Postgres-only: a claim that can take nothing (its queue paused, or its global limit
/// reached) reads a handful of buffers, not the queue's backlog. With `active` joined as a
/// table, the generic plan put it inside the first probe's nested loop and walked all
/// 50,000 pending rows to come back empty, once per idle worker's claim.
#[sqlx::test(migrator = "conveyor::MIGRATOR")]
async fn a_claim_that_can_take_nothing_reads_no_backlog(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    analyzed_backlog(&mut conn, 50_000).await;
    prepare_generic_claim(&mut conn).await;
    let blocked = [
        "insert into conveyor_paused_handlers (namespace, event_type, routing_key)
         values ('default', 'contract.job', '')",
        "delete from conveyor_paused_handlers;
         insert into conveyor_queue_settings (namespace, event_type, routing_key, max_in_flight)
         values ('default', 'contract.job', '', 1);
         insert into conveyor_slots (namespace, event_type, routing_key, slot, event_id)
         values ('default', 'contract.job', '', 0, 1)",
    ];
    for setup in blocked {
        sqlx::raw_sql(setup).execute(&mut *conn).await.unwrap();
        let plan: serde_json::Value = sqlx::query_scalar(
            "explain (analyze, buffers, format json)
             execute claim_plan('default', 'contract.job', '', 'w', 100, 30000, '', 300000)",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        let node = &plan[0]["Plan"];
        assert_eq!(node["Actual Rows"].as_i64(), Some(0), "{setup}: {plan}");
        let buffers = node["Shared Hit Blocks"].as_i64().unwrap()
            + node["Shared Read Blocks"].as_i64().unwrap();
        assert!(
            buffers < 50,
            "{setup}: {buffers} buffers to claim nothing: {plan}"
        );
    }
}

/// `n` pending `contract.job` events, then fresh statistics.
async fn analyzed_backlog(conn: &mut sqlx::PgConnection, n: i64) {
    sqlx::query(
        "insert into conveyor_events (namespace, event_type, payload)
         select 'default', 'contract.job', '{}' from generate_series(1, $1)",
    )
    .bind(n)
    .execute(&mut *conn)
    .await
    .unwrap();
    execute(&mut *conn, "analyze conveyor_events").await;
}

/// Prepare claim.sql as `claim_plan` under generic plans on `conn`.
async fn prepare_generic_claim(conn: &mut sqlx::PgConnection) {
    execute(&mut *conn, "set plan_cache_mode = force_generic_plan").await;
    let claim = include_str!("../../../../crates/framework/src/store/postgres/sql/claim.sql");
    let prepare = format!(
        "prepare claim_plan(text, text, text, text, bigint, float8, text, float8) as {claim}"
    );
    execute(&mut *conn, &prepare).await;
}

/// Prepare claim.sql as `claim_plan` under generic plans on `conn` and return the EXPLAIN of
/// a claim of 100 from `contract.job`.
async fn generic_claim_plan(conn: &mut sqlx::PgConnection) -> String {
    prepare_generic_claim(conn).await;
    let plan: Vec<String> = sqlx::query_scalar(
        "explain execute claim_plan('default', 'contract.job', '', 'w', 100, 30000, '', 300000)",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    plan.join("\n")
}

/// Postgres-only: advancing an ordering key reads only that key's rows, with 100,000 ordered
/// events waiting behind 1,000 keys: the buffers one call of `conveyor_advance_keys` touches
/// (counted by EXPLAIN, nested statements included, under generic plans) stay a handful,
/// where a scan of the table would touch thousands.
#[sqlx::test(migrator = "conveyor::MIGRATOR")]
async fn advancing_a_key_reads_only_that_key(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    execute(
        &mut *conn,
        "insert into conveyor_events (namespace, event_type, payload, ordering_key, blocked)
         select 'default', 'contract.job', '{}', 'k' || (g % 1000), g > 1000
           from generate_series(1, 100000) g",
    )
    .await;
    // key k5's head finished: the next one may run
    execute(
        &mut *conn,
        "update conveyor_events set status = 'delivered' where id = 5",
    )
    .await;
    execute(&mut *conn, "analyze conveyor_events").await;
    execute(&mut *conn, "set plan_cache_mode = force_generic_plan").await;
    let plan: serde_json::Value = sqlx::query_scalar(
        "explain (analyze, buffers, format json)
         select conveyor_advance_keys(array['default'], array['contract.job'], array[''], array['k5'])",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    let node = &plan[0]["Plan"];
    let buffers =
        node["Shared Hit Blocks"].as_i64().unwrap() + node["Shared Read Blocks"].as_i64().unwrap();
    assert!(buffers < 200, "{buffers} buffers for one key: {plan}");
    let unblocked: i64 = sqlx::query_scalar(
        "select count(*) from conveyor_events where ordering_key = 'k5' and not blocked
            and status = 'pending'",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(unblocked, 1, "the key's next event runs");
}

/// Postgres-only: the pruner reaches delivered and cancelled rows through their partial
/// indexes in its generic plan, never a scan of the table.
#[sqlx::test(migrator = "conveyor::MIGRATOR")]
async fn prune_uses_the_partial_indexes_in_its_generic_plan(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    execute(
        &mut *conn,
        "insert into conveyor_events (namespace, event_type, payload, status)
         select 'default', 'contract.job', '{}',
                (case g % 100 when 0 then 'delivered' when 1 then 'cancelled' else 'pending' end)::conveyor_event_status
           from generate_series(1, 50000) g",
    )
    .await;
    execute(&mut *conn, "analyze conveyor_events").await;
    execute(&mut *conn, "set plan_cache_mode = force_generic_plan").await;
    let prune = include_str!("../../../../crates/framework/src/store/postgres/sql/prune.sql");
    execute(
        &mut *conn,
        &format!("prepare prune_plan(text, float8, bigint) as {prune}"),
    )
    .await;
    let plan: Vec<String> =
        sqlx::query_scalar("explain execute prune_plan('default', 600000, 10000)")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("conveyor_events_delivered_idx"), "{plan}");
    assert!(plan.contains("conveyor_events_cancelled_idx"), "{plan}");
    assert!(!plan.contains("Seq Scan on conveyor_events"), "{plan}");
}

/// Postgres-only: with a large analyzed backlog the claim's generic plan stays cheap in the
/// planner's estimate, below `jit_above_cost` (100,000 by default): above it every execution
/// JIT-compiles the statement, which took over a second per claim here (an earlier draft of
/// the priority claim estimated 3.9 million at this backlog). The estimate grows with the
/// backlog (each limited index range is costed at a tenth of its rows, the planner's default
/// for a limit it cannot see), so this pins the headroom at 100,000 pending events.
#[sqlx::test(migrator = "conveyor::MIGRATOR")]
async fn claim_plan_stays_below_the_jit_threshold(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    analyzed_backlog(&mut conn, 100_000).await;
    prepare_generic_claim(&mut conn).await;
    let plan: serde_json::Value = sqlx::query_scalar(
        "explain (format json) execute claim_plan('default', 'contract.job', '', 'w', 100, 30000, '', 60000)",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    let cost = plan[0]["Plan"]["Total Cost"].as_f64().unwrap();
    assert!(cost < 100_000.0, "estimated cost {cost}");
}

/// Postgres-only: the stats read is planned once per connection, not at every read. Its
/// custom plans (the parameters' values known) were estimated cheaper than the generic one
/// (which took a third of the counter rows as stamped since the last read), so Postgres
/// never switched and planned every read again (~0.5 ms of a ~1 ms read).
#[sqlx::test(migrator = "conveyor::MIGRATOR")]
async fn stats_reads_run_on_a_generic_plan(pool: PgPool) {
    use conveyor_contract::support::Job;
    // one connection: the reads and the look at its prepared statements share the session
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(pool.connect_options().as_ref().clone())
        .await
        .unwrap();
    let store = PgStore::new(pool.clone());
    // 1,000 queues (their counter rows are what the generic plan's estimate grows with)
    execute(
        &pool,
        "insert into conveyor_events (namespace, event_type, routing_key, payload)
         select 'default', 'contract.job', 'q' || g, '{}' from generate_series(1, 1000) g",
    )
    .await;
    store.compact_counters().await.unwrap();
    // with statistics, as autovacuum keeps them (without, every plan was estimated alike)
    execute(&pool, "analyze").await;
    store.publish(Job { n: 99 }).await.unwrap();
    for _ in 0..10 {
        assert_eq!(store.stats().await.unwrap().len(), 1001);
    }
    let (generic, custom): (i64, i64) = sqlx::query_as(
        "select generic_plans, custom_plans from pg_prepared_statements
          where statement like '-- One stats read%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        generic >= 5,
        "{generic} of 10 reads on the generic plan ({custom} planned)"
    );
}

/// Postgres-only: the ordering trigger joins a statement's old and new rows by hash. Its
/// transition tables, once filtered, were estimated at a row or two, so the joins ran as
/// nested loops comparing every old row with every new one (for 100 completions, 9,900 rows
/// removed by the join filter and a third of the statement's time; from ~300 rows the
/// planner chose a hash join by itself). The plans are read as auto_explain logs them, sent
/// to this session as notices.
#[sqlx::test(migrator = "conveyor::MIGRATOR")]
async fn the_ordering_trigger_hash_joins_its_transition_tables(pool: PgPool) {
    use tracing::instrument::WithSubscriber;
    use tracing_subscriber::layer::SubscriberExt;

    let mut conn = pool.acquire().await.unwrap();
    // 100 keys of two events each; publishing advances every key to its first event
    execute(
        &mut *conn,
        "insert into conveyor_events (namespace, event_type, payload, ordering_key, blocked)
         select 'default', 'contract.job', '{}', 'k' || (g % 100), true
           from generate_series(1, 200) g",
    )
    .await;
    execute(
        &mut *conn,
        "update conveyor_events set status = 'claimed', claimed_by = 'w', lease_expires_at = now()
          where status = 'pending' and not blocked",
    )
    .await;
    for setting in [
        "load 'auto_explain'",
        "set auto_explain.log_min_duration = 0",
        "set auto_explain.log_nested_statements = on",
        "set auto_explain.log_format = json",
        "set client_min_messages = log",
    ] {
        execute(&mut *conn, setting).await;
    }
    let notices = Notices::default();
    async {
        execute(
            &mut *conn,
            "update conveyor_events set status = 'delivered', claimed_by = null,
                    lease_expires_at = null
              where status = 'claimed'",
        )
        .await;
    }
    .with_subscriber(tracing_subscriber::registry().with(notices.clone()))
    .await;
    let logged = notices.0.lock().unwrap().clone();
    let joins: Vec<&String> = logged
        .iter()
        .filter(|plan| plan.contains("array_agg(") && plan.contains("old_rows"))
        .collect();
    assert_eq!(joins.len(), 1, "the trigger's join is logged: {logged:?}");
    for plan in joins {
        assert!(plan.contains("Hash Join"), "{plan}");
        assert!(!plan.contains("Nested Loop"), "{plan}");
    }
    let next: i64 = sqlx::query_scalar(
        "select count(*) from conveyor_events where status = 'pending' and not blocked",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(next, 100, "every key advanced to its second event");
}

/// The messages of the notices Postgres sent (sqlx reports each as a tracing event).
#[derive(Clone, Default)]
struct Notices(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Notices {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == "sqlx::postgres::notice" {
            event.record(&mut Message(&mut self.0.lock().unwrap()));
        }
    }
}

/// Collects an event's `message` field.
struct Message<'a>(&'a mut Vec<String>);

impl tracing::field::Visit for Message<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0.push(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.push(format!("{value:?}"));
        }
    }
}
