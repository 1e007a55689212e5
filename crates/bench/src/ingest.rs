//! The `ingest` driver: concurrent clients send `POST /v1/events/bulk` requests of synthetic
//! events to a running server; it reports accepted events/s, API latency, failures by
//! status, and, through a caller-supplied probe, how long until the pipeline caught up.
//!
//! The driver knows only the HTTP API. Whoever starts the server (the `conveyor bench`
//! command, a test) supplies `caught_up`, which reads the server's database.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::task::JoinSet;

use crate::progress::{Bar, Progress};
use crate::report::{secs, Percentiles, Report};

/// How often `caught_up` is asked.
const CATCH_UP_POLL: Duration = Duration::from_millis(20);
/// Event types the synthetic events cycle through.
const EVENT_TYPES: [&str; 10] = [
    "page_view",
    "click",
    "signup",
    "login",
    "logout",
    "search",
    "add_to_cart",
    "checkout",
    "purchase",
    "share",
];
/// Sources the synthetic events cycle through.
const SOURCES: [&str; 3] = ["web", "ios", "android"];

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
}

impl Default for IngestParams {
    fn default() -> Self {
        Self {
            clients: 16,
            requests: 1_000,
            events_per_request: 100,
            catch_up_timeout: Duration::from_secs(300),
            request_timeout: Duration::from_secs(30),
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
/// When the HTTP client cannot be built or a client task panics. Failed requests and
/// `caught_up` errors are counted or noted, not returned.
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
    });
    let started = Instant::now();
    let mut clients = JoinSet::new();
    for _ in 0..params.clients.max(1) {
        clients.spawn(driver.clone().client());
    }
    let mut tally = Tally::default();
    while let Some(done) = clients.join_next().await {
        tally.merge(done.context("ingest client panicked")?);
    }
    let sending = started.elapsed();
    driver.bar.finish();

    let mut report = Report::new("ingest", "bulk", "http", params, tally.accepted, sending)
        .latency(Percentiles::of(&tally.latencies_ms))
        .count("requests_ok", tally.latencies_ms.len() as u64)
        .count("failures", tally.failures);
    for (status, n) in &tally.statuses {
        report = report.count(&format!("status_{status}"), *n);
    }
    match wait_caught_up(&caught_up, tally.accepted, params.catch_up_timeout).await {
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
    Ok(vec![report])
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
    /// Send requests one at a time until all have been taken.
    async fn client(self: Arc<Self>) -> Tally {
        let mut tally = Tally::default();
        loop {
            let r = self.next.fetch_add(1, Ordering::Relaxed);
            if r >= self.requests {
                return tally;
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
            let status = match response {
                Ok(response) if response.status() == reqwest::StatusCode::ACCEPTED => {
                    let accepted = response
                        .json::<Accepted>()
                        .await
                        .map_or(self.events_per_request as u64, |a| a.accepted);
                    tally.latencies_ms.push(sent.elapsed().as_secs_f64() * 1e3);
                    tally.accepted += accepted;
                    "202".to_owned()
                }
                Ok(response) => {
                    tally.failures += 1;
                    response.status().as_u16().to_string()
                }
                Err(_) => {
                    tally.failures += 1;
                    "error".to_owned()
                }
            };
            *tally.statuses.entry(status).or_default() += 1;
            self.bar.inc(1);
        }
    }
}

/// The part of the 202 body the driver reads.
#[derive(Debug, serde::Deserialize)]
struct Accepted {
    accepted: u64,
}

/// One synthetic event in the API's request shape.
#[derive(Debug, serde::Serialize)]
struct EventOut {
    event_id: uuid::Uuid,
    event_type: &'static str,
    actor_id: String,
    source: &'static str,
    timestamp: DateTime<Utc>,
    attributes: Attributes,
}

/// The synthetic events' attributes.
#[derive(Debug, serde::Serialize)]
struct Attributes {
    page: String,
    n: usize,
}

/// The JSON body of request number `r`: `events` fresh events, stamped now.
fn body(r: usize, events: usize) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Bulk {
        events: Vec<EventOut>,
    }
    let now = Utc::now();
    let events = (0..events)
        .map(|i| EventOut {
            event_id: uuid::Uuid::new_v4(),
            event_type: EVENT_TYPES[i % EVENT_TYPES.len()],
            actor_id: format!("actor_{}", (r * events + i) % 5_000),
            source: SOURCES[i % SOURCES.len()],
            timestamp: now,
            attributes: Attributes {
                page: format!("/p/{}", i % 50),
                n: i,
            },
        })
        .collect();
    // serializing plain structs of strings and numbers cannot fail
    serde_json::to_vec(&Bulk { events }).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_api_shape_with_unique_event_ids() {
        let body: serde_json::Value = serde_json::from_slice(&body(3, 5)).expect("json");
        let events = body["events"].as_array().expect("events array");
        assert_eq!(events.len(), 5);
        for field in [
            "event_id",
            "event_type",
            "actor_id",
            "source",
            "timestamp",
            "attributes",
        ] {
            assert!(events[0].get(field).is_some(), "missing {field}");
        }
        let ids: std::collections::HashSet<_> =
            events.iter().map(|e| e["event_id"].clone()).collect();
        assert_eq!(ids.len(), 5);
    }
}
