//! The `stats` workload: a large outbox (99% delivered or dead, over many queues) built with
//! one set-based insert per chunk through the counter triggers, then full `stats()` reads
//! timed one after another while events are published at a steady rate. What it shows: a
//! stats read costs O(queues), not O(rows).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use conveyor::Store;
use tokio::time::MissedTickBehavior;

use crate::backend::{on_scratch, Backend, Job, OnStore, Scratch};
use crate::probe::Stamp;
use crate::progress::Progress;
use crate::report::{secs, Percentiles, Report};

/// Rows inserted per fill statement.
const FILL_CHUNK: u64 = 500_000;

/// The event type of the filled rows.
const FILLED_TYPE: &str = "bench.stats";

/// An event of the filled queues, for `--spread` publishing.
#[derive(Debug, serde::Serialize, serde::Deserialize, garde::Validate)]
struct Filled {
    #[garde(skip)]
    sent_ns: u64,
}

impl conveyor::Event for Filled {
    const NAME: &'static str = FILLED_TYPE;
}

/// Publishes per second of the paced publisher's ticks (each publishes a batch).
const TICKS_PER_SEC: f64 = 100.0;

/// Parameters of [`stats`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatsParams {
    /// Outbox rows built before timing. Defaults to 10,000,000 on Postgres, 1,000,000 on
    /// SQLite ([`for_backend`](Self::for_backend)).
    pub rows: u64,
    /// Queues the rows are spread over. Defaults to 1000.
    pub queues: u64,
    /// Events published per second while reading. Defaults to 5000.
    pub rate: f64,
    /// How long to read stats for. Defaults to 10 s.
    #[serde(with = "secs")]
    pub duration: Duration,
    /// Publish round robin into the filled queues, so every publish changes a queue the
    /// read reports (and the read probes it again), instead of into one queue of its own.
    /// Defaults to false.
    pub spread: bool,
}

impl Default for StatsParams {
    fn default() -> Self {
        Self {
            rows: 10_000_000,
            queues: 1000,
            rate: 5000.0,
            duration: Duration::from_secs(10),
            spread: false,
        }
    }
}

impl StatsParams {
    /// The defaults on `backend`: fewer rows on SQLite.
    pub fn for_backend(backend: &Backend) -> Self {
        match backend {
            Backend::Postgres { .. } => Self::default(),
            Backend::Sqlite => Self {
                rows: 1_000_000,
                ..Self::default()
            },
        }
    }
}

/// Run the stats workload on `backend`: one `read` report whose percentiles are one full
/// `stats()` read in milliseconds, with the publish rate reached (`publish`) and the fill
/// time (`fill_s` note).
///
/// # Errors
/// When the scratch database cannot be created, a parameter is out of range, or filling,
/// publishing or reading fails.
pub async fn stats(
    backend: &Backend,
    params: &StatsParams,
    progress: Progress,
) -> anyhow::Result<Vec<Report>> {
    anyhow::ensure!(
        params.rows > 0 && params.queues > 0,
        "rows and queues must be above zero"
    );
    anyhow::ensure!(
        params.rate.is_finite() && params.rate > 0.0,
        "rate must be above zero"
    );
    let (m, caveats) = on_scratch(backend, 8, Job { params, progress }).await?;
    let mut report = Report::new(
        "stats",
        "read",
        backend.name(),
        params,
        m.reads_ms.len() as u64,
        m.reading,
    )
    .latency(Percentiles::of(&m.reads_ms))
    .rate("publish", m.published as f64 / m.reading.as_secs_f64())
    .count("published", m.published)
    .count("queues", m.queues)
    .count("pending", m.counted[0])
    .count("delivered", m.counted[1])
    .count("dead", m.counted[2])
    .note(format!(
        "filled {} rows in {:.1} s",
        params.rows,
        m.fill.as_secs_f64()
    ));
    report.notes.extend(caveats);
    Ok(vec![report])
}

/// What one stats run measured.
#[derive(Debug)]
pub(crate) struct Measured {
    fill: Duration,
    reading: Duration,
    reads_ms: Vec<f64>,
    published: u64,
    /// Queues of the filled rows in the last read.
    queues: u64,
    /// Pending, delivered and dead of the filled queues in the last read (with `spread`,
    /// pending includes what was published into them).
    counted: [u64; 3],
}

impl OnStore for Job<'_, StatsParams> {
    type Output = Measured;

    async fn run<S: Store>(self, store: S, scratch: &Scratch) -> anyhow::Result<Measured> {
        let bar = self.progress.bar("stats fill", self.params.rows);
        let started = Instant::now();
        let mut done = 0;
        while done < self.params.rows {
            let n = FILL_CHUNK.min(self.params.rows - done);
            fill(scratch, done, n, self.params.queues).await?;
            done += n;
            bar.inc(n);
        }
        bar.finish();
        let fill_took = started.elapsed();
        store.compact_counters().await.context("compacting")?;
        read_while_publishing(&store, self.params, fill_took).await
    }
}

