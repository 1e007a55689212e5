//! The event routes of the operations API: `GET /v1/events/{id}` (the framework's
//! `EventRecord`), `POST /v1/events/replay` and `/v1/events/cancel` (by ids), and
//! `GET /v1/dead-letters` (paged by an opaque cursor, each with its attempt history).

use axum::body::Bytes;
use axum::extract::Path;
use axum::Json;
use conveyor::{CancelReport, EventId, EventRecord};
use conveyor_handlers::PipelineStore;
use serde::Deserialize;
use serde_json::{json, Value};

use super::caller::OpsCaller;
use super::{body_of, queue_of, store_error};
use crate::api_error::ApiError;
use crate::routes::encode_cursor;

/// Ids one replay or cancel request may name.
const MAX_IDS: usize = 1_000;
/// Longest cancel reason, in characters.
const MAX_REASON: usize = 1_000;
/// The reason recorded when a cancel gives none.
const DEFAULT_REASON: &str = "cancelled by an operator";
/// Dead letters per page when `limit` is not given, and the most one page may hold.
const DEAD_DEFAULT: u32 = 100;
const DEAD_MAX: u32 = 1_000;

/// `GET /v1/events/{id}`: the event's record, 404 when the namespace has no such event.
pub(crate) async fn one<S: PipelineStore>(
    caller: OpsCaller<S>,
    Path(id): Path<String>,
) -> Result<Json<EventRecord>, ApiError> {
    caller.only(&[])?;
    let id = match id.parse::<i64>() {
        Ok(id) if id > 0 => EventId(id),
        _ => {
            return Err(ApiError::invalid(
                "id",
                format!("`id` must be a positive integer, got {id:?}"),
            ))
        }
    };
    caller
        .store
        .event(id)
        .await
        .map_err(store_error)?
        .map(Json)
        .ok_or_else(|| {
            ApiError::Missing(format!("no event {id} in namespace {:?}", caller.namespace))
        })
}

/// The body of `POST /v1/events/replay`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    ids: Vec<i64>,
}

/// The body of `POST /v1/events/cancel`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    ids: Vec<i64>,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /v1/events/replay` `{"ids": [...]}`: dead letters and cancelled events back to
/// pending: `{"replayed": n}` (ids that are neither are not counted).
pub(crate) async fn replay<S: PipelineStore>(
    caller: OpsCaller<S>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.may_change()?;
    caller.only(&[])?;
    let body: ReplayBody = body_of(&body)?;
    let ids = event_ids(&body.ids)?;
    let replayed = caller.store.replay(&ids).await.map_err(store_error)?;
    Ok(Json(json!({ "replayed": replayed })))
}

/// `POST /v1/events/cancel` `{"ids": [...], "reason": "..."}`: the `CancelReport`, one
/// outcome per id.
pub(crate) async fn cancel<S: PipelineStore>(
    caller: OpsCaller<S>,
    body: Bytes,
) -> Result<Json<CancelReport>, ApiError> {
    caller.may_change()?;
    caller.only(&[])?;
    let body: CancelBody = body_of(&body)?;
    let ids = event_ids(&body.ids)?;
    let reason = body.reason.unwrap_or_else(|| DEFAULT_REASON.to_owned());
    if reason.chars().count() > MAX_REASON {
        return Err(ApiError::invalid(
            "reason",
            format!("`reason` must be at most {MAX_REASON} characters"),
        ));
    }
    let report = caller
        .store
        .cancel(&ids, &reason)
        .await
        .map_err(store_error)?;
    Ok(Json(report))
}

/// `ids` as event ids: 1 to [`MAX_IDS`] of them, each positive.
fn event_ids(ids: &[i64]) -> Result<Vec<EventId>, ApiError> {
    if ids.is_empty() || ids.len() > MAX_IDS {
        return Err(ApiError::invalid(
            "ids",
            format!(
                "`ids` must hold 1 to {MAX_IDS} event ids, got {}",
                ids.len()
            ),
        ));
    }
    if let Some(i) = ids.iter().position(|&id| id <= 0) {
        return Err(ApiError::invalid(
            format!("ids[{i}]"),
            format!("`ids[{i}]` must be a positive event id, got {}", ids[i]),
        ));
    }
    Ok(ids.iter().copied().map(EventId).collect())
}

/// `GET /v1/dead-letters?queue=EVENT_TYPE&routing_key=RK&cursor=C&limit=N`: a page of dead
/// letters, oldest id first, and the cursor of the next page (null on the last).
pub(crate) async fn dead_letters<S: PipelineStore>(
    caller: OpsCaller<S>,
) -> Result<Json<Value>, ApiError> {
    caller.only(&["queue", "routing_key", "subscription", "cursor", "limit"])?;
    let params = &caller.params;
    let queue = match params.0.get("queue") {
        Some(event_type) => Some(queue_of(event_type, params)?),
        None if params.0.contains_key("routing_key") => {
            return Err(ApiError::invalid(
                "routing_key",
                "`routing_key` needs `queue` (the event type)",
            ))
        }
        None => None,
    };
    let limit = params
        .limit(DEAD_DEFAULT, DEAD_MAX)
        .map_err(ApiError::unprocessable)?;
    let after: Option<i64> = params.cursor().map_err(ApiError::unprocessable)?;
    let dead = caller
        .store
        .dead_letters(queue.as_ref(), after.map(EventId), limit as usize)
        .await
        .map_err(store_error)?;
    let next_cursor = (dead.len() == limit as usize)
        .then(|| dead.last().map(|d| encode_cursor(&d.id.0)))
        .flatten();
    Ok(Json(
        json!({ "dead_letters": dead, "next_cursor": next_cursor }),
    ))
}
