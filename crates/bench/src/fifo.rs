//! The `fifo` workload: the drain of an ordered queue (every event with an ordering key)
//! while some keys are parked and some retry with a long backoff, against the unordered
//! drain of as many events in the same run, with every order violation counted.
//!
//! Events are published round robin over the keys (event `i` is number `i / keys` of key
//! `i % keys`), so each key's events spread over the whole id range. Before timing, the
//! heads of the first `parked_keys` keys die (which parks those keys) and the heads of the
//! next `retrying_keys` keys fail with a retry an hour away: both hold their key's other
//! events back for the whole drain, which is timed until every other ("flowing") key's
//! events have been handled. The unordered baseline drains that many events, published the
//! same way without ordering keys, on a scratch database of its own. With `max_in_flight`,
//! a third run repeats the ordered one under that global limit.

mod order;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use conveyor::{DeadHead, HandlerOptions, Message, Queue, Store, WorkerPool};
use tokio_util::sync::CancellationToken;

use crate::backend::{on_scratch, Backend, OnStore, Scratch};
use crate::progress::Progress;
use crate::report::{secs, Report};
use order::{CheckOrder, OrderState, Roles, Sequenced};

/// The target: the ordered drain reaches this share of the unordered one.
const ORDERED_VS_UNORDERED_TARGET: f64 = 0.90;
/// Connections a pool needs besides one per worker, plus one for publishing.
const SPARE_CONNECTIONS: usize = 6;
/// How often the setup looks whether the held keys' heads have settled.
const SETTLE_POLL: Duration = Duration::from_millis(20);

/// Parameters of [`fifo`]. The defaults depend on the backend ([`FifoParams::for_backend`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct FifoParams {
    /// Events to publish, round robin over the keys. Defaults to 1,000,000 on Postgres and
    /// 100,000 on SQLite.
    pub events: u64,
    /// Ordering keys. Defaults to 100,000 on Postgres and 10,000 on SQLite.
    pub keys: u32,
    /// Keys whose head dies before timing, parking the key. Defaults to 10% of `keys`.
    pub parked_keys: u32,
    /// Keys whose head retries with an hour's backoff. Defaults to 1% of `keys` (1,000 of the
    /// Postgres default).
    pub retrying_keys: u32,
    /// Events per handler batch. Defaults to 100.
    pub batch_size: usize,
    /// Concurrent workers (batches in flight). Defaults to 4.
    pub concurrency: usize,
    /// Events per `publish_batch` call. Defaults to 5,000.
    pub publish_chunk: usize,
    /// Also drain the ordered queue under this global limit (`max_in_flight`) and report the
    /// most events seen in flight. Defaults to none.
    pub max_in_flight: Option<u32>,
    /// Give up on a drain (or the setup) after this long. Defaults to 10 minutes.
    #[serde(with = "secs")]
    pub timeout: Duration,
    /// The pool's delivered retention: zero deletes each delivered event as its batch
    /// completes. Defaults to the framework's 10 minutes.
    #[serde(with = "secs")]
    pub delivered_retention: Duration,
}

/// The Postgres defaults.
impl Default for FifoParams {
    fn default() -> Self {
        Self::with_sizes(1_000_000, 100_000)
    }
}

impl FifoParams {
    /// The defaults on `backend`: 1,000,000 events over 100,000 keys on Postgres, 100,000
    /// over 10,000 on SQLite.
    pub fn for_backend(backend: &Backend) -> Self {
        match backend {
            Backend::Postgres { .. } => Self::default(),
            Backend::Sqlite => Self::with_sizes(100_000, 10_000),
        }
    }

    /// `events` over `keys`, with the default shares of parked (10%) and retrying (1%) keys
    /// and the other defaults.
    pub fn with_sizes(events: u64, keys: u32) -> Self {
        Self {
            events,
            keys,
            parked_keys: keys / 10,
            retrying_keys: keys / 100,
            batch_size: 100,
            concurrency: 4,
            publish_chunk: 5_000,
            max_in_flight: None,
            timeout: Duration::from_secs(600),
            delivered_retention: Duration::from_secs(600),
        }
    }

