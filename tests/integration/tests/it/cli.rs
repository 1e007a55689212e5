//! The operator command line against a real database.

use conveyor::{Message, PgStore, Queue, Store};
use conveyor_integration::{conveyor, database_url, Ping};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

async fn stats(store: &PgStore) -> conveyor::QueueStats {
    store
        .stats()
        .await
        .unwrap()
        .into_iter()
        .next()
        .expect("one queue")
}

/// `migrate` on an empty database applies the schema; running it again is a no-op.
#[sqlx::test(migrations = false)]
async fn migrate_applies_the_schema_once(_: PgPoolOptions, opts: PgConnectOptions) {
    let url = database_url(&opts);
    conveyor(&["migrate", "--database-url", &url])
        .await
        .unwrap();
    conveyor(&["migrate", "--database-url", &url])
        .await
        .unwrap();
    let pool = PgPoolOptions::new().connect_with(opts).await.unwrap();
    let store = PgStore::new(pool);
    store.publish(Ping { n: 1 }).await.unwrap();
    assert_eq!(stats(&store).await.pending, 1);
}

/// `pause` and `resume` reach every process through the database, per namespace.
#[sqlx::test(migrator = "conveyor::MIGRATOR")]
async fn pause_and_resume_act_on_the_named_namespace(_: PgPoolOptions, opts: PgConnectOptions) {
    let url = database_url(&opts);
    let pool = PgPoolOptions::new().connect_with(opts).await.unwrap();
    let store = PgStore::new(pool).with_namespace("acme").unwrap();
    store.publish(Ping { n: 1 }).await.unwrap();

    let base = ["--database-url", url.as_str(), "--namespace", "acme"];
    conveyor(&[&base[..], &["pause", "it.ping"]].concat())
        .await
        .unwrap();
    assert!(stats(&store).await.paused);
    conveyor(&[&base[..], &["resume", "it.ping"]].concat())
        .await
        .unwrap();
    assert!(!stats(&store).await.paused);
}

/// Dead letters can be replayed and purged from the command line.
#[sqlx::test(migrator = "conveyor::MIGRATOR")]
async fn replay_and_purge_dead_letters(_: PgPoolOptions, opts: PgConnectOptions) {
    let url = database_url(&opts);
    let pool = PgPoolOptions::new().connect_with(opts).await.unwrap();
    let store = PgStore::new(pool.clone());
    let id = store
        .publish(Message::new(Ping { n: 1 }).routing_key("r"))
        .await
        .unwrap()
        .id()
        .unwrap();
    sqlx::query("update conveyor_events set status = 'dead', last_error = 'boom'")
        .execute(&pool)
        .await
        .unwrap();

    conveyor(&["--database-url", &url, "replay", &id.to_string()])
        .await
        .unwrap();
    assert_eq!(stats(&store).await.pending, 1);

    sqlx::query("update conveyor_events set status = 'dead'")
        .execute(&pool)
        .await
        .unwrap();
    let refused = conveyor(&["--database-url", &url, "purge"])
        .await
        .unwrap_err();
    assert!(refused.contains("--all"), "{refused}");
    conveyor(&[
        "--database-url",
        &url,
        "purge",
        "--event-type",
        "it.ping",
        "--routing-key",
        "r",
    ])
    .await
    .unwrap();
    assert!(store
        .dead_letters(Some(&Queue::new("it.ping", Some("r"))), None, 10)
        .await
        .unwrap()
        .is_empty());
}

/// Bad input names the flag: no URL, an unreachable URL, an empty namespace, an empty type.
#[tokio::test]
async fn bad_input_names_the_flag() {
    let err = conveyor(&["--database-url", "", "stats"])
        .await
        .unwrap_err();
    assert!(err.contains("--database-url"), "{err}");
    let err = conveyor(&[
        "--database-url",
        "postgres://u:secret@127.0.0.1:1/x",
        "stats",
    ])
    .await
    .unwrap_err();
    assert!(err.contains("--database-url"), "{err}");
    assert!(!err.contains("secret"), "password leaked: {err}");
    let err = conveyor(&["pause", ""]).await.unwrap_err();
    assert!(
        err.contains("EVENT_TYPE") || err.contains("event_type"),
        "{err}"
    );
}
