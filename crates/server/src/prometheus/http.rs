//! HTTP request metrics: `conveyor_http_requests_total` and the histogram
//! `conveyor_http_request_duration_seconds`, labelled by the route template (axum's
//! `MatchedPath`, `unmatched` for a 404 of no route), the method and the status class.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// Requests answered, by `route`, `method` and `status` class (`2xx`…`5xx`).
pub(crate) const REQUESTS: &str = "conveyor_http_requests_total";
/// Seconds from the request to its response head, by `route`, `method` and `status`.
pub(crate) const DURATION: &str = "conveyor_http_request_duration_seconds";

/// Count and time `request` (a `from_fn` middleware on the whole router).
pub(crate) async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = known_method(request.method());
    let start = Instant::now();
    let response = next.run(request).await;
    let status = match response.status().as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    };
    let labels = [
        ("route", route),
        ("method", method.to_owned()),
        ("status", status.to_owned()),
    ];
    metrics::counter!(REQUESTS, &labels).increment(1);
    metrics::histogram!(DURATION, &labels).record(start.elapsed().as_secs_f64());
    response
}

/// The method as a bounded label: the standard ones by name, anything else `other`.
fn known_method(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