    /// Refuse sizes that cannot run, naming the flag.
    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.keys > 0, "--keys must be at least 1");
        anyhow::ensure!(
            u64::from(self.keys) <= self.events,
            "--keys ({}) must not exceed --events ({}): every key needs an event",
            self.keys,
            self.events
        );
        anyhow::ensure!(
            u64::from(self.parked_keys) + u64::from(self.retrying_keys) < u64::from(self.keys),
            "--parked-keys ({}) plus --retrying-keys ({}) must leave at least one of the --keys ({}) flowing",
            self.parked_keys,
            self.retrying_keys,
            self.keys
        );
        anyhow::ensure!(
            self.batch_size > 0 && self.concurrency > 0 && self.publish_chunk > 0,
            "--batch-size, --concurrency and --publish-chunk must be at least 1"
        );
        Ok(())
    }

    fn roles(&self) -> Roles {
        Roles {
            parked: self.parked_keys,
            retrying: self.retrying_keys,
        }
    }

    /// Events of keys `0..k`: each key has `events / keys`, the first `events % keys` one more.
    fn events_of_first(&self, k: u32) -> u64 {
        let keys = u64::from(self.keys);
        u64::from(k) * (self.events / keys) + u64::from(k).min(self.events % keys)
    }

    /// The flowing keys' events: what each drain handles.
    fn flowing_events(&self) -> u64 {
        self.events - self.events_of_first(self.roles().held())
    }
}

/// Which drain a scratch database gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The flowing keys' events without ordering keys.
    Unordered,
    /// Every event with its ordering key, held keys settled first; with a global limit.
    Ordered { max_in_flight: Option<u32> },
}

/// One drain on its own scratch database.
#[derive(Debug)]
struct Phase<'a> {
    kind: Kind,
    params: &'a FifoParams,
    progress: Progress,
}

/// What one drain measured.
#[derive(Debug)]
struct Measured {
    publish_events: u64,
    publish: Duration,
    drain: Duration,
    state: Arc<OrderState>,
    /// After the drain: the queue's pending and dead events, and its parked keys.
    pending: i64,
    dead: i64,
    parked: usize,
}

/// Run the fifo workload on `backend`: an `unordered` report (the baseline), an `ordered`
/// report carrying its ratio to it (`counts.vs_unordered_pct`) and the order violations
/// (`counts.order_violations`), and with `max_in_flight` a `limited` report with the most
/// events seen in flight at once (`counts.max_in_flight_seen`).
///
/// Each drain uses a fresh scratch database and is timed from its pool's start until the
/// handlers have seen every flowing key's event.
///
/// # Errors
/// When the sizes cannot run (naming the flag), the scratch database cannot be created,
/// publishing or the pool fails, or a drain or the setup does not finish within `timeout`.
pub async fn fifo(
    backend: &Backend,
    params: &FifoParams,
    progress: Progress,
) -> anyhow::Result<Vec<Report>> {
    params.check()?;
    let connections =
        u32::try_from(params.concurrency + SPARE_CONNECTIONS).context("concurrency")?;
    let phase = |kind| Phase {
        kind,
        params,
        progress,
    };
    let (unordered, caveats) = on_scratch(backend, connections, phase(Kind::Unordered)).await?;
    let ordered_kind = Kind::Ordered {
        max_in_flight: None,
    };
    let (ordered, _) = on_scratch(backend, connections, phase(ordered_kind)).await?;
    let name = backend.name();
    let baseline = report("unordered", name, params, &unordered);
    let mut reports = vec![
        baseline.clone(),
        held_against(
            report("ordered", name, params, &ordered),
            params,
            &ordered,
            &baseline,
        ),
    ];
    if let Some(limit) = params.max_in_flight {
        let kind = Kind::Ordered {
            max_in_flight: Some(limit),
        };
        let (limited, _) = on_scratch(backend, connections, phase(kind)).await?;
        let seen = limited.state.max_in_flight.load(Ordering::Acquire);
        let mut limited_report = held_against(
            report("limited", name, params, &limited),
            params,
            &limited,
            &baseline,
        )
        .count("max_in_flight", u64::from(limit))
        .count("max_in_flight_seen", seen);
        limited_report
            .checks
            .insert("in_flight_within_limit".into(), seen <= u64::from(limit));
        limited_report = limited_report.note(format!(
            "under max_in_flight {limit}: at most {seen} events were inside the handler at once"
        ));
        reports.push(limited_report);
    }
    for report in &mut reports {
        report.notes.extend(caveats.iter().cloned());
    }
    Ok(reports)
}

