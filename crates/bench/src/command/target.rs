//! `conveyor bench ingest --target`: drive a server already running elsewhere. Only its
//! `/healthz/detailed` is visible, so the pipeline has caught up when its ingestion log and
//! backlog (pending, in flight) are empty.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::FutureExt as _;

use crate::{IngestParams, Progress, Report};

/// Drive the server at `url` with `key`; it has caught up when its `/healthz/detailed`
/// (read with `operator_key`) shows nothing unpublished in the ingestion log and no backlog
/// pending or in flight. The report's backend is `http`.
///
/// # Errors
/// A message naming `--target` when the server does not answer its health check.
pub(super) async fn against(
    url: &str,
    key: &str,
    operator_key: &str,
    params: &IngestParams,
    progress: Progress,
) -> anyhow::Result<Vec<Report>> {
    let health = Arc::new(Health {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client")?,
        url: format!("{url}/healthz/detailed?backlog=true"),
        operator_key: operator_key.to_owned(),
    });
    health
        .settled()
        .await
        .with_context(|| format!("--target: {url} does not answer GET /healthz/detailed"))?;
    let caught_up = move |_accepted: u64| {
        let health = health.clone();
        async move { health.settled().await }.boxed()
    };
    let mut reports = crate::ingest(params, url, key, caught_up, progress).await?;
    for report in &mut reports {
        report.notes.push(format!("target {url}"));
    }
    Ok(reports)
}

/// A running server's `/healthz/detailed`.
#[derive(Debug)]
struct Health {
    http: reqwest::Client,
    url: String,
    operator_key: String,
}

impl Health {
    /// Whether the ingestion log and the backlog (pending, in flight) are empty.
    async fn settled(&self) -> anyhow::Result<bool> {
        let body: serde_json::Value = self
            .http
            .get(&self.url)
            .bearer_auth(&self.operator_key)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let zero = |v: &serde_json::Value| v.as_i64() == Some(0);
        Ok(zero(&body["backlog"]["pending"])
            && zero(&body["backlog"]["in_flight"])
            && zero(&body["ingest_log"]["unpublished_events"]))
    }
}
