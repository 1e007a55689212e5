//! The ingest driver against a stand-in for the server's bulk endpoint: accepted events,
//! failures by status, and the catch-up probe.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use conveyor_bench::{ingest, IngestParams, Progress};
use futures::FutureExt as _;
use support::assert_well_formed;

/// A stand-in for the server's bulk endpoint: 202 for the right key (503 for every
/// `fail_every`th request when set), counting accepted events.
async fn fake_server(fail_every: u64) -> (String, Arc<AtomicU64>) {
    let accepted = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    let counter = accepted.clone();
    let app = Router::new().route(
        "/v1/events/bulk",
        post(
            move |headers: HeaderMap, Json(body): Json<serde_json::Value>| {
                let (accepted, requests) = (counter.clone(), requests.clone());
                async move {
                    if headers.get("authorization").and_then(|v| v.to_str().ok())
                        != Some("Bearer k")
                    {
                        return (StatusCode::UNAUTHORIZED, Json(serde_json::json!({})));
                    }
                    let n = requests.fetch_add(1, Ordering::Relaxed) + 1;
                    if fail_every > 0 && n % fail_every == 0 {
                        return (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({})));
                    }
                    let events = body["events"].as_array().map_or(0, Vec::len) as u64;
                    accepted.fetch_add(events, Ordering::Relaxed);
                    (
                        StatusCode::ACCEPTED,
                        Json(serde_json::json!({"request_id": "r", "accepted": events})),
                    )
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, accepted)
}

fn tiny_ingest() -> IngestParams {
    IngestParams {
        clients: 4,
        requests: 40,
        events_per_request: 10,
        catch_up_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

#[tokio::test]
async fn ingest_counts_accepted_events_and_catches_up() {
    let (url, accepted) = fake_server(0).await;
    let probe = move |acknowledged: u64| {
        assert_eq!(acknowledged, 400, "the probe learns what was accepted");
        let accepted = accepted.clone();
        async move { Ok(accepted.load(Ordering::Relaxed) >= acknowledged) }.boxed()
    };
    let reports = ingest(&tiny_ingest(), &url, "k", probe, Progress::Hidden)
        .await
        .expect("ingest");
    let report = &reports[0];
    assert_well_formed(report, "ingest", "http");
    assert_eq!(report.events, 400);
    assert_eq!(report.counts["requests_ok"], 40);
    assert_eq!(report.counts["failures"], 0);
    assert_eq!(report.counts["status_202"], 40);
    assert!(report.rates["end_to_end"] > 0.0, "{report:?}");
    assert_eq!(report.latency_ms.expect("latency").samples, 40);
}

#[tokio::test]
async fn ingest_counts_failures_by_status() {
    let (url, _) = fake_server(4).await;
    let probe = |_| async { Ok(true) }.boxed();
    let reports = ingest(&tiny_ingest(), &url, "k", probe, Progress::Hidden)
        .await
        .expect("ingest");
    let report = &reports[0];
    assert_eq!(report.counts["status_503"], 10, "{report:?}");
    assert_eq!(report.counts["status_202"], 30);
    assert_eq!(report.counts["failures"], 10);
    assert_eq!(report.events, 300);

    let reports = ingest(&tiny_ingest(), &url, "wrong", probe, Progress::Hidden)
        .await
        .expect("ingest");
    assert_eq!(reports[0].counts["status_401"], 40);
    assert_eq!(reports[0].events, 0);
}

#[tokio::test]
async fn ingest_notes_a_pipeline_that_never_catches_up() {
    let (url, _) = fake_server(0).await;
    let params = IngestParams {
        catch_up_timeout: Duration::from_millis(100),
        ..tiny_ingest()
    };
    let probe = |_| async { anyhow::Ok(false) }.boxed();
    let reports = ingest(&params, &url, "k", probe, Progress::Hidden)
        .await
        .expect("ingest");
    let report = &reports[0];
    assert!(!report.rates.contains_key("end_to_end"), "{report:?}");
    assert!(
        report.notes.iter().any(|n| n.contains("not caught up")),
        "{report:?}"
    );
}
