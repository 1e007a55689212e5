//! Connection hygiene and HTTP-level limits, over raw TCP where the client must misbehave:
//! header read, idle and body timeouts, the connection cap, bounded graceful shutdown, the
//! request timeout (503 + `Retry-After`), the in-flight bound and `X-Request-ID` checks on
//! every route.
//!
//! Every test sets its limits short through [`Settings::http`](conveyor_server::Settings).

use std::time::Duration;

use conveyor_integration::{spawn_sqlite_app, TestApp};
use conveyor_server::HttpLimits;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::assert_error;

/// Long enough never to fire during a test.
const LONG: Duration = Duration::from_secs(30);

/// The API-only server on SQLite with `limits` adjusted by `tweak` (everything else long).
async fn app_with(tweak: impl FnOnce(&mut HttpLimits)) -> TestApp {
    spawn_sqlite_app(|s| {
        s.run_workers = false;
        s.http = HttpLimits {
            header_read_timeout: LONG,
            idle_timeout: LONG,
            body_timeout: LONG,
            request_timeout: LONG,
            // short: several tests leave a request stalled when they shut down
            shutdown_timeout: Duration::from_millis(500),
            ..HttpLimits::default()
        };
        tweak(&mut s.http);
    })
    .await
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.addr).await.expect("connecting")
}

/// Whether the server closes `stream` (EOF or reset) within `limit`; any bytes it sends
/// first (such as a 408) are skipped.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// One response read off `stream`: its status, its head (lowercased) and its body.
async fn read_response(stream: &mut TcpStream) -> (u16, String, String) {
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read(&mut buf).await.expect("reading a response");
            assert!(n > 0, "connection closed before a response: {data:?}");
            data.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&data[..head_end]).to_lowercase();
        let status = head[9..12].parse().expect("a status code");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().expect("a content length"));
        while data.len() < head_end + length {
            let n = stream.read(&mut buf).await.expect("reading a body");
            assert!(n > 0, "connection closed inside a body");
            data.extend_from_slice(&buf[..n]);
        }
        let body = String::from_utf8_lossy(&data[head_end..head_end + length]).into_owned();
        (status, head, body)
    })
    .await
    .expect("a response within 10 s")
}

/// `GET /healthz` on a keep-alive connection, asserting the 200.
async fn healthz_on(stream: &mut TcpStream) {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let (status, _, body) = read_response(stream).await;
    assert_eq!(status, 200, "{body}");
}

