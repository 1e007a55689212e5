//! The read API, scoped to the API key's tenant: daily counts, summary and event types
//! (TTL-cached, days default to the last 7) and raw events in a bounded window (not cached).

use axum::response::Response;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use conveyor_handlers::{DailyCountQuery, DailyCursor, PipelineStore, RawCursor, RawEventQuery};
use serde_json::json;
use uuid::Uuid;

use super::{encode_cursor, json_body, to_body, Params, TenantRead};
use crate::api_error::ApiError;

/// Days the analytics routes cover when `from`/`to` are absent: today and the 6 before.
const DEFAULT_DAYS: i64 = 7;
/// The raw-events window when `from`/`to` are absent: the last 24 hours.
const DEFAULT_RAW_WINDOW: Duration = Duration::hours(24);
/// Page sizes.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1_000;

/// `from..=to` in days: `to` defaults to today (UTC), `from` to 6 days before `to`.
fn day_range(params: &Params) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let to = params
        .date("to")?
        .unwrap_or_else(|| Utc::now().date_naive());
    let from = params
        .date("from")?
        .unwrap_or_else(|| to - Duration::days(DEFAULT_DAYS - 1));
    if from > to {
        return Err(ApiError::bad(
            "from",
            format!("`from` ({from}) is after `to` ({to})"),
        ));
    }
    Ok((from, to))
}

/// `GET /v1/analytics/events/daily?from&to&event_type&source&limit&cursor`:
/// `{"data": [{day, event_type, source, count}], "next_cursor": "…" | null}`.
pub(crate) async fn daily<S: PipelineStore>(read: TenantRead<S>) -> Result<Response, ApiError> {
    let (state, params) = (&read.state, &read.params);
    params.only(&["from", "to", "event_type", "source", "limit", "cursor"])?;
    let (from, to) = day_range(params)?;
    let limit = params.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = params
        .cursor::<(NaiveDate, String, String)>()?
        .map(|(day, event_type, source)| DailyCursor {
            day,
            event_type,
            source,
        });
    let query = DailyCountQuery {
        namespace: read.namespace.clone(),
        from,
        to,
        event_type: params.text("event_type"),
        source: params.text("source"),
        after,
        limit,
    };
    let key = format!("{from}/{to}/{limit}/{}", params.canonical());
    let body = state
        .cache
        .get_or_try(&read.namespace, "daily", key, async {
            let rows = state.store.daily_counts(&query).await?;
            let next = (rows.len() == limit as usize)
                .then(|| rows.last())
                .flatten()
                .map(|r| encode_cursor(&(r.day, &r.event_type, &r.source)));
            to_body(&json!({ "data": rows, "next_cursor": next }))
        })
        .await?;
    Ok(json_body(body))
}

/// `GET /v1/analytics/events/summary?from&to`: `{from, to, total, unique_actors}`.
pub(crate) async fn summary<S: PipelineStore>(read: TenantRead<S>) -> Result<Response, ApiError> {
    let (store, ns) = (&read.state.store, read.namespace.as_str());
    cached_over_days(&read, "summary", |from, to| async move {
        let s = store.summary(ns, from, to).await?;
        Ok(json!({ "total": s.total, "unique_actors": s.unique_actors }))
    })
    .await
}

/// `GET /v1/analytics/event-types?from&to`: `{from, to, data: [{event_type, count}]}`, most
/// frequent first.
pub(crate) async fn event_types<S: PipelineStore>(
    read: TenantRead<S>,
) -> Result<Response, ApiError> {
    let (store, ns) = (&read.state.store, read.namespace.as_str());
    cached_over_days(&read, "event-types", |from, to| async move {
        let rows = store.event_types(ns, from, to).await?;
        Ok(json!({ "data": rows }))
    })
    .await
}

/// A read over `from..=to` days (its only parameters), TTL-cached per tenant, route and
/// range; `fetch` gives the body's fields, to which `from` and `to` are added.
async fn cached_over_days<S, F, Fut>(
    read: &TenantRead<S>,
    route: &'static str,
    fetch: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(NaiveDate, NaiveDate) -> Fut,
    Fut: std::future::Future<Output = Result<serde_json::Value, ApiError>>,
{
    read.params.only(&["from", "to"])?;
    let (from, to) = day_range(&read.params)?;
    let body = read
        .state
        .cache
        .get_or_try(&read.namespace, route, format!("{from}/{to}"), async move {
            let mut body = fetch(from, to).await?;
            body["from"] = json!(from);
            body["to"] = json!(to);
            to_body(&body)
        })
        .await?;
    Ok(json_body(body))
}

/// `GET /v1/events/raw?from&to&event_type&limit&cursor` (RFC 3339 window, `to` exclusive;
/// defaults to the last 24 h): `{"data": [event], "next_cursor": "…" | null}`.
pub(crate) async fn raw<S: PipelineStore>(
    TenantRead {
        state,
        namespace,
        params,
    }: TenantRead<S>,
) -> Result<Response, ApiError> {
    params.only(&["from", "to", "event_type", "limit", "cursor"])?;
    let to = params.time("to")?.unwrap_or_else(Utc::now);
    let from = params.time("from")?.unwrap_or(to - DEFAULT_RAW_WINDOW);
    let limit = params.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = params
        .cursor::<(DateTime<Utc>, Uuid)>()?
        .map(|(timestamp, event_id)| RawCursor {
            timestamp,
            event_id,
        });
    let query = RawEventQuery {
        namespace,
        from,
        to,
        event_type: params.text("event_type"),
        after,
        limit,
    };
    let rows = state.store.raw_events(&query).await?;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last())
        .flatten()
        .map(|r| encode_cursor(&(r.timestamp, r.event_id)));
    Ok(json_body(to_body(
        &json!({ "data": rows, "next_cursor": next }),
    )?))
}
