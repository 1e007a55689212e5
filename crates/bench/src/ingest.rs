//! The `ingest` driver: concurrent clients send `POST /v1/events/bulk` requests of synthetic
//! events to a running server; it reports accepted events/s, API latency, failures by
//! status, and, through a caller-supplied probe, how long until the pipeline caught up.
//!
//! The driver knows only the HTTP API. Whoever starts the server (the `conveyor bench`
//! command, a test) supplies `caught_up`, which reads the server's database, and, for
//! [`ingest_with_outage`], the [`TcpProxy`] the server reaches its database through.

mod body;
mod outage;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::future::BoxFuture;
use tokio::task::JoinSet;

use self::body::body;
use self::outage::Outage;
use crate::progress::{Bar, Progress};
use crate::proxy::TcpProxy;
use crate::report::{secs, Percentiles, Report};

/// How often `caught_up` is asked.
const CATCH_UP_POLL: Duration = Duration::from_millis(20);
/// Parameters of [`ingest`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct IngestParams {
    /// Concurrent clients, each sending one request at a time. Defaults to 16.
    pub clients: usize,
    /// Requests in all. Defaults to 1,000.
    pub requests: usize,
    /// Events per request. Defaults to 100.
    pub events_per_request: usize,
    /// How long to wait for the pipeline to catch up after the last response. Defaults to 5 minutes.
    #[serde(with = "secs")]
    pub catch_up_timeout: Duration,
    /// The most one request may take before it counts as failed. Defaults to 30 s.
    #[serde(with = "secs")]
    pub request_timeout: Duration,
    /// How long the server's database is cut off during the run ([`ingest_with_outage`]).
    /// Defaults to zero: no outage.
    #[serde(with = "secs")]
    pub outage: Duration,
}

impl Default for IngestParams {
    fn default() -> Self {
        Self {
            clients: 16,
            requests: 1_000,
            events_per_request: 100,
            catch_up_timeout: Duration::from_secs(300),
            request_timeout: Duration::from_secs(30),
            outage: Duration::ZERO,
        }
    }
}

/// Drive `POST {base_url}/v1/events/bulk` with `api_key` as bearer token, then poll
/// `caught_up(accepted)` every 20 ms, `accepted` being the events the server acknowledged
/// with 202, until it returns `true` (the pipeline has handled all of them) or
/// `catch_up_timeout` passes.
///
/// Returns one `bulk` report: `events` and `rate` are the accepted events (202s) and
/// accepted events/s, the percentiles are the 202s' response times, `counts` holds
/// `requests_ok`, `failures` and one `status_<code>` (or `status_error` for a transport
/// error) per outcome, and `rates.end_to_end` is accepted events over the time from the
/// first request until caught up (absent, with a note, on timeout).
///
/// # Errors
/// When `params.outage` is not zero (that takes [`ingest_with_outage`]), the HTTP client
/// cannot be built or a client task panics. Failed requests and `caught_up` errors are
/// counted or noted, not returned.
pub async fn ingest<F>(
    params: &IngestParams,
    base_url: &str,
    api_key: &str,
    caught_up: F,
    progress: Progress,
) -> anyhow::Result<Vec<Report>>
where
    F: Fn(u64) -> BoxFuture<'static, anyhow::Result<bool>>,
{
    anyhow::ensure!(
        params.outage.is_zero(),
        "an ingest outage needs the proxy in front of the server's database: ingest_with_outage"
    );
    run(params, base_url, api_key, caught_up, None, progress).await
}

/// [`ingest`] with the server's database taken away for `params.outage`: `proxy`, which
/// the server reaches its database through, is cut as the request at a tenth of the run is
/// taken (or 1 s after the first, whichever comes first) and restored after the outage; the
/// catch-up wait begins when both the clients are done and the proxy is restored.
///
/// Returns the `bulk` report of [`ingest`] over the whole run, then an `outage` report of
/// the responses that came while the proxy was cut: `events` and `rate` are the events
/// accepted meanwhile and their rate over the outage, the percentiles are those 202s'
/// response times, `counts` holds `requests`, `requests_ok`, `failures` and `status_*` of
/// those responses, `proxied_connections` and `refused_connections` (the proxy's, over the
/// run) and `caught_up_after_restore_ms` (the time from the restore until `caught_up`;
/// absent, with a note, on timeout).
///
/// # Errors
/// As [`ingest`]; also when `params.outage` is zero.
pub async fn ingest_with_outage<F>(
    params: &IngestParams,
    base_url: &str,
    api_key: &str,
    caught_up: F,
    proxy: Arc<TcpProxy>,
    progress: Progress,
) -> anyhow::Result<Vec<Report>>
where
    F: Fn(u64) -> BoxFuture<'static, anyhow::Result<bool>>,
{
    anyhow::ensure!(!params.outage.is_zero(), "an ingest outage needs a length");
    let outage = Outage::new(proxy, params.outage, params.requests);
    run(params, base_url, api_key, caught_up, Some(outage), progress).await
}

