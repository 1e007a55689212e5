//! What a test does with a running [`TestApp`]: requests to its API, waiting for the
//! pipeline, and shutting it down.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::{pipeline, remove_database, TestApp};

impl TestApp {
    /// `POST /v1/events/bulk` with `body` as JSON, authenticated with `key`.
    pub async fn post_events(&self, key: &str, body: &serde_json::Value) -> reqwest::Response {
        send(self.bulk_request(Some(key)).json(body)).await
    }

    /// A `POST /v1/events/bulk` request with `key` (if any) and no body yet, to customise.
    pub fn bulk_request(&self, key: Option<&str>) -> reqwest::RequestBuilder {
        let request = self.client.post(format!("{}/v1/events/bulk", self.base));
        match key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// `GET path_and_query`, authenticated with `key`.
    pub async fn get(&self, key: &str, path_and_query: &str) -> reqwest::Response {
        send(self.get_request(path_and_query).bearer_auth(key)).await
    }

    /// `GET path_and_query` with no API key (liveness needs none).
    pub async fn get_without_key(&self, path_and_query: &str) -> reqwest::Response {
        send(self.get_request(path_and_query)).await
    }

    /// `GET path_and_query` with the operator key (as `/healthz/detailed` needs).
    pub async fn get_as_operator(&self, path_and_query: &str) -> reqwest::Response {
        send(
            self.get_request(path_and_query)
                .bearer_auth(&self.operator_key),
        )
        .await
    }

    /// A `method` request to `path_and_query` with `key` (if any) and `body` as JSON (if
    /// any), as the operations API's tests send them.
    pub async fn call(
        &self,
        method: reqwest::Method,
        key: Option<&str>,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, format!("{}{path_and_query}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        send(request).await
    }

    /// A `GET path_and_query` request with no key yet.
    fn get_request(&self, path_and_query: &str) -> reqwest::RequestBuilder {
        self.client.get(format!("{}{path_and_query}", self.base))
    }

    /// `GET path_and_query` with `key` and the JSON body, asserting a 200.
    ///
    /// # Panics
    /// When the status is not 200 or the body is not JSON.
    pub async fn get_json(&self, key: &str, path_and_query: &str) -> serde_json::Value {
        let response = self.get(key, path_and_query).await;
        let status = response.status();
        let body: serde_json::Value = response.json().await.expect("a JSON body");
        assert_eq!(status, 200, "GET {path_and_query}: {body}");
        body
    }

    /// [`wait_for_settled`](Self::wait_for_settled) with 30 s for each step.
    ///
    /// # Panics
    /// After 30 s for either step.
    pub async fn wait_for_drain(&self) {
        self.wait_for_settled(Duration::from_secs(30)).await;
    }

    /// Wait until the ingestion log has published everything acknowledged (as
    /// [`wait_for_published`](Self::wait_for_published)), then until the outbox has nothing
    /// pending or claimed ([`pipeline::wait_for_quiescence`]).
    ///
    /// # Panics
    /// When either step takes longer than `timeout`.
    pub async fn wait_for_settled(&self, timeout: Duration) {
        self.wait_until("the ingestion log published", timeout, || async {
            self.unpublished().await == 0
        })
        .await;
        pipeline::wait_for_quiescence(&self.db, timeout).await;
    }

    /// Poll `check` every 50 ms until it returns true.
    ///
    /// # Panics
    /// When `timeout` passes first; the message names `what`.
    pub async fn wait_until<F, Fut>(&self, what: &str, timeout: Duration, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let start = Instant::now();
        while !check().await {
            assert!(start.elapsed() < timeout, "not {what} after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET /healthz/detailed` with the operator key: (status, body).
    pub async fn detailed_health(&self) -> (u16, serde_json::Value) {
        let response = self.get_as_operator("/healthz/detailed").await;
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }

    /// Events the server's ingestion log holds that are not yet published into the database.
    pub async fn unpublished(&self) -> u64 {
        let (_, body) = self.detailed_health().await;
        body["ingest_log"]["unpublished_events"]
            .as_u64()
            .expect("ingest_log.unpublished_events")
    }

    /// Wait until every acknowledged request is published from the ingestion log into the
    /// database (`events_raw` and the index records hold it).
    ///
    /// # Panics
    /// After 30 s.
    pub async fn wait_for_published(&self) {
        self.wait_until(
            "the ingestion log published",
            Duration::from_secs(30),
            || async { self.unpublished().await == 0 },
        )
        .await;
    }

    /// Make the database unreachable for the server (its pool is closed), as in an outage;
    /// the test's own [`db`](Self::db) still works.
    pub async fn close_database(&self) {
        self.server_db.close().await;
    }

    /// Shut the server down gracefully, wait for it, and remove the ingestion log (and the
    /// SQLite file).
    ///
    /// # Panics
    /// When the server failed or does not stop within 30 s.
    pub async fn shutdown(self) {
        self.token.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.server)
            .await
            .expect("server stops within 30 s")
            .expect("server task does not panic")
            .expect("server runs and stops cleanly");
        self.server_db.close().await;
        self.db.close().await;
        let _ = std::fs::remove_dir_all(&self.scratch);
        if let Some(file) = &self.sqlite_file {
            remove_database(file);
        }
    }
}

/// Send `request`.
///
/// # Panics
/// When it cannot be sent.
async fn send(request: reqwest::RequestBuilder) -> reqwest::Response {
    request.send().await.expect("sending the request")
}