/// Insert rows `from + 1 ..= from + n` round robin over `queues` queues, one round of the
/// queues per row status: of every 100 rounds, one pending, one dead, the rest delivered,
/// so every queue holds 1% pending and 1% dead rows.
async fn fill(scratch: &Scratch, from: u64, n: u64, queues: u64) -> anyhow::Result<()> {
    let (from, n, queues) = (from as i64, n as i64, queues as i64);
    match scratch {
        Scratch::Postgres(db) => {
            sqlx::query(
                "insert into conveyor_events (namespace, event_type, routing_key, payload, status, attempts)
                 select $4, $5, 'q' || (g % $3), '{}'::jsonb,
                        (case (g / $3) % 100 when 0 then 'pending' when 1 then 'dead' else 'delivered' end)
                            ::conveyor_event_status,
                        case when (g / $3) % 100 = 0 then 0 else 1 end
                   from generate_series($1 + 1, $1 + $2) g",
            )
            .bind(from)
            .bind(n)
            .bind(queues)
            .bind(conveyor::DEFAULT_NAMESPACE)
            .bind(FILLED_TYPE)
            .execute(db.pool())
            .await
            .context("filling the outbox")?;
        }
        Scratch::Sqlite(db) => {
            sqlx::query(
                "with recursive g(n) as (select $1 + 1 union all select n + 1 from g where n < $1 + $2)
                 insert into conveyor_events (namespace, event_type, routing_key, payload, status,
                                              attempts, available_at, created_at, updated_at)
                 select $4, $6, 'q' || (n % $3), '{}',
                        case (n / $3) % 100 when 0 then 'pending' when 1 then 'dead' else 'delivered' end,
                        case when (n / $3) % 100 = 0 then 0 else 1 end,
                        $5, $5, $5
                   from g",
            )
            .bind(from)
            .bind(n)
            .bind(queues)
            .bind(conveyor::DEFAULT_NAMESPACE)
            .bind(chrono::Utc::now().timestamp_millis())
            .bind(FILLED_TYPE)
            .execute(db.store().pool())
            .await
            .context("filling the outbox")?;
        }
    }
    Ok(())
}

/// Read `stats()` back to back for `duration` while a task publishes at `rate`.
async fn read_while_publishing<S: Store>(
    store: &S,
    params: &StatsParams,
    fill: Duration,
) -> anyhow::Result<Measured> {
    let stop = tokio_util::sync::CancellationToken::new();
    let publisher = {
        let (store, stop) = (store.clone(), stop.clone());
        let rate = params.rate;
        let spread = params.spread.then_some(params.queues);
        let per_tick = (rate / TICKS_PER_SEC).ceil().max(1.0) as usize;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(per_tick as f64 / rate));
            tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
            let mut published = 0u64;
            while !stop.is_cancelled() {
                tick.tick().await;
                if let Some(queues) = spread {
                    let batch: Vec<_> = (0..per_tick as u64)
                        .map(|i| {
                            let q = (published + i) % queues;
                            let sent_ns = Stamp::now().sent_ns;
                            conveyor::Message::new(Filled { sent_ns }).routing_key(format!("q{q}"))
                        })
                        .collect();
                    store.publish_batch(batch).await.context("publishing")?;
                } else {
                    let batch: Vec<Stamp> = (0..per_tick).map(|_| Stamp::now()).collect();
                    store.publish_batch(batch).await.context("publishing")?;
                }
                published += per_tick as u64;
            }
            anyhow::Ok(published)
        })
    };
    let started = Instant::now();
    let mut reads_ms = Vec::new();
    let mut last = Vec::new();
    while started.elapsed() < params.duration || reads_ms.is_empty() {
        let t = Instant::now();
        last = store.stats().await.context("reading stats")?;
        reads_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let filled: Vec<_> = last
        .iter()
        .filter(|s| s.queue.event_type == FILLED_TYPE)
        .collect();
    let sum = |f: fn(&conveyor::QueueStats) -> i64| {
        u64::try_from(filled.iter().map(|s| f(s)).sum::<i64>()).unwrap_or(0)
    };
    let counted = [sum(|s| s.pending), sum(|s| s.delivered), sum(|s| s.dead)];
    let queues = filled.len() as u64;
    let reading = started.elapsed();
    stop.cancel();
    let published = publisher.await.context("publisher panicked")??;
    Ok(Measured {
        fill,
        reading,
        reads_ms,
        published,
        queues,
        counted,
    })
}