/// A bulk POST whose head is sent but whose body stops after a few bytes of the 100 000
/// it declares: its route waits for the rest.
async fn stalled_bulk_post(app: &TestApp) -> TcpStream {
    let mut stream = connect(app).await;
    let head = format!(
        "POST /v1/events/bulk HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{\"events\": [",
        app.key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

#[tokio::test]
async fn silent_and_trickling_sockets_are_closed_after_the_header_read_timeout() {
    let app = app_with(|h| h.header_read_timeout = Duration::from_millis(300)).await;
    let mut silent = connect(&app).await;
    let trickling = connect(&app).await;
    let (mut read, mut write) = trickling.into_split();
    let trickle = tokio::spawn(async move {
        let _ = write
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
            .await;
        for i in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if write
                .write_all(format!("x-trickle-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    });
    assert!(
        closed_within(&mut silent, Duration::from_secs(3)).await,
        "a socket that sends nothing is kept open"
    );
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        while let Ok(n) = read.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a socket trickling its header is kept open");
    trickle.abort();
    app.shutdown().await;
}

/// Answer one `/healthz` on a fresh keep-alive connection, then assert the server closes it
/// within 3 s; `kept_open` says what is wrong if not.
async fn assert_closed_once_idle(app: &TestApp, kept_open: &str) {
    let mut stream = connect(app).await;
    healthz_on(&mut stream).await;
    assert!(
        closed_within(&mut stream, Duration::from_secs(3)).await,
        "{kept_open}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    // the header read timeout is long: the idle timeout closes the connection
    let app = app_with(|h| {
        h.header_read_timeout = Duration::from_secs(10);
        h.idle_timeout = Duration::from_millis(300);
    })
    .await;
    assert_closed_once_idle(&app, "an idle keep-alive connection is kept open").await;
    app.shutdown().await;
}

#[tokio::test]
async fn the_header_read_timeout_also_closes_idle_http1_keep_alive_connections() {
    // hyper 1.x runs its header timer while an HTTP/1 connection waits for the next request
    let app = app_with(|h| h.header_read_timeout = Duration::from_millis(300)).await;
    assert_closed_once_idle(
        &app,
        "an idle keep-alive connection outlives the header read timeout",
    )
    .await;
    app.shutdown().await;
}

#[tokio::test]
async fn at_the_connection_cap_new_clients_wait_while_open_connections_keep_working() {
    let app = app_with(|h| {
        h.max_connections = 2;
        h.header_read_timeout = Duration::from_secs(2);
    })
    .await;
    // the cap: one keep-alive client and one that sends nothing
    let mut keep_alive = connect(&app).await;
    healthz_on(&mut keep_alive).await;
    let _silent = connect(&app).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (client, url) = (app.client.clone(), format!("{}/healthz", app.base));
    let mut newcomer = tokio::spawn(async move { client.get(url).send().await });
    let early = tokio::time::timeout(Duration::from_millis(500), &mut newcomer).await;
    assert!(
        early.is_err(),
        "a connection past the cap was served: {early:?}"
    );
    // the open keep-alive connection still answers /healthz
    healthz_on(&mut keep_alive).await;
    // once the header read timeout frees slots, the waiting client is served
    let response = tokio::time::timeout(Duration::from_secs(10), newcomer)
        .await
        .expect("the waiting client is served once a slot frees")
        .unwrap()
        .expect("the waiting client's request succeeds");
    assert_eq!(response.status(), 200);
    app.shutdown().await;
}

#[tokio::test]
async fn shutdown_finishes_within_its_timeout_while_requests_are_half_sent() {
    let app = app_with(|h| h.shutdown_timeout = Duration::from_millis(500)).await;
    let _half_body = stalled_bulk_post(&app).await;
    let mut half_head = connect(&app).await;
    half_head
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: te")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::time::timeout(Duration::from_secs(5), app.shutdown())
        .await
        .expect("the server stops within 5 s of being asked to");
}

/// Send a [`stalled_bulk_post`] and assert its answer's `status`; the answer's head and its
/// JSON error body.
async fn stalled_bulk_answer(app: &TestApp, status: u16) -> (String, Value) {
    let mut stream = stalled_bulk_post(app).await;
    let (got, head, body) = read_response(&mut stream).await;
    assert_eq!(got, status, "{head}{body}");
    (
        head,
        serde_json::from_str(&body).expect("a JSON error body"),
    )
}

#[tokio::test]
async fn a_request_past_the_request_timeout_is_503_with_retry_after() {
    let app = app_with(|h| h.request_timeout = Duration::from_millis(300)).await;
    let (head, body) = stalled_bulk_answer(&app, 503).await;
    assert!(head.contains("\r\nretry-after: 1\r\n"), "{head}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("300 ms")),
        "{body}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_stalled_request_body_fails_after_the_body_timeout() {
    let app = app_with(|h| h.body_timeout = Duration::from_millis(300)).await;
    let (_, body) = stalled_bulk_answer(&app, 400).await;
    assert_eq!(body["field"], "body", "{body}");
    app.shutdown().await;
}

#[tokio::test]
async fn requests_past_the_in_flight_bound_are_503_with_retry_after_but_healthz_answers() {
    let app = app_with(|h| h.max_requests_in_flight = 1).await;
    let _holder = stalled_bulk_post(&app).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let response = app.get(&app.key, "/v1/analytics/event-types").await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("too many requests")),
        "{body}"
    );
    let response = app.get(&app.key, "/v1/analytics/event-types").await;
    assert_eq!(response.status(), 503);
    let health = app.get_without_key("/healthz").await;
    assert_eq!(health.status(), 200);
    app.shutdown().await;
}

#[tokio::test]
async fn a_bad_request_id_is_400_on_every_route() {
    let app = app_with(|_| {}).await;
    for (path, id) in [
        ("/healthz", "r".repeat(129)),
        ("/v1/analytics/event-types", "has space".to_owned()),
        ("/v1/search?q=x", "é".to_owned()),
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.base))
            .bearer_auth(&app.key)
            .header("x-request-id", id.as_bytes())
            .send()
            .await
            .unwrap();
        assert_error(response, 400, "x-request-id").await;
    }
    // a valid one is still echoed
    let response = app
        .client
        .get(format!("{}/healthz", app.base))
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "req-42");
    app.shutdown().await;
}
