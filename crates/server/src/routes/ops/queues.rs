//! The queue routes of the operations API: `GET /v1/queues` and
//! `/v1/queues/{event_type}[?routing_key=RK]` (the framework's `QueueStats`, passed through
//! whole), `pause`, `resume`, `replay` (every dead letter), `purge` (delete the dead
//! letters), `parked-keys` and `parked-keys/{key}/skip`.

use axum::extract::Path;
use axum::Json;
use conveyor::{Queue, QueueActivity, QueueStats};
use conveyor_handlers::PipelineStore;
use serde_json::{json, Value};

use super::caller::OpsCaller;
use super::{queue_of, store_error};
use crate::api_error::ApiError;

/// Parked keys listed when `limit` is not given, and the most one request may ask for.
const PARKED_DEFAULT: u32 = 100;
const PARKED_MAX: u32 = 1_000;

/// `GET /v1/queues`: `{"queues": [QueueStats… with "activity"]}` of the caller's namespace:
/// each queue's `QueueStats`, and under `activity` its `QueueActivity` (wait and run
/// percentiles, events per minute over the last hour, live worker pools), `null` when no
/// pool reported any.
pub(crate) async fn list<S: PipelineStore>(caller: OpsCaller<S>) -> Result<Json<Value>, ApiError> {
    caller.only(&[])?;
    let stats = caller.store.stats().await.map_err(store_error)?;
    let activity = caller.store.activity(None).await.map_err(store_error)?;
    let queues: Vec<Value> = stats
        .into_iter()
        .map(|s| with_activity(s, &activity))
        .collect::<Result<_, _>>()?;
    Ok(Json(json!({ "queues": queues })))
}

/// `GET /v1/queues/{event_type}`: the queue's `QueueStats` with its `activity`, 404 when it
/// has no row.
pub(crate) async fn one<S: PipelineStore>(
    caller: OpsCaller<S>,
    Path(event_type): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.only(&["routing_key", "subscription"])?;
    let queue = queue_of(&event_type, &caller.params)?;
    let stats = known(&caller, &queue).await?;
    let activity = caller
        .store
        .activity(Some(&queue))
        .await
        .map_err(store_error)?;
    with_activity(stats, &activity).map(Json)
}

/// `stats` as JSON with the matching entry of `activity` (or `null`) under `"activity"`.
fn with_activity(stats: QueueStats, activity: &[QueueActivity]) -> Result<Value, ApiError> {
    let found = activity.iter().find(|a| a.queue == stats.queue);
    let mut value = serde_json::to_value(&stats).map_err(ApiError::internal)?;
    if let Value::Object(fields) = &mut value {
        let activity = serde_json::to_value(found).map_err(ApiError::internal)?;
        fields.insert("activity".to_owned(), activity);
    }
    Ok(value)
}

/// `POST /v1/queues/{event_type}/pause`: `{"paused": true}`.
pub(crate) async fn pause<S: PipelineStore>(
    caller: OpsCaller<S>,
    Path(event_type): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_paused(caller, &event_type, true).await
}

/// `POST /v1/queues/{event_type}/resume`: `{"paused": false}`.
pub(crate) async fn resume<S: PipelineStore>(
    caller: OpsCaller<S>,
    Path(event_type): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_paused(caller, &event_type, false).await
}

async fn set_paused<S: PipelineStore>(
    caller: OpsCaller<S>,
    event_type: &str,
    paused: bool,
) -> Result<Json<Value>, ApiError> {
    let queue = changed_queue(&caller, event_type).await?;
    if paused {
        caller.store.pause(&queue).await
    } else {
        caller.store.resume(&queue).await
    }
    .map_err(store_error)?;
    Ok(Json(json!({ "paused": paused })))
}

/// `POST /v1/queues/{event_type}/replay`: every dead letter of the queue back to pending,
/// page by page: `{"replayed": n}`.
pub(crate) async fn replay<S: PipelineStore>(
    caller: OpsCaller<S>,
    Path(event_type): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let queue = changed_queue(&caller, &event_type).await?;
    let replayed = crate::admin::replay_all(&caller.store, Some(&queue))
        .await
        .map_err(store_error)?;
    Ok(Json(json!({ "replayed": replayed })))
}

/// `POST /v1/queues/{event_type}/purge`: delete the queue's dead letters: `{"purged": n}`.
pub(crate) async fn purge<S: PipelineStore>(
    caller: OpsCaller<S>,
    Path(event_type): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let queue = changed_queue(&caller, &event_type).await?;
    let purged = caller
        .store
        .purge_dead(Some(&queue))
        .await
        .map_err(store_error)?;
    Ok(Json(json!({ "purged": purged })))
}

/// `GET /v1/queues/{event_type}/parked-keys?limit=N`: `{"parked_keys": [ParkedKey…]}`,
/// oldest first.
pub(crate) async fn parked_keys<S: PipelineStore>(
    caller: OpsCaller<S>,
    Path(event_type): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.only(&["routing_key", "subscription", "limit"])?;
    let queue = queue_of(&event_type, &caller.params)?;
    let limit = caller
        .params
        .limit(PARKED_DEFAULT, PARKED_MAX)
        .map_err(ApiError::unprocessable)?;
    known(&caller, &queue).await?;
    let parked = caller
        .store
        .parked_keys(Some(&queue), limit as usize)
        .await
        .map_err(store_error)?;
    Ok(Json(json!({ "parked_keys": parked })))
}

/// `POST /v1/queues/{event_type}/parked-keys/{key}/skip`: unpark the key, leaving its dead
/// head dead: `{"skipped": id}`; 404 when the key is not parked.
pub(crate) async fn skip_key<S: PipelineStore>(
    caller: OpsCaller<S>,
    Path((event_type, key)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let queue = changed_queue(&caller, &event_type).await?;
    if key.is_empty() || key.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "key",
            "`key` must be non-empty printable text",
        ));
    }
    let skipped = caller
        .store
        .skip_key(&queue, &key)
        .await
        .map_err(store_error)?
        .ok_or_else(|| {
            ApiError::Missing(format!("ordering key {key:?} of {queue} is not parked"))
        })?;
    Ok(Json(json!({ "skipped": skipped })))
}

/// The queue of a changing route, once the caller may change things (403 first), its
/// parameters are valid (422) and the queue is known (404).
async fn changed_queue<S: PipelineStore>(
    caller: &OpsCaller<S>,
    event_type: &str,
) -> Result<Queue, ApiError> {
    caller.may_change()?;
    caller.only(&["routing_key", "subscription"])?;
    let queue = queue_of(event_type, &caller.params)?;
    known(caller, &queue).await?;
    Ok(queue)
}

/// The stats of `queue`, or a 404 naming it when it has no row in the caller's namespace
/// (no events and no pause record: most likely a typo).
async fn known<S: PipelineStore>(
    caller: &OpsCaller<S>,
    queue: &Queue,
) -> Result<QueueStats, ApiError> {
    let stats = caller.store.stats().await.map_err(store_error)?;
    stats
        .into_iter()
        .find(|s| &s.queue == queue)
        .ok_or_else(|| {
            ApiError::Missing(format!(
                "unknown queue {queue} in namespace {:?}",
                caller.namespace
            ))
        })
}
