//! `subscriptions list` / `remove` and `--subscription` through the real binary.

use conveyor::{Queue, Store};
use conveyor_integration::{database_url, Ping};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::cli_admin::{run, store};

/// Recorded subscriptions are listed; removing one deletes its pending copies and an
/// unknown one exits 2 listing the recorded ones; `--subscription` pauses one copy's queue.
#[sqlx::test(migrations = false)]
async fn subscriptions_are_listed_removed_and_paused_one_by_one(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let url = database_url(&opts);
    let store = store(opts).await;
    let ping = |sub: &str| Queue::new("it.ping", None).in_subscription(sub);
    store
        .subscribe(&ping("billing"), "app::Billing")
        .await
        .unwrap();
    store.subscribe(&ping("email"), "app::Email").await.unwrap();
    store.publish(Ping { n: 1 }).await.unwrap();
    store.publish(Ping { n: 2 }).await.unwrap();

    let (code, out, err) = run(&url, &["subscriptions", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("it.ping@billing") && out.contains("app::Billing"),
        "{out}"
    );
    assert!(
        out.contains("it.ping@email") && out.contains("app::Email"),
        "{out}"
    );

    let (code, out, err) = run(&url, &["pause", "it.ping", "--subscription", "email"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("paused it.ping@email"), "{out}");
    let stats = store.stats().await.unwrap();
    let paused: Vec<String> = stats
        .iter()
        .filter(|s| s.paused)
        .map(|s| s.queue.to_string())
        .collect();
    assert_eq!(paused, vec!["it.ping@email"]);

    let (code, out, err) = run(
        &url,
        &[
            "subscriptions",
            "remove",
            "it.ping",
            "--subscription",
            "email",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("its 2 pending events"), "{out}");
    let (code, _, err) = run(
        &url,
        &[
            "subscriptions",
            "remove",
            "it.ping",
            "--subscription",
            "email",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no subscription it.ping@email") && err.contains("recorded: it.ping@billing"),
        "{err}"
    );

    let (code, out, err) = run(&url, &["subscriptions", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let sub: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(sub["queue"]["subscription"], "billing");
}
