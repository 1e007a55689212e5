//! `GET /openapi.json`: the OpenAPI 3.1 document of every route (built with `utoipa`'s
//! builders from [`ROUTES`], one entry per route the router serves; a test checks the two
//! agree both ways).

use axum::response::Response;
use utoipa::openapi::path::{OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, HttpMethod, InfoBuilder, ObjectBuilder, OpenApi,
    OpenApiBuilder, Paths, Required, ResponseBuilder, Type,
};

/// Which key a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// None: public.
    Public,
    /// A tenant's API key (`--api-key`).
    Tenant,
    /// An operator key (`--operator-key`).
    Operator,
    /// Either: an operator key, or a tenant key on its own namespace (read only).
    Ops,
}

/// One documented route.
struct Route {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    auth: Auth,
    /// Query parameters.
    query: &'static [&'static str],
    /// The JSON body it takes, described, if any.
    body: Option<&'static str>,
}

const fn route(
    method: &'static str,
    path: &'static str,
    auth: Auth,
    query: &'static [&'static str],
    summary: &'static str,
) -> Route {
    Route {
        method,
        path,
        summary,
        auth,
        query,
        body: None,
    }
}

const QUEUE: &[&str] = &["routing_key", "subscription", "namespace"];
const READ: &[&str] = &["from", "to", "event_type", "source", "cursor", "limit"];

/// Every route the server serves: (method, path template), who may call it, its query.
const ROUTES: &[Route] = &[
    Route {
        body: Some("{\"events\": [...]} (JSON, optionally gzip): events to ingest"),
        ..route("POST", "/v1/events/bulk", Auth::Tenant, &[], "Ingest events (202 once durable)")
    },
    route("GET", "/v1/events/raw", Auth::Tenant, READ, "Raw events of the tenant"),
    route("GET", "/v1/analytics/events/daily", Auth::Tenant, READ, "Daily counts"),
    route("GET", "/v1/analytics/events/summary", Auth::Tenant, READ, "Summary of a window"),
    route("GET", "/v1/analytics/event-types", Auth::Tenant, READ, "Event types of a window"),
    route("GET", "/v1/search", Auth::Tenant, &["q", "from", "to", "limit", "cursor"], "Keyword search"),
    route("GET", "/v1/search/similar", Auth::Tenant, &["q", "limit"], "Similarity search"),
    route("GET", "/healthz", Auth::Public, &[], "Liveness"),
    route("GET", "/healthz/detailed", Auth::Operator, &["backlog"], "Readiness with details"),
    route("GET", "/metrics", Auth::Operator, &[], "Prometheus metrics (text format)"),
    route("GET", "/openapi.json", Auth::Public, &[], "This document"),
    route("GET", "/v1/ops", Auth::Ops, &["namespace"], "The caller's namespace, role and read-only flag"),
    route("GET", "/v1/queues", Auth::Ops, &["namespace"], "Every queue's QueueStats, each with its activity (latency, throughput, live pools)"),
    route("GET", "/v1/queues/{event_type}", Auth::Ops, QUEUE, "One queue's QueueStats with its activity"),
    route("POST", "/v1/queues/{event_type}/pause", Auth::Operator, QUEUE, "Pause a queue"),
    route("POST", "/v1/queues/{event_type}/resume", Auth::Operator, QUEUE, "Resume a queue"),
    route("POST", "/v1/queues/{event_type}/replay", Auth::Operator, QUEUE, "Replay every dead letter of a queue"),
    route("POST", "/v1/queues/{event_type}/purge", Auth::Operator, QUEUE, "Delete a queue's dead letters"),
    route(
        "GET",
        "/v1/queues/{event_type}/parked-keys",
        Auth::Ops,
        &["routing_key", "subscription", "namespace", "limit"],
        "Ordering keys parked by a dead head",
    ),
    route(
        "POST",
        "/v1/queues/{event_type}/parked-keys/{key}/skip",
        Auth::Operator,
        QUEUE,
        "Unpark an ordering key, leaving its head dead",
    ),
    route("GET", "/v1/events/{id}", Auth::Ops, &["namespace"], "One event's EventRecord"),
    Route {
        body: Some("{\"ids\": [1, 2]}: 1 to 1000 event ids"),
        ..route("POST", "/v1/events/replay", Auth::Operator, &["namespace"], "Replay events by id")
    },
    Route {
        body: Some("{\"ids\": [1, 2], \"reason\": \"...\"}: 1 to 1000 ids, reason optional (at most 1000 characters)"),
        ..route("POST", "/v1/events/cancel", Auth::Operator, &["namespace"], "Cancel events by id (a CancelReport)")
    },
    route(
        "GET",
        "/v1/dead-letters",
        Auth::Ops,
        &["queue", "routing_key", "subscription", "namespace", "cursor", "limit"],
        "A page of dead letters with their attempt history",
    ),
    route("GET", "/", Auth::Public, &[], "The dashboard"),
    route("GET", "/assets/{*path}", Auth::Public, &[], "The dashboard's static files"),
];

