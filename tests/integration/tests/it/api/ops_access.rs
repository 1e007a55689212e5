//! Who may call the operations API: 401 without a key or with an unknown one, 403 for a
//! tenant key on a change or another namespace and for every change on a `--ops-read-only`
//! server, 422 naming the field for bad values, 404 naming what is missing.

use conveyor_integration::{TestApp, TENANT_A};
use reqwest::Method;
use serde_json::{json, Value};

use super::{api_only, api_only_sqlite, api_with, assert_error, assert_error_says};

/// Every operations route, with a concrete path and a valid body: (method, path, body).
fn routes() -> Vec<(Method, &'static str, Option<Value>)> {
    let ids = Some(json!({ "ids": [1] }));
    vec![
        (Method::GET, "/v1/ops", None),
        (Method::GET, "/v1/queues", None),
        (Method::GET, "/v1/queues/it.q", None),
        (Method::POST, "/v1/queues/it.q/pause", None),
        (Method::POST, "/v1/queues/it.q/resume", None),
        (Method::POST, "/v1/queues/it.q/replay", None),
        (Method::POST, "/v1/queues/it.q/purge", None),
        (Method::GET, "/v1/queues/it.q/parked-keys", None),
        (Method::POST, "/v1/queues/it.q/parked-keys/k1/skip", None),
        (Method::GET, "/v1/events/1", None),
        (Method::POST, "/v1/events/replay", ids.clone()),
        (Method::POST, "/v1/events/cancel", ids),
        (Method::GET, "/v1/dead-letters", None),
    ]
}

on_each_backend!(no_key_is_401(api_only, api_only_sqlite):
    every_ops_route_is_401_without_a_key_or_with_an_unknown_one,
    every_ops_route_is_401_without_a_key_or_with_an_unknown_one_on_sqlite
);

async fn no_key_is_401(app: TestApp) {
    for (method, path, body) in routes() {
        for key in [None, Some("not-a-key")] {
            let response = app.call(method.clone(), key, path, body.as_ref()).await;
            assert_eq!(response.status(), 401, "{method} {path} with {key:?}");
        }
    }
    // the OpenAPI document is public
    let response = app.get_without_key("/openapi.json").await;
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert!(
        doc["paths"]["/v1/queues/{event_type}/pause"]["post"].is_object(),
        "{doc}"
    );
    app.shutdown().await;
}

on_each_backend!(tenant_reads_only_its_own(api_only, api_only_sqlite):
    a_tenant_key_reads_only_its_own_namespace_and_changes_nothing,
    a_tenant_key_reads_only_its_own_namespace_and_changes_nothing_on_sqlite
);

async fn tenant_reads_only_its_own(app: TestApp) {
    let info = app.get_json(&app.key, "/v1/ops").await;
    assert_eq!(
        info,
        json!({"namespace": TENANT_A, "role": "tenant", "read_only": true})
    );
    for (method, path, body) in routes() {
        let response = app
            .call(method.clone(), Some(&app.key), path, body.as_ref())
            .await;
        if method == Method::POST {
            assert_error_says(response, 403, "tenant key may only read").await;
        } else {
            assert_ne!(response.status(), 403, "{method} {path}: its own namespace");
            let other = format!("{path}?namespace=tenant-b");
            let response = app.call(method, Some(&app.key), &other, None).await;
            assert_error_says(response, 403, "its own namespace").await;
        }
    }
    // the tenant's own namespace named explicitly is allowed
    let queues = app
        .get_json(&app.key, "/v1/queues?namespace=tenant-a")
        .await;
    assert_eq!(queues, json!({"queues": []}));
    let info = app.get_json(&app.operator_key, "/v1/ops").await;
    assert_eq!(info["role"], "operator", "{info}");
    assert_eq!(info["read_only"], false, "{info}");
    app.shutdown().await;
}

