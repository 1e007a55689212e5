//! [`serve`]: the HTTP serving loop of `conveyor serve`, with the connection-level limits of
//! [`HttpLimits`]; the request-level ones (request timeout, requests in flight) are the
//! router's middleware, in `app`.
//!
//! Every connection is served by hyper-util's auto builder (HTTP/1.1 and, with prior
//! knowledge, HTTP/2) under these limits:
//!
//! - **Connection cap** ([`HttpLimits::max_connections`]): at the cap the loop *stops
//!   accepting* until a connection closes. New clients wait in the kernel's listen backlog
//!   (and are served as soon as a slot frees) while the connections already open, keep-alive
//!   ones included, keep working: `/healthz` stays answerable on them. Accepting and closing
//!   at once would refuse those clients instead of queueing them and would still need a file
//!   descriptor per refusal.
//! - **Header read timeout** ([`HttpLimits::header_read_timeout`]): hyper's HTTP/1
//!   `header_read_timeout`. In hyper 1.x its timer runs whenever the connection waits for a
//!   request head, so it also bounds an idle HTTP/1 keep-alive connection between requests.
//!   It does not cover the bytes hyper-util reads to tell HTTP/1 from HTTP/2, nor HTTP/2, so
//!   the watchdog below closes a connection that has not started a request within this
//!   time as well.
//! - **Idle timeout** ([`HttpLimits::idle_timeout`]): a per-connection watchdog closes a
//!   connection that has had no request in flight for this long since its last request
//!   (HTTP/2 connections included, which hyper never closes for idleness). For HTTP/1 the
//!   header read timeout closes idle keep-alive connections too; whichever is shorter wins.
//! - **Body read timeout** ([`HttpLimits::body_timeout`]): tower-http's [`TimeoutBody`]
//!   fails a request body that sends no data for this long (the route then answers its
//!   error; the whole request is still bounded by the request timeout).
//! - **Graceful shutdown**: on `shutdown` the listener closes, every connection is told to
//!   finish (hyper-util's [`GracefulShutdown`]: idle ones close at once, in-flight requests
//!   complete), and after [`HttpLimits::shutdown_timeout`] the connections still open are
//!   dropped.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;
use tower_http::timeout::TimeoutBody;

/// Default of `--max-connections`.
pub(crate) const DEFAULT_MAX_CONNECTIONS: u32 = 1024;
/// Default of `--header-read-timeout-ms`: 10 s.
pub(crate) const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 10_000;
/// Default of `--idle-timeout-secs`.
pub(crate) const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
/// Default of `--body-timeout-ms`: 30 s.
pub(crate) const DEFAULT_BODY_TIMEOUT_MS: u64 = 30_000;
/// Default of `--request-timeout-ms`: 30 s.
pub(crate) const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;
/// Default of `--max-requests-in-flight`.
pub(crate) const DEFAULT_MAX_REQUESTS_IN_FLIGHT: u32 = 512;
/// Default of `--shutdown-timeout-secs`.
pub(crate) const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 10;

/// How long the loop pauses after an accept error that is not one connection's (such as
/// running out of file descriptors), so it does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(200);

/// The HTTP server's connection and request limits: a connection cap, header-read, idle, body
/// and request timeouts, a bound on requests in flight, and the shutdown drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Connections served at once; at the cap new ones wait in the listen backlog.
    /// Defaults to 1024.
    pub max_connections: usize,
    /// Time a client has to send a request's head, and the most an HTTP/1 keep-alive
    /// connection may sit idle between requests. Defaults to 10 s.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed. Defaults to 60 s.
    pub idle_timeout: Duration,
    /// Longest wait for the next piece of a request body. Defaults to 30 s.
    pub body_timeout: Duration,
    /// Longest a request may take before it is answered 503 with `Retry-After`.
    /// Defaults to 30 s.
    pub request_timeout: Duration,
    /// Requests handled at once (`/healthz` not counted); past it requests are answered
    /// 503 with `Retry-After`. Defaults to 512.
    pub max_requests_in_flight: usize,
    /// On shutdown, how long open connections may take to finish before they are dropped.
    /// Defaults to 10 s.
    pub shutdown_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS as usize,
            header_read_timeout: Duration::from_millis(DEFAULT_HEADER_READ_TIMEOUT_MS),
            idle_timeout: Duration::from_secs(DEFAULT_IDLE_TIMEOUT_SECS),
            body_timeout: Duration::from_millis(DEFAULT_BODY_TIMEOUT_MS),
            request_timeout: Duration::from_millis(DEFAULT_REQUEST_TIMEOUT_MS),
            max_requests_in_flight: DEFAULT_MAX_REQUESTS_IN_FLIGHT as usize,
            shutdown_timeout: Duration::from_secs(DEFAULT_SHUTDOWN_TIMEOUT_SECS),
        }
    }
}

