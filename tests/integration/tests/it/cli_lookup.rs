//! `event show` and `events list` through the real binary: what they print, and the
//! mistakes they refuse.

use conveyor::{EventStatus, Message, Store};
use conveyor_integration::{database_url, Ping};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::cli_admin::{run, store};

/// `event show` prints one event in any state, as a list or JSON; an unknown id exits 1
/// naming it.
#[sqlx::test(migrations = false)]
async fn event_show_prints_one_event_and_names_an_unknown_id(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let url = database_url(&opts);
    let store = store(opts).await;
    let id = store
        .publish(Message::new(Ping { n: 7 }).idempotency_key("order-7"))
        .await
        .unwrap()
        .id()
        .unwrap();

    let (code, out, err) = run(&url, &["event", "show", &id.to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("status:           pending"), "{out}");
    assert!(out.contains("idempotency_key:  order-7"), "{out}");
    assert!(out.contains(r#"{"n":7}"#), "{out}");

    let (code, out, err) = run(&url, &["event", "show", &id.to_string(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(json["id"], id.0);
    assert_eq!(json["status"], "pending");
    assert_eq!(json["queue"]["event_type"], "it.ping");

    let unknown = (id.0 + 1000).to_string();
    let (code, _, err) = run(&url, &["event", "show", &unknown]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("no event {unknown} in namespace default")),
        "{err}"
    );
    let (code, _, err) = run(&url, &["event", "show", "seven"]);
    assert_eq!(code, 2, "a malformed id is a usage error: {err}");
}

/// `events list` filters by queue and state and pages with `--after`; a bad state or
/// limit is a usage error naming the flag.
#[sqlx::test(migrations = false)]
async fn events_list_filters_pages_and_refuses_bad_flags(_: PgPoolOptions, opts: PgConnectOptions) {
    let url = database_url(&opts);
    let store = store(opts).await;
    store
        .publish_batch((0..5).map(|n| Ping { n }))
        .await
        .unwrap();
    sqlx::query(
        "update conveyor_events set status = 'dead', last_error = 'boom' \
         where id in (select id from conveyor_events order by id limit 2)",
    )
    .execute(store.pool())
    .await
    .unwrap();

    let (code, out, err) = run(
        &url,
        &[
            "events", "list", "--queue", "it.ping", "--state", "dead", "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let dead: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dead.len(), 2, "{out}");
    assert!(dead
        .iter()
        .all(|e| e["status"] == "dead" && e["last_error"] == "boom"));

    let (code, out, err) = run(&url, &["events", "list", "--limit", "3"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 4, "header and 3 rows: {out}");
    assert!(out.lines().next().unwrap().contains("status"), "{out}");
    let cursor = err
        .trim()
        .strip_prefix("more may follow: --after ")
        .unwrap_or_else(|| panic!("a cursor: {err}"))
        .to_owned();
    let (code, out, err) = run(&url, &["events", "list", "--after", &cursor, "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 2, "the rest: {out}");
    assert!(err.is_empty(), "last page: {err}");
    let pending = EventStatus::Pending.as_str();
    assert!(out.contains(pending), "{out}");

    for (args, flag) in [
        (&["events", "list", "--state", "stuck"][..], "--state"),
        (&["events", "list", "--limit", "5000"], "--limit"),
        (&["events", "list", "--from", "yesterday"], "--from"),
    ] {
        let (code, _, err) = run(&url, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: {err}");
    }
}
