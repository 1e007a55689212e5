//! The `ceiling` workload: the raw-SQL limit of draining a queue on this box, with no
//! framework, which the framework's drain is held against.
//!
//! A minimal jobs table is prefilled and drained two ways:
//! - `claim_delete`: one statement claims a batch with `FOR UPDATE SKIP LOCKED` and deletes
//!   it (`delete … where id = any(array(select … limit $1 for update skip locked))`);
//! - `claim_then_complete`: the claim marks the batch and commits, then a second statement
//!   deletes it and commits, the shape of a worker that runs a handler in between.
//!
//! On Postgres `connections` tasks drain concurrently, each on its own connection. On
//! SQLite there is one writer, so one connection runs the same loops.
//!
//! The claim selects ids with `id = any(array(select …))`, not a `with c as (select … for
//! update skip locked) update … from c`: prepared, the latter gets a generic plan on
//! Postgres 15 that scans the whole table.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use conveyor::Store;
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool};
use tokio::task::JoinSet;

use crate::backend::{on_scratch, Backend, Job, OnStore, Scratch};
use crate::progress::{Bar, Progress};
use crate::report::Report;

/// Parameters of [`ceiling`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct CeilingParams {
    /// Rows to prefill and drain. Defaults to 100,000.
    pub rows: u64,
    /// Concurrent draining connections (Postgres; SQLite always uses one). Defaults to 4.
    pub connections: usize,
    /// Rows claimed per statement. Defaults to 100.
    pub batch: usize,
}

impl Default for CeilingParams {
    fn default() -> Self {
        Self {
            rows: 100_000,
            connections: 4,
            batch: 100,
        }
    }
}

/// The two drain loops, each a report variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// Claim and delete in one statement.
    ClaimDelete,
    /// Claim (mark) and commit, then delete and commit.
    ClaimThenComplete,
}

impl Variant {
    const ALL: [Variant; 2] = [Variant::ClaimDelete, Variant::ClaimThenComplete];

    fn name(self) -> &'static str {
        match self {
            Self::ClaimDelete => "claim_delete",
            Self::ClaimThenComplete => "claim_then_complete",
        }
    }
}

mod pg {
    pub(super) const SETUP: [&str; 2] = [
        "drop table if exists bench_jobs",
        "create table bench_jobs (id bigint generated always as identity primary key, \
         payload jsonb not null, claimed boolean not null default false)",
    ];
    pub(super) const FILL: &str = "insert into bench_jobs (payload) \
         select jsonb_build_object('n', g) from generate_series(1, $1) g";
    pub(super) const ANALYZE: &str = "vacuum analyze bench_jobs";
    pub(super) const CLAIM_DELETE: &str = "delete from bench_jobs where id = any(array(\
         select id from bench_jobs order by id limit $1 for update skip locked)) \
         returning id, payload";
    pub(super) const CLAIM: &str = "update bench_jobs set claimed = true where id = any(array(\
         select id from bench_jobs where not claimed order by id limit $1 for update skip locked)) \
         returning id, payload";
    pub(super) const COMPLETE: &str = "delete from bench_jobs where id = any($1)";
}

mod lite {
    pub(super) const SETUP: [&str; 2] = [
        "drop table if exists bench_jobs",
        "create table bench_jobs (id integer primary key, payload text not null, \
         claimed integer not null default 0)",
    ];
    pub(super) const FILL: &str =
        "with recursive g(n) as (select 1 union all select n + 1 from g where n < ?) \
         insert into bench_jobs (payload) select json_object('n', n) from g";
    pub(super) const ANALYZE: &str = "analyze bench_jobs";
    pub(super) const CLAIM_DELETE: &str = "delete from bench_jobs where id in (\
         select id from bench_jobs order by id limit ?) returning id, payload";
    pub(super) const CLAIM: &str = "update bench_jobs set claimed = 1 where id in (\
         select id from bench_jobs where claimed = 0 order by id limit ?) returning id, payload";
    pub(super) const COMPLETE: &str =
        "delete from bench_jobs where id in (select value from json_each(?))";
}

/// Run the ceiling on `backend`: one report per drain variant, rows/s as the rate.
///
/// # Errors
/// When the scratch database cannot be created or a statement fails.
pub async fn ceiling(
    backend: &Backend,
    params: &CeilingParams,
    progress: Progress,
) -> anyhow::Result<Vec<Report>> {
    let connections = u32::try_from(params.connections.max(1)).unwrap_or(u32::MAX);
    let job = Job { params, progress };
    let (mut reports, caveats) = on_scratch(backend, connections.saturating_add(1), job).await?;
    for report in &mut reports {
        report.notes.extend(caveats.iter().cloned());
    }
    Ok(reports)
}