/// The drain report of `m`, with its publish rate.
fn report(variant: &str, backend: &str, params: &FifoParams, m: &Measured) -> Report {
    let publish_rate = m.publish_events as f64 / m.publish.as_secs_f64().max(f64::EPSILON);
    Report::new(
        "fifo",
        variant,
        backend,
        params,
        params.flowing_events(),
        m.drain,
    )
    .rate("publish", publish_rate)
    .count("published", m.publish_events)
}

/// An ordered drain's violations, what stayed held, and its ratio to the `baseline`.
fn held_against(report: Report, params: &FifoParams, m: &Measured, baseline: &Report) -> Report {
    let load = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Acquire);
    let held = params.roles().held();
    // every held key's events stay pending but the parked keys' dead heads
    let expected_pending = params.events_of_first(held) - u64::from(params.parked_keys);
    let violations = m.state.violations();
    let mut report = report
        .count("order_violations", violations)
        .count("out_of_order", load(&m.state.out_of_order))
        .count("concurrent", load(&m.state.concurrent))
        .count("blocked_ran", load(&m.state.blocked_ran))
        .count("parked_keys", m.parked as u64)
        .count("retrying_keys", u64::from(params.retrying_keys))
        .count("held_pending", u64::try_from(m.pending).unwrap_or(0))
        .count("dead", u64::try_from(m.dead).unwrap_or(0));
    report
        .checks
        .insert("no_order_violations".into(), violations == 0);
    report.checks.insert(
        "held_keys_stayed_held".into(),
        m.parked == params.parked_keys as usize
            && u64::try_from(m.pending).ok() == Some(expected_pending)
            && load(&m.state.blocked_ran) == 0,
    );
    if let (Some(rate), Some(base)) = (report.rate, baseline.rate.filter(|b| *b > 0.0)) {
        let ratio = rate / base;
        report = report
            .rate("unordered", base)
            .count("vs_unordered_pct", (ratio * 100.0).round() as u64)
            .note(format!(
                "ordered drain is {:.0}% of the unordered drain ({base:.0}/s) of this run; target ≥ {:.0}%",
                ratio * 100.0,
                ORDERED_VS_UNORDERED_TARGET * 100.0
            ));
        report.checks.insert(
            "at_least_90pct_of_unordered".into(),
            ratio >= ORDERED_VS_UNORDERED_TARGET,
        );
    }
    report
}

impl OnStore for Phase<'_> {
    type Output = Measured;

    async fn run<S: Store>(self, store: S, _: &Scratch) -> anyhow::Result<Measured> {
        let p = self.params;
        let ordered = matches!(self.kind, Kind::Ordered { .. });
        let limit = match self.kind {
            Kind::Ordered { max_in_flight } => max_in_flight,
            Kind::Unordered => None,
        };
        let state = OrderState::new(p.keys, p.roles(), ordered);
        let options = HandlerOptions::default()
            .concurrency(p.concurrency)
            .batch_size(p.batch_size)
            .on_dead_head(DeadHead::Park)
            .max_in_flight(limit);
        let held = u64::from(p.roles().held());
        if ordered {
            publish(&store, p, 0..held, true, self.progress).await?;
            settle(&store, p, &state, options.clone()).await?;
        }
        // the unordered baseline publishes only the flowing keys' events
        let flowing = move |i: &u64| ordered || i % u64::from(p.keys) >= held;
        let started = Instant::now();
        let publish_events =
            publish_filtered(&store, p, held..p.events, ordered, flowing, self.progress).await?;
        let publish = started.elapsed();

        let target = p.flowing_events();
        let label = if ordered {
            "fifo ordered drain"
        } else {
            "fifo unordered drain"
        };
        let bar = self.progress.bar(label, target);
        let (stop, running) = start_pool(&store, p, &state, options)?;
        let started = Instant::now();
        let drain = state
            .tally
            .drain(target, p.timeout, &bar, started, stop, running)
            .await?;
        let (pending, dead) = pending_and_dead(&store).await?;
        let parked = parked_keys(&store, p).await?;
        Ok(Measured {
            publish_events,
            publish,
            drain,
            state,
            pending,
            dead,
            parked,
        })
    }
}

/// Publish events `range` (see the module docs), with ordering keys when `ordered`.
async fn publish<S: Store>(
    store: &S,
    p: &FifoParams,
    range: std::ops::Range<u64>,
    ordered: bool,
    progress: Progress,
) -> anyhow::Result<u64> {
    publish_filtered(store, p, range, ordered, |_| true, progress).await
}

