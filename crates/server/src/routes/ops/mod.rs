//! The operations API (`/v1/ops`, `/v1/queues…`, `/v1/events/{id}`, `/v1/events/replay`,
//! `/v1/events/cancel`, `/v1/dead-letters`): the operator controls of the CLI over HTTP, for
//! the dashboard and for tools. README "Operations API" has the route table.
//!
//! - `caller` — who calls ([`OpsCaller`]): operator or tenant key, and the namespace.
//! - `queues` — queue stats, pause/resume, replay/purge of dead letters, parked keys.
//! - `events` — one event, replay and cancel by ids, dead letters.
//!
//! Every bad path, query or body value is a 422 naming it (a body that is not JSON is a
//! 400); an unknown queue, event or parked key is a 404 saying what.

use axum::Json;
use conveyor::Queue;
use conveyor_handlers::PipelineStore;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::Params;
use crate::api_error::ApiError;

pub(crate) mod caller;
pub(crate) mod events;
pub(crate) mod queues;

pub(crate) use caller::OpsCaller;

/// Longest event type, routing key or subscription a queue route accepts.
const MAX_NAME: usize = 256;

/// `GET /v1/ops`: `{"namespace", "role", "read_only"}`, what the dashboard shows or hides.
pub(crate) async fn info<S: PipelineStore>(caller: OpsCaller<S>) -> Result<Json<Value>, ApiError> {
    caller.only(&[])?;
    Ok(Json(json!({
        "namespace": caller.namespace,
        "role": caller.role,
        "read_only": caller.read_only(),
    })))
}

/// The queue of `event_type` (a path segment) and the `routing_key` and `subscription`
/// parameters (absent or empty: none), each checked: a 422 names the one at fault.
pub(crate) fn queue_of(event_type: &str, params: &Params) -> Result<Queue, ApiError> {
    let field = |name: &str, value: &str, may_be_empty: bool| {
        if (value.is_empty() && !may_be_empty)
            || value.len() > MAX_NAME
            || value.chars().any(char::is_control)
        {
            let empty = if may_be_empty { "" } else { "non-empty " };
            Err(ApiError::invalid(
                name,
                format!("`{name}` must be {empty}printable text of at most {MAX_NAME} bytes"),
            ))
        } else {
            Ok(())
        }
    };
    field("event_type", event_type, false)?;
    let routing_key = params.0.get("routing_key").map_or("", String::as_str);
    field("routing_key", routing_key, true)?;
    let subscription = params.0.get("subscription").map_or("", String::as_str);
    field("subscription", subscription, true)?;
    let routing_key = (!routing_key.is_empty()).then_some(routing_key);
    Ok(Queue::new(event_type, routing_key).in_subscription(subscription))
}

/// A JSON body as `T`: 400 when it is not JSON, 422 naming the field when it is JSON of
/// the wrong shape.
pub(crate) fn body_of<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad("body", format!("the body is not JSON: {e}")))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            // a missing or unknown field names itself in the message only
            missing_field(&e.inner().to_string()).unwrap_or_else(|| "body".to_owned())
        } else {
            path
        };
        ApiError::invalid(field, format!("invalid body: {}", e.inner()))
    })
}

/// The field a serde message such as "missing field `ids`" or "unknown field `x`" names.
fn missing_field(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_owned())
}

/// A store failure: 503 when the database is unreachable, else 500 (logged).
pub(crate) fn store_error(e: conveyor::Error) -> ApiError {
    match e {
        conveyor::Error::Database(e) if crate::outage::is_outage(&e) => {
            tracing::warn!(error.message = %e, "database unavailable");
            ApiError::Unavailable("database unavailable".into())
        }
        other => ApiError::internal(other),
    }
}