/// The run of [`ingest`] and [`ingest_with_outage`].
async fn run<F>(
    params: &IngestParams,
    base_url: &str,
    api_key: &str,
    caught_up: F,
    outage: Option<Outage>,
    progress: Progress,
) -> anyhow::Result<Vec<Report>>
where
    F: Fn(u64) -> BoxFuture<'static, anyhow::Result<bool>>,
{
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(params.clients.max(1))
        .timeout(params.request_timeout)
        .build()
        .context("building the HTTP client")?;
    let driver = Arc::new(Driver {
        http,
        url: format!("{}/v1/events/bulk", base_url.trim_end_matches('/')),
        api_key: api_key.to_owned(),
        events_per_request: params.events_per_request,
        requests: params.requests,
        next: AtomicUsize::new(0),
        bar: progress.bar("ingest", params.requests as u64),
        outage: outage.map(Arc::new),
    });
    let started = Instant::now();
    let mut clients = JoinSet::new();
    for _ in 0..params.clients.max(1) {
        clients.spawn(driver.clone().client());
    }
    let collect = async {
        let (mut tally, mut during) = (Tally::default(), Tally::default());
        while let Some(done) = clients.join_next().await {
            let (all, cut) = done.context("ingest client panicked")?;
            tally.merge(all);
            during.merge(cut);
        }
        anyhow::Ok((tally, during, started.elapsed()))
    };
    let restore = async {
        if let Some(outage) = &driver.outage {
            outage.run().await;
        }
    };
    let (collected, ()) = tokio::join!(collect, restore);
    let (tally, during, sending) = collected?;
    driver.bar.finish();

    let mut report = Report::new("ingest", "bulk", "http", params, tally.accepted, sending)
        .latency(Percentiles::of(&tally.latencies_ms))
        .count("requests_ok", tally.latencies_ms.len() as u64)
        .count("failures", tally.failures);
    for (status, n) in &tally.statuses {
        report = report.count(&format!("status_{status}"), *n);
    }
    let waited = wait_caught_up(&caught_up, tally.accepted, params.catch_up_timeout).await;
    let caught_up_at = waited.is_ok().then(Instant::now);
    match waited {
        Ok(()) => {
            let e2e = started.elapsed();
            report = report
                .rate("end_to_end", tally.accepted as f64 / e2e.as_secs_f64())
                .note(format!(
                    "caught up {:.2} s after the first request",
                    e2e.as_secs_f64()
                ));
        }
        Err(why) => report = report.note(why),
    }
    let Some(outage) = &driver.outage else {
        return Ok(vec![report]);
    };
    report = report.note(format!(
        "includes a {:.1} s outage of the server's database: see the `outage` result",
        params.outage.as_secs_f64()
    ));
    let outage = outage.report(params, &during, started + sending, caught_up_at);
    Ok(vec![report, outage])
}

/// Poll until `caught_up(accepted)` says so; the reason on timeout.
async fn wait_caught_up<F>(caught_up: &F, accepted: u64, timeout: Duration) -> Result<(), String>
where
    F: Fn(u64) -> BoxFuture<'static, anyhow::Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match caught_up(accepted).await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_error = Some(format!("{e:#}")),
        }
        if Instant::now() >= deadline {
            let error = last_error.map_or(String::new(), |e| format!(" (last probe error: {e})"));
            return Err(format!(
                "not caught up within {timeout:?} of the last response{error}"
            ));
        }
        tokio::time::sleep(CATCH_UP_POLL).await;
    }
}

/// What the clients share: the client, the target, and the next request number.
struct Driver {
    http: reqwest::Client,
    url: String,
    api_key: String,
    events_per_request: usize,
    requests: usize,
    next: AtomicUsize,
    bar: Bar,
    /// The database outage of [`ingest_with_outage`].
    outage: Option<Arc<Outage>>,
}

/// Not derived: the API key stays out of it.
impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("url", &crate::redact_url(&self.url))
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

/// One client's (and then all clients') outcomes.
#[derive(Debug, Default)]
struct Tally {
    accepted: u64,
    failures: u64,
    latencies_ms: Vec<f64>,
    statuses: BTreeMap<String, u64>,
}

impl Tally {
    /// Count one response: its status, and for a 202 its accepted events and response time.
    fn record(&mut self, status: &str, accepted: Option<(u64, f64)>) {
        match accepted {
            Some((events, latency_ms)) => {
                self.accepted += events;
                self.latencies_ms.push(latency_ms);
            }
            None => self.failures += 1,
        }
        *self.statuses.entry(status.to_owned()).or_default() += 1;
    }

    /// Requests answered, successfully or not.
    fn requests(&self) -> u64 {
        self.statuses.values().sum()
    }

    fn merge(&mut self, other: Tally) {
        self.accepted += other.accepted;
        self.failures += other.failures;
        self.latencies_ms.extend(other.latencies_ms);
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
    }
}

impl Driver {
    /// Send requests one at a time until all have been taken: the tally of all of them, and
    /// of those answered while the database was cut.
    async fn client(self: Arc<Self>) -> (Tally, Tally) {
        let (mut tally, mut during) = (Tally::default(), Tally::default());
        loop {
            let r = self.next.fetch_add(1, Ordering::Relaxed);
            if r >= self.requests {
                return (tally, during);
            }
            if let Some(outage) = &self.outage {
                outage.taking(r);
            }
            let body = body(r, self.events_per_request);
            let sent = Instant::now();
            let response = self
                .http
                .post(&self.url)
                .bearer_auth(&self.api_key)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await;
            let (status, accepted) = match response {
                Ok(response) if response.status() == reqwest::StatusCode::ACCEPTED => {
                    let accepted = response
                        .json::<Accepted>()
                        .await
                        .map_or(self.events_per_request as u64, |a| a.accepted);
                    let latency_ms = sent.elapsed().as_secs_f64() * 1e3;
                    ("202".to_owned(), Some((accepted, latency_ms)))
                }
                Ok(response) => (response.status().as_u16().to_string(), None),
                Err(_) => ("error".to_owned(), None),
            };
            tally.record(&status, accepted);
            if self.outage.as_ref().is_some_and(|o| o.during()) {
                during.record(&status, accepted);
            }
            self.bar.inc(1);
        }
    }
}

/// The part of the 202 body the driver reads.
#[derive(Debug, serde::Deserialize)]
struct Accepted {
    accepted: u64,
}