/// Both variants on one scratch database (each refills the jobs table).
impl OnStore for Job<'_, CeilingParams> {
    type Output = Vec<Report>;

    /// Drains bench_jobs through the scratch database's pool; the outbox store is unused.
    async fn run<S: Store>(self, _: S, scratch: &Scratch) -> anyhow::Result<Vec<Report>> {
        let params = self.params;
        let mut reports = Vec::new();
        for variant in Variant::ALL {
            let bar = self
                .progress
                .bar(&format!("ceiling {}", variant.name()), params.rows);
            let run = match scratch {
                Scratch::Postgres(db) => drain_pg(db.pool(), params, variant, &bar).await,
                Scratch::Sqlite(db) => drain_sqlite(db.store().pool(), params, variant, &bar).await,
            };
            bar.finish();
            let (rows, elapsed) = run?;
            let name = variant.name();
            let mut report = Report::new("ceiling", name, scratch.name(), params, rows, elapsed);
            if rows != params.rows {
                report = report.note(format!("drained {rows} of {} rows", params.rows));
            }
            if matches!(scratch, Scratch::Sqlite(_)) {
                report = report.note("sqlite: one writer connection");
            }
            reports.push(report);
        }
        Ok(reports)
    }
}

/// Fill the jobs table, then drain it with `params.connections` tasks; rows and time.
async fn drain_pg(
    pool: &PgPool,
    params: &CeilingParams,
    variant: Variant,
    bar: &Bar,
) -> anyhow::Result<(u64, Duration)> {
    for sql in pg::SETUP {
        sqlx::query(sql)
            .execute(pool)
            .await
            .context("creating bench_jobs")?;
    }
    let rows = i64::try_from(params.rows).context("rows")?;
    sqlx::query(pg::FILL)
        .bind(rows)
        .execute(pool)
        .await
        .context("filling bench_jobs")?;
    sqlx::query(pg::ANALYZE).execute(pool).await?;

    let mut conns = Vec::with_capacity(params.connections);
    for _ in 0..params.connections.max(1) {
        conns.push(pool.acquire().await?);
    }
    let batch = i64::try_from(params.batch.max(1)).context("batch")?;
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for conn in conns {
        tasks.spawn(drain_pg_loop(conn, batch, variant, bar.clone()));
    }
    let mut total = 0;
    while let Some(joined) = tasks.join_next().await {
        total += joined.context("ceiling task panicked")??;
    }
    Ok((total, started.elapsed()))
}

/// One connection's claim loop until a claim comes back empty.
async fn drain_pg_loop(
    mut conn: PoolConnection<Postgres>,
    batch: i64,
    variant: Variant,
    bar: Bar,
) -> anyhow::Result<u64> {
    let mut done = 0;
    loop {
        let sql = match variant {
            Variant::ClaimDelete => pg::CLAIM_DELETE,
            Variant::ClaimThenComplete => pg::CLAIM,
        };
        let claimed: Vec<(i64, serde_json::Value)> = sqlx::query_as(sql)
            .bind(batch)
            .fetch_all(&mut *conn)
            .await
            .context("claiming from bench_jobs")?;
        if claimed.is_empty() {
            return Ok(done);
        }
        if variant == Variant::ClaimThenComplete {
            let ids: Vec<i64> = claimed.iter().map(|(id, _)| *id).collect();
            sqlx::query(pg::COMPLETE)
                .bind(&ids)
                .execute(&mut *conn)
                .await
                .context("completing bench_jobs")?;
        }
        done += claimed.len() as u64;
        bar.inc(claimed.len() as u64);
    }
}

/// Fill the jobs table, then drain it on one connection; rows and time.
async fn drain_sqlite(
    pool: &SqlitePool,
    params: &CeilingParams,
    variant: Variant,
    bar: &Bar,
) -> anyhow::Result<(u64, Duration)> {
    let mut conn = pool.acquire().await?;
    for sql in lite::SETUP {
        sqlx::query(sql)
            .execute(&mut *conn)
            .await
            .context("creating bench_jobs")?;
    }
    let rows = i64::try_from(params.rows).context("rows")?;
    sqlx::query(lite::FILL)
        .bind(rows)
        .execute(&mut *conn)
        .await
        .context("filling bench_jobs")?;
    sqlx::query(lite::ANALYZE).execute(&mut *conn).await?;
    let batch = i64::try_from(params.batch.max(1)).context("batch")?;
    let started = Instant::now();
    let done = drain_sqlite_loop(&mut conn, batch, variant, bar).await?;
    Ok((done, started.elapsed()))
}

async fn drain_sqlite_loop(
    conn: &mut PoolConnection<Sqlite>,
    batch: i64,
    variant: Variant,
    bar: &Bar,
) -> anyhow::Result<u64> {
    let mut done = 0;
    loop {
        let sql = match variant {
            Variant::ClaimDelete => lite::CLAIM_DELETE,
            Variant::ClaimThenComplete => lite::CLAIM,
        };
        let claimed: Vec<(i64, String)> = sqlx::query_as(sql)
            .bind(batch)
            .fetch_all(&mut **conn)
            .await
            .context("claiming from bench_jobs")?;
        if claimed.is_empty() {
            return Ok(done);
        }
        if variant == Variant::ClaimThenComplete {
            let ids: Vec<i64> = claimed.iter().map(|(id, _)| *id).collect();
            sqlx::query(lite::COMPLETE)
                .bind(serde_json::to_string(&ids)?)
                .execute(&mut **conn)
                .await
                .context("completing bench_jobs")?;
        }
        done += claimed.len() as u64;
        bar.inc(claimed.len() as u64);
    }
}