/// Publish the events of `range` that `keep`, in chunks; how many were published.
async fn publish_filtered<S: Store>(
    store: &S,
    p: &FifoParams,
    range: std::ops::Range<u64>,
    ordered: bool,
    keep: impl Fn(&u64) -> bool,
    progress: Progress,
) -> anyhow::Result<u64> {
    let bar = progress.bar("fifo publish", range.end - range.start);
    let keys = u64::from(p.keys);
    let mut published = 0;
    let mut chunk = Vec::with_capacity(p.publish_chunk);
    let mut i = range.start;
    while i < range.end {
        chunk.clear();
        let end = range.end.min(i + p.publish_chunk as u64);
        for n in (i..end).filter(|n| keep(n)) {
            // both fit: keys is a u32 and each key's number is below events / keys + 1
            let key = (n % keys) as u32;
            let seq = u32::try_from(n / keys).context("too many events per key")?;
            let msg = Message::new(Sequenced { key, seq });
            chunk.push(if ordered {
                msg.ordering_key(Sequenced::ordering_key(key))
            } else {
                msg
            });
        }
        published += chunk.len() as u64;
        store
            .publish_batch(chunk.drain(..))
            .await
            .context("publishing fifo events")?;
        bar.inc(end - i);
        i = end;
    }
    bar.finish();
    Ok(published)
}

/// Run a pool until the held keys' heads have settled: the parked ones dead (their keys
/// parked), the retrying ones waiting for their retry.
async fn settle<S: Store>(
    store: &S,
    p: &FifoParams,
    state: &Arc<OrderState>,
    options: HandlerOptions,
) -> anyhow::Result<()> {
    let (stop, running) = start_pool(store, p, state, options)?;
    let deadline = Instant::now() + p.timeout;
    let settled = loop {
        let parked = parked_keys(store, p).await?;
        let retrying = retrying(store).await?;
        if parked == p.parked_keys as usize && retrying == i64::from(p.retrying_keys) {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        tokio::time::sleep(SETTLE_POLL).await;
    };
    stop.cancel();
    running.await.context("worker pool panicked")??;
    anyhow::ensure!(
        settled,
        "the held keys' heads did not settle within {:?}: {} of {} failed, {} of {} retried",
        p.timeout,
        state.heads_failed.load(Ordering::Acquire),
        p.parked_keys,
        state.heads_retried.load(Ordering::Acquire),
        p.retrying_keys
    );
    Ok(())
}

type Running = tokio::task::JoinHandle<conveyor::Result<()>>;

/// Start a pool of [`CheckOrder`] on `store`; cancel the token to stop it.
fn start_pool<S: Store>(
    store: &S,
    p: &FifoParams,
    state: &Arc<OrderState>,
    options: HandlerOptions,
) -> anyhow::Result<(CancellationToken, Running)> {
    let pool = WorkerPool::builder(store.clone())
        .register_with(CheckOrder(state.clone()), options)
        .delivered_retention(p.delivered_retention)
        .build()?;
    let stop = CancellationToken::new();
    let running = tokio::spawn(pool.run(stop.clone().cancelled_owned()));
    Ok((stop, running))
}

fn queue() -> Queue {
    Queue::new(<Sequenced as conveyor::Event>::NAME, None)
}

/// The queue's parked keys (at most one more than expected, to see too many).
async fn parked_keys<S: Store>(store: &S, p: &FifoParams) -> anyhow::Result<usize> {
    let parked = store
        .parked_keys(Some(&queue()), p.parked_keys as usize + 1)
        .await
        .context("listing the parked keys")?;
    Ok(parked.len())
}

async fn retrying<S: Store>(store: &S) -> anyhow::Result<i64> {
    let stats = store.stats().await.context("reading stats")?;
    Ok(stats
        .iter()
        .find(|s| s.queue == queue())
        .map_or(0, |s| s.retrying))
}

async fn pending_and_dead<S: Store>(store: &S) -> anyhow::Result<(i64, i64)> {
    let stats = store.stats().await.context("reading stats")?;
    Ok(stats
        .iter()
        .find(|s| s.queue == queue())
        .map_or((0, 0), |s| (s.pending, s.dead)))
}