/// Serve `router` on `listener` under `limits` until `shutdown` is cancelled, then shut down
/// gracefully within [`HttpLimits::shutdown_timeout`] (see the [module docs](self)).
///
/// # Errors
/// None today: accept errors are logged and retried; the `Result` is for the caller's
/// task bookkeeping.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let builder = Arc::new(builder(&limits));
    let graceful = GracefulShutdown::new();
    let force = CancellationToken::new();
    let tasks = TaskTracker::new();
    loop {
        // at the cap, wait for a slot before accepting: see the module docs
        let slot = tokio::select! {
            () = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::warn!(error.message = %e, "accept failed; pausing");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let connection = Connection {
            builder: builder.clone(),
            router: router.clone(),
            limits,
            force: force.clone(),
        };
        let watcher = graceful.watcher();
        tasks.spawn(async move {
            connection.run(stream, watcher).await;
            drop(slot);
        });
    }
    drop(listener);
    tasks.close();
    tracing::info!(
        connections = tasks.len(),
        "http: shutting down, draining connections"
    );
    if tokio::time::timeout(limits.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = tasks.len(),
            timeout = ?limits.shutdown_timeout,
            "http: connections still open after the shutdown timeout; dropping them"
        );
        force.cancel();
    }
    tasks.wait().await;
    Ok(())
}

/// The per-connection protocol settings: hyper's header read timeout on HTTP/1, with
/// tokio's timer (without a timer hyper silently disables it).
fn builder(limits: &HttpLimits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    builder
}

/// What one connection's task needs.
struct Connection {
    builder: Arc<Builder<TokioExecutor>>,
    router: Router,
    limits: HttpLimits,
    /// Cancelled when the shutdown timeout has passed: drop the connection.
    force: CancellationToken,
}

impl Connection {
    /// Serve one connection until it closes, idles out or is dropped at the shutdown timeout.
    async fn run(self, stream: TcpStream, watcher: hyper_util::server::graceful::Watcher) {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error.message = %e, "cannot set TCP_NODELAY");
        }
        let activity = Arc::new(Activity::new());
        let service = {
            let (router, activity) = (self.router, activity.clone());
            let body_timeout = self.limits.body_timeout;
            hyper::service::service_fn(move |request: Request<Incoming>| {
                let request = request.map(|body| Body::new(TimeoutBody::new(body_timeout, body)));
                let in_flight = activity.begin();
                let response = router.clone().oneshot(request);
                async move {
                    let response = response.await;
                    drop(in_flight);
                    response
                }
            })
        };
        let connection = self.builder.serve_connection(TokioIo::new(stream), service);
        let served = watcher.watch(connection);
        tokio::select! {
            outcome = served => {
                if let Err(e) = outcome {
                    tracing::debug!(error.message = %e, "http: connection ended with an error");
                }
            }
            () = activity.idled_out(self.limits.header_read_timeout, self.limits.idle_timeout) => {
                tracing::debug!("http: closing an idle connection");
            }
            () = self.force.cancelled() => {
                tracing::debug!("http: dropping a connection at the shutdown timeout");
            }
        }
    }
}

/// One connection's requests: how many are in flight, whether one ever started, and when
/// the last one started or finished.
#[derive(Debug)]
struct Activity {
    in_flight: AtomicUsize,
    started_any: AtomicBool,
    last: Mutex<Instant>,
    /// Wakes the watchdog when a request starts or finishes (`notify_one` keeps a permit,
    /// so no change is missed).
    changed: Notify,
}

/// Counts one request in flight on its connection until dropped.
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl Activity {
    fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            started_any: AtomicBool::new(false),
            last: Mutex::new(Instant::now()),
            changed: Notify::new(),
        }
    }

    fn last(&self) -> std::sync::MutexGuard<'_, Instant> {
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A request starts.
    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.started_any.store(true, Ordering::SeqCst);
        *self.last() = Instant::now();
        self.changed.notify_one();
        InFlight(self.clone())
    }

    /// Completes once the connection has had no request in flight for `idle` since its last
    /// one, or for `first` since it opened when no request ever started.
    async fn idled_out(&self, first: Duration, idle: Duration) {
        loop {
            if self.in_flight.load(Ordering::SeqCst) > 0 {
                self.changed.notified().await;
                continue;
            }
            let limit = if self.started_any.load(Ordering::SeqCst) {
                idle
            } else {
                first
            };
            let deadline = *self.last() + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = self.changed.notified() => {}
            }
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.last() = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_one();
    }
}

/// Accept errors that are one connection's (retry at once), not the listener's.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_connection_with_a_request_in_flight_never_idles_out() {
        let activity = Arc::new(Activity::new());
        let request = activity.begin();
        let idle = tokio::time::timeout(
            Duration::from_secs(600),
            activity.idled_out(Duration::from_secs(1), Duration::from_secs(5)),
        );
        assert!(idle.await.is_err(), "idled out with a request in flight");
        drop(request);
        let start = Instant::now();
        activity
            .idled_out(Duration::from_secs(1), Duration::from_secs(5))
            .await;
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_after_the_watchdog_started_moves_its_deadline() {
        let activity = Arc::new(Activity::new());
        let start = Instant::now();
        let watch = activity.idled_out(Duration::from_secs(10), Duration::from_secs(1));
        let requests = async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            drop(activity.begin());
            std::future::pending::<()>().await;
        };
        tokio::select! {
            () = watch => {}
            () = requests => unreachable!(),
        }
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_a_request_idles_out_after_the_first_limit() {
        let activity = Activity::new();
        let start = Instant::now();
        activity
            .idled_out(Duration::from_secs(1), Duration::from_secs(5))
            .await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }
}
