//! The operations API's happy paths on a server with workers: queue stats, pause/resume seen
//! in the stats, a dead letter listed (with its history), replayed (by queue and by id) and
//! delivered again, purged, and a pending event cancelled.

use std::time::Duration;

use conveyor_integration::{event, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

use super::{bulk, with_workers, with_workers_sqlite};

/// The index backend queue the tests work on (`index_record`, routing key `rollup`).
const QUEUE: &str = "/v1/queues/index_record";
const RK: &str = "routing_key=rollup";

/// `method path` with the operator key; asserts a 200 and returns the JSON body.
async fn ok(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Value {
    let response = app
        .call(method.clone(), Some(&app.operator_key), path, body.as_ref())
        .await;
    let status = response.status();
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(status, 200, "{method} {path}: {body}");
    body
}

/// The newest outbox row of the `rollup` index queue with `status`.
async fn newest(app: &TestApp, status: &str) -> i64 {
    app.db
        .scalar(&format!(
            "select max(id) from conveyor_events where event_type = 'index_record' \
             and routing_key = 'rollup' and status = '{status}'"
        ))
        .await
}

/// Turn event `id` into a dead letter, as a failing handler would.
async fn kill(app: &TestApp, id: i64) {
    let rows: Vec<(i64,)> = app
        .db
        .rows(&format!(
            "update conveyor_events set status = 'dead', last_error = 'boom' \
             where id = {id} returning id"
        ))
        .await;
    assert_eq!(rows.len(), 1);
}

/// Wait until event `id` reports `status`.
async fn wait_for_status(app: &TestApp, id: i64, status: &str) {
    let path = format!("/v1/events/{id}");
    app.wait_until(
        &format!("{id} {status}"),
        Duration::from_secs(30),
        || async { ok(app, Method::GET, &path, None).await["status"] == status },
    )
    .await;
}

on_each_backend!(stats_and_pause(with_workers, with_workers_sqlite):
    queues_report_stats_and_pause_and_resume_show_in_them,
    queues_report_stats_and_pause_and_resume_show_in_them_on_sqlite
);

async fn stats_and_pause(app: TestApp) {
    app.post_events(&app.key, &bulk(vec![event("click", "u1", "web")]))
        .await;
    app.wait_for_drain().await;
    let all = ok(&app, Method::GET, "/v1/queues", None).await;
    let raw = all["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| {
            q["queue"]["event_type"] == "index_record" && q["queue"]["routing_key"] == "rollup"
        })
        .cloned()
        .unwrap_or_else(|| panic!("no rollup index queue in {all}"));
    assert_eq!(raw["delivered"], 1, "{raw}");
    assert!(
        raw["oldest_due_age_secs"].is_number(),
        "passed through: {raw}"
    );
    let mut one = ok(&app, Method::GET, &format!("{QUEUE}?{RK}"), None).await;
    // activity moves with time (minutes, heartbeats): the counts are what must agree
    let (mut raw, _) = (raw.clone(), one["activity"].take());
    raw["activity"].take();
    assert_eq!(one, raw);
    // the pool's heartbeat reports the delivered event and itself as a live pool
    app.wait_until(
        "the rollup queue's activity",
        Duration::from_secs(30),
        || async {
            let one = ok(&app, Method::GET, &format!("{QUEUE}?{RK}"), None).await;
            let activity = &one["activity"];
            let completed: u64 = activity["per_minute"]
                .as_array()
                .map(|m| m.iter().filter_map(|m| m["completed"].as_u64()).sum())
                .unwrap_or(0);
            completed >= 1 && activity["workers"].as_u64() >= Some(1)
        },
    )
    .await;
    let paused = ok(&app, Method::POST, &format!("{QUEUE}/pause?{RK}"), None).await;
    assert_eq!(paused, json!({"paused": true}));
    let one = ok(&app, Method::GET, &format!("{QUEUE}?{RK}"), None).await;
    assert_eq!(one["paused"], true, "{one}");
    let resumed = ok(&app, Method::POST, &format!("{QUEUE}/resume?{RK}"), None).await;
    assert_eq!(resumed, json!({"paused": false}));
    let one = ok(&app, Method::GET, &format!("{QUEUE}?{RK}"), None).await;
    assert_eq!(one["paused"], false, "{one}");
    let parked = ok(
        &app,
        Method::GET,
        &format!("{QUEUE}/parked-keys?{RK}"),
        None,
    )
    .await;
    assert_eq!(parked, json!({"parked_keys": []}));
    let skip = format!("{QUEUE}/parked-keys/k1/skip?{RK}");
    let response = app
        .call(Method::POST, Some(&app.operator_key), &skip, None)
        .await;
    assert_eq!(response.status(), 404, "k1 is not parked");
    app.shutdown().await;
}

on_each_backend!(dead_letters_replayed(with_workers, with_workers_sqlite):
    dead_letters_are_listed_replayed_delivered_and_purged,
    dead_letters_are_listed_replayed_delivered_and_purged_on_sqlite
);

async fn dead_letters_replayed(app: TestApp) {
    app.post_events(&app.key, &bulk(vec![event("click", "u1", "web")]))
        .await;
    app.wait_for_drain().await;
    let id = newest(&app, "delivered").await;
    kill(&app, id).await;
    let page = ok(
        &app,
        Method::GET,
        &format!("/v1/dead-letters?queue=index_record&{RK}"),
        None,
    )
    .await;
    let dead = page["dead_letters"].as_array().unwrap();
    assert_eq!(dead.len(), 1, "{page}");
    assert_eq!(dead[0]["id"], id, "{page}");
    assert_eq!(dead[0]["last_error"], "boom", "{page}");
    assert!(dead[0]["errors"].is_array(), "{page}");
    assert_eq!(page["next_cursor"], Value::Null, "{page}");
    // a full page has a cursor, and the page after it is empty
    let first = ok(&app, Method::GET, "/v1/dead-letters?limit=1", None).await;
    let cursor = first["next_cursor"].as_str().expect("a cursor").to_owned();
    let next = ok(
        &app,
        Method::GET,
        &format!("/v1/dead-letters?limit=1&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(next, json!({"dead_letters": [], "next_cursor": null}));
    // a tenant sees nothing of the server's namespace
    let response = app.get(&app.key, &format!("/v1/events/{id}")).await;
    assert_eq!(response.status(), 404);

    let replayed = ok(&app, Method::POST, &format!("{QUEUE}/replay?{RK}"), None).await;
    assert_eq!(replayed, json!({"replayed": 1}));
    wait_for_status(&app, id, "delivered").await;

    kill(&app, id).await;
    let replayed = ok(
        &app,
        Method::POST,
        "/v1/events/replay",
        Some(json!({"ids": [id]})),
    )
    .await;
    assert_eq!(replayed, json!({"replayed": 1}));
    wait_for_status(&app, id, "delivered").await;

    kill(&app, id).await;
    let purged = ok(&app, Method::POST, &format!("{QUEUE}/purge?{RK}"), None).await;
    assert_eq!(purged, json!({"purged": 1}));
    let response = app
        .call(
            Method::GET,
            Some(&app.operator_key),
            &format!("/v1/events/{id}"),
            None,
        )
        .await;
    assert_eq!(response.status(), 404, "purged");
    app.shutdown().await;
}

on_each_backend!(cancel_pending(with_workers, with_workers_sqlite):
    a_pending_event_is_cancelled_and_an_unknown_id_is_reported_not_found,
    a_pending_event_is_cancelled_and_an_unknown_id_is_reported_not_found_on_sqlite
);

async fn cancel_pending(app: TestApp) {
    app.post_events(&app.key, &bulk(vec![event("click", "u1", "web")]))
        .await;
    app.wait_for_drain().await;
    ok(&app, Method::POST, &format!("{QUEUE}/pause?{RK}"), None).await;
    app.post_events(&app.key, &bulk(vec![event("click", "u2", "web")]))
        .await;
    app.wait_for_published().await;
    app.wait_until(
        "a pending rollup record",
        Duration::from_secs(30),
        || async {
            app.db
                .scalar(
                    "select count(*) from conveyor_events where routing_key = 'rollup' \
                 and status = 'pending'",
                )
                .await
                == 1
        },
    )
    .await;
    let id = newest(&app, "pending").await;
    let body = json!({"ids": [id, 999_999], "reason": "not wanted"});
    let report = ok(&app, Method::POST, "/v1/events/cancel", Some(body)).await;
    assert_eq!(
        report,
        json!({"results": [[id, "cancelled"], [999_999, "not_found"]]})
    );
    let record = ok(&app, Method::GET, &format!("/v1/events/{id}"), None).await;
    assert_eq!(record["status"], "cancelled", "{record}");
    assert_eq!(record["cancel_reason"], "not wanted", "{record}");
    app.shutdown().await;
}