/// `--ops-read-only`: every change is a 403 even for the operator key; reads still work.
#[sqlx::test(migrations = false)]
async fn a_read_only_server_refuses_every_change_with_403(
    pool: sqlx::postgres::PgPoolOptions,
    opts: sqlx::postgres::PgConnectOptions,
) {
    let app = api_with(pool, opts, |s| s.ops_read_only = true).await;
    let info = app.get_json(&app.operator_key, "/v1/ops").await;
    assert_eq!(info["read_only"], true, "{info}");
    assert_eq!(info["role"], "operator", "{info}");
    for (method, path, body) in routes() {
        let response = app
            .call(method.clone(), Some(&app.operator_key), path, body.as_ref())
            .await;
        if method == Method::POST {
            assert_error_says(response, 403, "the operations API is read-only").await;
        } else {
            assert_ne!(response.status(), 403, "{method} {path} reads");
        }
    }
    app.shutdown().await;
}

on_each_backend!(bad_values_are_422(api_only, api_only_sqlite):
    bad_ops_values_are_422_naming_the_field,
    bad_ops_values_are_422_naming_the_field_on_sqlite
);

async fn bad_values_are_422(app: TestApp) {
    refuses_bad_values(&app).await;
    app.shutdown().await;
}

async fn refuses_bad_values(app: &TestApp) {
    let op = Some(app.operator_key.as_str());
    let get = |path: &'static str| app.call(Method::GET, op, path, None);
    assert_error(get("/v1/queues?namespace=a%01b").await, 422, "namespace").await;
    assert_error(get("/v1/queues?nope=1").await, 422, "nope").await;
    assert_error(
        get("/v1/queues/it.q?routing_key=a%0Ab").await,
        422,
        "routing_key",
    )
    .await;
    assert_error(
        get("/v1/queues/it.q/parked-keys?limit=0").await,
        422,
        "limit",
    )
    .await;
    assert_error(
        get("/v1/queues/it.q/parked-keys?limit=x").await,
        422,
        "limit",
    )
    .await;
    assert_error(get("/v1/events/x").await, 422, "id").await;
    assert_error(get("/v1/events/0").await, 422, "id").await;
    assert_error(get("/v1/dead-letters?cursor=!!").await, 422, "cursor").await;
    assert_error(get("/v1/dead-letters?limit=1001").await, 422, "limit").await;
    assert_error(
        get("/v1/dead-letters?routing_key=r").await,
        422,
        "routing_key",
    )
    .await;
    let post = |path: &'static str, body: Value| async move {
        app.call(Method::POST, op, path, Some(&body)).await
    };
    let too_many: Vec<i64> = (1..=1001).collect();
    assert_error(
        post("/v1/events/replay", json!({"ids": []})).await,
        422,
        "ids",
    )
    .await;
    assert_error(
        post("/v1/events/replay", json!({"ids": too_many})).await,
        422,
        "ids",
    )
    .await;
    assert_error(
        post("/v1/events/replay", json!({"ids": [1, -2]})).await,
        422,
        "ids[1]",
    )
    .await;
    assert_error(
        post("/v1/events/replay", json!({"ids": "1"})).await,
        422,
        "ids",
    )
    .await;
    assert_error(post("/v1/events/replay", json!({})).await, 422, "ids").await;
    let long = "x".repeat(1001);
    let body = json!({"ids": [1], "reason": long});
    assert_error(post("/v1/events/cancel", body).await, 422, "reason").await;
    let not_json = app
        .client
        .post(format!("{}/v1/events/cancel", app.base))
        .bearer_auth(&app.operator_key)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(not_json, 400, "body").await;
}

on_each_backend!(missing_is_404(api_only, api_only_sqlite):
    unknown_queues_and_events_are_404_naming_them,
    unknown_queues_and_events_are_404_naming_them_on_sqlite
);

async fn missing_is_404(app: TestApp) {
    for (method, path, body) in routes() {
        let known = ["/v1/ops", "/v1/queues", "/v1/dead-letters"];
        if known.contains(&path) || path.starts_with("/v1/events/") && method == Method::POST {
            continue;
        }
        let response = app
            .call(method.clone(), Some(&app.operator_key), path, body.as_ref())
            .await;
        let text = if path == "/v1/events/1" {
            "no event 1"
        } else {
            "unknown queue it.q"
        };
        assert_error_says(response, 404, text).await;
    }
    app.shutdown().await;
}