/// The routes of [`ROUTES`] another module serves once merged (the dashboard's).
#[cfg(test)]
const DASHBOARD: [&str; 2] = ["/", "/assets/{*path}"];

/// `GET /openapi.json`.
pub(crate) async fn document() -> Response {
    match openapi().to_json() {
        Ok(json) => crate::routes::json_body(json.into()),
        Err(e) => crate::api_error::ApiError::internal(e).into_response(),
    }
}

use axum::response::IntoResponse as _;

/// The document.
fn openapi() -> OpenApi {
    let mut paths = Paths::new();
    for r in ROUTES {
        let method = if r.method == "GET" {
            HttpMethod::Get
        } else {
            HttpMethod::Post
        };
        paths.add_path_operation(openapi_path(r.path), vec![method], operation(r));
    }
    let bearer = SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Conveyor")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Ingestion, analytics, search, health and operations API",
                )),
        )
        .paths(paths)
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme("bearer", bearer)
                .build(),
        ))
        .build()
}

/// axum's `{*path}` wildcard as OpenAPI's `{path}`.
fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

fn operation(r: &Route) -> utoipa::openapi::path::Operation {
    let text = || ObjectBuilder::new().schema_type(Type::String);
    let mut op = OperationBuilder::new().summary(Some(r.summary));
    for segment in openapi_path(r.path).split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(text())),
            );
        }
    }
    for name in r.query {
        op = op.parameter(
            ParameterBuilder::new()
                .name(*name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .schema(Some(text())),
        );
    }
    if let Some(body) = r.body {
        let object = ObjectBuilder::new().schema_type(Type::Object).build();
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .description(Some(body))
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(object)).build(),
                )
                .required(Some(Required::True))
                .build(),
        ));
    }
    let json = || {
        ContentBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::Object).build()))
            .build()
    };
    op = op.response(
        "200",
        ResponseBuilder::new()
            .description("success")
            .content("application/json", json()),
    );
    let errors: &[(&str, &str)] = match r.auth {
        Auth::Public => &[],
        Auth::Tenant => &[("401", "no or unknown API key")],
        Auth::Operator | Auth::Ops => &[
            ("401", "no or unknown key"),
            (
                "403",
                "a tenant key on an operator action or another namespace, or a read-only server",
            ),
            ("404", "unknown queue, event or key"),
            ("422", "an invalid value; `field` names it"),
        ],
    };
    for (code, description) in errors {
        op = op.response(
            *code,
            ResponseBuilder::new()
                .description(*description)
                .content("application/json", json()),
        );
    }
    if r.auth != Auth::Public {
        op = op.security(SecurityRequirement::new("bearer", Vec::<String>::new()));
    }
    op.build()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_document_has_every_served_route_and_nothing_else() {
        let served: BTreeSet<(&str, &str)> = crate::app::served_routes::<conveyor::SqliteStore>()
            .into_iter()
            .collect();
        let documented: BTreeSet<(&str, &str)> =
            ROUTES.iter().map(|r| (r.method, r.path)).collect();
        let undocumented: Vec<_> = served.difference(&documented).collect();
        assert!(
            undocumented.is_empty(),
            "served, not documented: {undocumented:?}"
        );
        let unserved: Vec<_> = documented
            .difference(&served)
            .filter(|(_, path)| !DASHBOARD.contains(path))
            .collect();
        assert!(unserved.is_empty(), "documented, not served: {unserved:?}");
    }

    #[test]
    fn the_document_is_openapi_3_1_with_each_path_and_its_parameters() {
        let json: serde_json::Value = serde_json::from_str(&openapi().to_json().unwrap()).unwrap();
        assert!(
            json["openapi"].as_str().unwrap().starts_with("3.1"),
            "{json}"
        );
        for r in ROUTES {
            let op = &json["paths"][openapi_path(r.path)][r.method.to_lowercase()];
            assert!(op.is_object(), "{} {} missing", r.method, r.path);
        }
        let skip = &json["paths"]["/v1/queues/{event_type}/parked-keys/{key}/skip"]["post"];
        let names: Vec<&str> = skip["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"event_type") && names.contains(&"key"),
            "{names:?}"
        );
    }
}
