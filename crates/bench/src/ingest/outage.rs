//! The database outage of an ingest run: the [`TcpProxy`] in front of the server's
//! database is cut when the request at a tenth of the run is taken (or after
//! [`START_AFTER`], whichever comes first), for the outage's length, then restored; the
//! driver asks [`Outage::during`] to tell which responses came while it was cut.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::{IngestParams, Tally};
use crate::proxy::TcpProxy;
use crate::report::{Percentiles, Report};

/// The latest the outage begins after the first request.
const START_AFTER: Duration = Duration::from_secs(1);

/// Before the cut.
const BEFORE: u8 = 0;
/// Cut.
const DURING: u8 = 1;
/// Restored.
const AFTER: u8 = 2;

/// One outage of `length` on `proxy`.
#[derive(Debug)]
pub(super) struct Outage {
    proxy: Arc<TcpProxy>,
    length: Duration,
    /// The request number whose taking begins the outage.
    at_request: usize,
    phase: AtomicU8,
    begun: Notify,
    window: Mutex<Window>,
}

/// When the outage began and ended.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Window {
    /// When the proxy was cut.
    pub(super) cut: Option<Instant>,
    /// When it was restored.
    pub(super) restored: Option<Instant>,
}

impl Outage {
    /// An outage of `length` on `proxy` in a run of `requests` requests.
    pub(super) fn new(proxy: Arc<TcpProxy>, length: Duration, requests: usize) -> Self {
        Self {
            proxy,
            length,
            at_request: requests / 10,
            phase: AtomicU8::new(BEFORE),
            begun: Notify::new(),
            window: Mutex::new(Window::default()),
        }
    }

    /// Called as request number `r` is taken, before it is sent: request `requests / 10`
    /// begins the outage.
    pub(super) fn taking(&self, r: usize) {
        if r == self.at_request {
            self.begin();
        }
    }

    /// Whether the proxy is cut now.
    pub(super) fn during(&self) -> bool {
        self.phase.load(Ordering::SeqCst) == DURING
    }

    /// When the outage began and ended so far.
    pub(super) fn window(&self) -> Window {
        *self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The `outage` report of [`ingest_with_outage`](super::ingest_with_outage): `during`
    /// holds the responses that came while the proxy was cut, the clients were done at
    /// `clients_done`, and the pipeline caught up at `caught_up` (`None`: it did not).
    pub(super) fn report(
        &self,
        params: &IngestParams,
        during: &Tally,
        clients_done: Instant,
        caught_up: Option<Instant>,
    ) -> Report {
        let Window { cut, restored } = self.window();
        let (Some(cut), Some(restored)) = (cut, restored) else {
            // `run` sets both before the driver reports
            return Report::new("ingest", "outage", "http", params, 0, Duration::ZERO)
                .note("the outage did not happen");
        };
        let length = restored.saturating_duration_since(cut);
        let mut report = Report::new("ingest", "outage", "http", params, during.accepted, length)
            .latency(Percentiles::of(&during.latencies_ms))
            .count("requests", during.requests())
            .count("requests_ok", during.latencies_ms.len() as u64)
            .count("failures", during.failures)
            .count("proxied_connections", self.proxy.forwarded())
            .count("refused_connections", self.proxy.refused())
            .note(format!(
            "the server's database was cut off for {:.2} s; {} requests were answered meanwhile",
            length.as_secs_f64(),
            during.requests()
        ));
        for (status, n) in &during.statuses {
            report = report.count(&format!("status_{status}"), *n);
        }
        if clients_done < restored {
            report = report.note(format!(
                "the clients were done {:.2} s into the outage: only that part of it was under \
                 load (more requests load all of it)",
                clients_done.saturating_duration_since(cut).as_secs_f64()
            ));
        }
        match caught_up {
            Some(at) => {
                let after = at.saturating_duration_since(restored);
                report
                    .count("caught_up_after_restore_ms", after.as_millis() as u64)
                    .note(format!(
                        "everything accepted had landed {:.2} s after the restore",
                        after.as_secs_f64()
                    ))
            }
            None => report.note("not caught up after the restore: see the `bulk` result"),
        }
    }

    /// Begin the outage after [`START_AFTER`] unless a request began it first, then restore
    /// the proxy once the outage has lasted its length. Started with the first client.
    pub(super) async fn run(&self) {
        tokio::select! {
            () = tokio::time::sleep(START_AFTER) => self.begin(),
            () = self.begun.notified() => {}
        }
        let cut = self.window().cut.unwrap_or_else(Instant::now);
        tokio::time::sleep_until((cut + self.length).into()).await;
        self.set(|w| w.restored = Some(Instant::now()));
        self.phase.store(AFTER, Ordering::SeqCst);
        self.proxy.restore();
    }

    /// Cut the proxy, once.
    fn begin(&self) {
        if self
            .phase
            .compare_exchange(BEFORE, DURING, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            self.proxy.cut();
            self.set(|w| w.cut = Some(Instant::now()));
            // a permit if `run` is not waiting yet
            self.begun.notify_one();
        }
    }

    fn set(&self, f: impl FnOnce(&mut Window)) {
        f(&mut self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }
}
