//! The operator commands as an operator meets them, through the real binary: exit codes,
//! what is printed, and the mistakes they refuse.

use conveyor::{Message, PgStore, Queue, Store};
use conveyor_integration::{database_url, Ping};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const BIN: &str = env!("CARGO_BIN_EXE_conveyor-it-server");

/// Run the binary on `url` with `args`: (exit code, stdout, stderr).
pub(crate) fn run(url: &str, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(BIN)
        .arg("--database-url")
        .arg(url)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("CONVEYOR_DATA_DIR")
        .env("RUST_LOG", "off")
        .output()
        .expect("running the binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub(crate) async fn store(opts: PgConnectOptions) -> PgStore {
    let store = PgStore::new(PgPoolOptions::new().connect_with(opts).await.unwrap());
    store.migrate().await.unwrap();
    store
}

async fn kill_all(store: &PgStore) {
    sqlx::query("update conveyor_events set status = 'dead', last_error = 'boom\nsecond line'")
        .execute(store.pool())
        .await
        .unwrap();
}

/// A typo in `pause` would pause a queue nobody consumes: it exits 2 listing the known
/// queues, and `--force` pauses it anyway (after which it is known).
#[sqlx::test(migrations = false)]
async fn pause_of_an_unknown_queue_exits_2_listing_the_known_ones(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let url = database_url(&opts);
    let store = store(opts).await;
    store.publish(Ping { n: 1 }).await.unwrap();

    let (code, _, err) = run(&url, &["pause", "it.pnig"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("unknown queue it.pnig") && err.contains("known queues: it.ping"),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    let (code, _, err) = run(&url, &["resume", "it.pnig"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        store.stats().await.unwrap().iter().all(|s| !s.paused),
        "nothing was paused"
    );

    let (code, out, err) = run(&url, &["pause", "it.pnig", "--force"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("paused it.pnig"), "{out}");
    let (code, _, err) = run(&url, &["resume", "it.pnig"]);
    assert_eq!(code, 0, "a paused queue is known: {err}");
    let (code, _, err) = run(&url, &["pause", "it.ping"]);
    assert_eq!(code, 0, "{err}");
}

/// `replay` names the ids that are not dead letters and exits 1; `replay --queue Q --all`
/// replays every dead letter of that queue and no other.
#[sqlx::test(migrations = false)]
async fn replay_names_what_is_not_dead_and_all_replays_a_whole_queue(
    _: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let url = database_url(&opts);
    let store = store(opts).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(store.publish(Ping { n }).await.unwrap().id().unwrap());
    }
    store
        .publish(Message::new(Ping { n: 9 }).routing_key("other"))
        .await
        .unwrap();
    kill_all(&store).await;

    let (code, out, err) = run(&url, &["replay", &ids[0].to_string(), "999999"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("replayed 1 of 2"), "{out}");
    assert!(
        err.contains("not a dead letter") && err.contains("999999"),
        "{err}"
    );
    let (code, _, err) = run(&url, &["replay", &ids[0].to_string()]);
    assert_eq!(code, 1, "already replayed: {err}");

    let (code, out, err) = run(&url, &["replay", "--queue", "it.ping", "--all"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("replayed 2 dead letters"), "{out}");
    let dead = store.dead_letters(None, None, 10).await.unwrap();
    assert_eq!(dead.len(), 1, "the other queue's dead letter stays");
    assert_eq!(dead[0].queue, Queue::new("it.ping", Some("other")));

    let (code, _, err) = run(&url, &["replay"]);
    assert_eq!(code, 2, "no ids and no --all: {err}");
}

/// `dead-letters` prints a table (one line per dead letter, errors on one line); `--json`
/// one JSON object per line.
#[sqlx::test(migrations = false)]
async fn dead_letters_prints_a_table_or_json(_: PgPoolOptions, opts: PgConnectOptions) {
    let url = database_url(&opts);
    let store = store(opts).await;
    let id = store.publish(Ping { n: 1 }).await.unwrap().id().unwrap();
    kill_all(&store).await;

    let (code, out, err) = run(&url, &["dead-letters"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0]
            .split_whitespace()
            .eq(["id", "queue", "attempts", "failures", "died_at", "error"]),
        "{out}"
    );
    assert!(
        lines[1].contains(&id.to_string()) && lines[1].contains("boom second line"),
        "{out}"
    );

    let (code, out, err) = run(&url, &["dead-letters", "--json"]);
    assert_eq!(code, 0, "{err}");
    let row: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(row["id"], id.0, "{row}");
    assert_eq!(
        row["errors"],
        serde_json::json!([]),
        "no failure recorded: {row}"
    );
}

/// `cancel` prints what it did to each id and exits 1 naming the ids it could not cancel
/// (unknown or already finished); `--key` cancels the event of an idempotency key; a
/// malformed id is a usage error.
#[sqlx::test(migrations = false)]
async fn cancel_names_what_it_could_not_cancel(_: PgPoolOptions, opts: PgConnectOptions) {
    let url = database_url(&opts);
    let store = store(opts).await;
    let id = store.publish(Ping { n: 1 }).await.unwrap().id().unwrap();
    let keyed = Message::new(Ping { n: 2 }).idempotency_key("order-7");
    let keyed = store.publish(keyed).await.unwrap().id().unwrap();
    store.publish(Ping { n: 3 }).await.unwrap();

    let (code, out, err) = run(&url, &["cancel", &id.to_string(), "999999"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains(&format!("{id} cancelled")), "{out}");
    assert!(out.contains("999999 not found"), "{out}");
    assert!(
        err.contains("999999") && !err.contains(&id.to_string()),
        "names only the refused id: {err}"
    );
    let (code, out, err) = run(&url, &["cancel", &id.to_string()]);
    assert_eq!(code, 1, "{err}");
    assert!(out.contains("already cancelled"), "{out}");

    let (code, out, err) = run(
        &url,
        &["cancel", "--key", "order-7", "--reason", "withdrawn"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("{keyed} cancelled")), "{out}");
    let (code, _, err) = run(&url, &["cancel", "--key", "order-8"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("order-8"), "{err}");

    let (code, _, err) = run(&url, &["cancel", "12abc"]);
    assert_eq!(code, 2, "malformed id: {err}");
    let stats = store.stats().await.unwrap();
    assert_eq!((stats[0].cancelled, stats[0].pending), (2, 1), "{stats:?}");
}

/// `migrate --outbox-only` gives a library user's database Conveyor's outbox and none of
/// the server's pipeline tables.
#[sqlx::test(migrations = false)]
async fn migrate_outbox_only_leaves_the_pipeline_out(_: PgPoolOptions, opts: PgConnectOptions) {
    let url = database_url(&opts);
    let (code, out, err) = run(&url, &["migrate", "--outbox-only"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("outbox migrations applied"), "{out}");
    let pool = PgPoolOptions::new().connect_with(opts).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "select tablename::text from pg_tables where schemaname = 'public' order by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(tables.contains(&"conveyor_events".to_owned()), "{tables:?}");
    assert!(!tables.contains(&"events_raw".to_owned()), "{tables:?}");
    assert!(
        !tables.contains(&"_sqlx_migrations".to_owned()),
        "{tables:?}"
    );
}
