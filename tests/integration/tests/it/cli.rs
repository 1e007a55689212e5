//! The operator command line against a real database, and picking the database: the
//! embedded SQLite default, a `sqlite://` or `postgres://` URL, or an error naming the flag.

const BIN: &str = env!("CARGO_BIN_EXE_conveyor-it-server");

use conveyor::{Message, PgStore, Queue, Store};
use conveyor_integration::pipeline::{bulk, event, temp_dir, ServerProcess};
use conveyor_integration::{conveyor, database_url, Ping, TestDb};
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

/// Bad input names the flag: an unsupported scheme, an unreachable URL, an empty
/// namespace, an empty type, a data dir beside a URL.
#[tokio::test]
async fn bad_input_names_the_flag() {
    for (args, flag) in [
        (
            &["--database-url", "mysql://u:secret@127.0.0.1/x", "stats"][..],
            "--database-url",
        ),
        (
            &["--database-url", "conveyor.db", "stats"],
            "--database-url",
        ),
        (
            &["--database-url", "sqlite::memory:", "stats"],
            "--database-url",
        ),
        (
            &[
                "--database-url",
                "postgres://u:secret@127.0.0.1:1/x",
                "stats",
            ],
            "--database-url",
        ),
        (
            &[
                "--database-url",
                "postgres://h/x",
                "--data-dir",
                "d",
                "stats",
            ],
            "--data-dir",
        ),
        (&["pause", ""], "EVENT_TYPE"),
    ] {
        let err = conveyor(args).await.unwrap_err();
        assert!(err.contains(flag), "{args:?}: {err}");
        assert!(!err.contains("secret"), "password leaked: {err}");
    }
}

/// With no URL the commands use the embedded database in `--data-dir`: `migrate` creates
/// it, the operator commands (pause, rollup rebuild) work on it, and they refuse a directory
/// without one.
#[tokio::test]
async fn no_url_means_the_embedded_database_in_the_data_dir() {
    let dir = temp_dir("conveyor-cli-data");
    let data = dir.join("data");
    let data = data.to_str().unwrap();
    let no_url = ["--database-url", "", "--data-dir", data];

    let err = conveyor(&[&no_url[..], &["stats"]].concat())
        .await
        .unwrap_err();
    assert!(
        err.contains("no database at") && err.contains("--data-dir"),
        "{err}"
    );
    assert!(
        !dir.join("data").exists(),
        "a read-only command creates nothing"
    );

    conveyor(&[&no_url[..], &["migrate"]].concat())
        .await
        .unwrap();
    assert!(dir.join("data/conveyor.db").is_file());
    let store = conveyor::SqliteStore::open(dir.join("data/conveyor.db"))
        .await
        .unwrap()
        .with_namespace("acme")
        .unwrap();
    store.publish(Ping { n: 1 }).await.unwrap();
    conveyor(&[&no_url[..], &["--namespace", "acme", "pause", "it.ping"]].concat())
        .await
        .unwrap();
    let stats = store.stats().await.unwrap();
    assert!(stats[0].paused && stats[0].pending == 1, "{stats:?}");
    let today = chrono::Utc::now().date_naive().to_string();
    let rebuild = ["rollup", "rebuild", "--from", &today, "--to", &today];
    conveyor(&[&no_url[..], &rebuild].concat()).await.unwrap();
    store.pool().close().await;
    std::fs::remove_dir_all(dir).ok();
}

/// `conveyor serve` with no `DATABASE_URL` at all creates `./conveyor-data/conveyor.db` on
/// first run and serves the API from it.
#[tokio::test]
async fn serve_with_no_url_creates_the_default_database() {
    let dir = temp_dir("conveyor-cli-serve");
    let server = ServerProcess::start(BIN, None, "k=tenant", &dir).await;
    assert!(dir.join("conveyor-data/conveyor.db").is_file());
    let response = reqwest::Client::new()
        .post(format!("http://{}/v1/events/bulk", server.addr))
        .bearer_auth("k")
        .json(&bulk(&[event(0)]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let db = TestDb::connect(&format!(
        "sqlite://{}",
        dir.join("conveyor-data/conveyor.db").display()
    ))
    .await;
    server
        .wait_for_settled(&db, std::time::Duration::from_secs(30))
        .await;
    assert_eq!(db.raw_counts().await, (1, 1));
    server.kill();
    db.close().await;
    std::fs::remove_dir_all(dir).ok();
}

/// Run the real binary with `args` and `env`, no other `DATABASE_URL` or `CONVEYOR_*`
/// setting; its exit code and everything it printed (stdout, then stderr).
fn run_binary(args: &[&str], env: &[(&str, &str)], dir: &std::path::Path) -> (i32, String) {
    let mut command = std::process::Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("CONVEYOR_API_KEYS")
        .env_remove("CONVEYOR_DATA_DIR")
        .env("RUST_LOG", "info");
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().expect("running the binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Run `conveyor <args>` in `dir` with `DATABASE_URL=url` (its password is `pw-s3cret`): it
/// exits with `code`, and its output names `names` but not the password.
fn assert_hides_the_password(
    args: &[&str],
    url: &str,
    dir: &std::path::Path,
    code: i32,
    names: &str,
) {
    let (got, text) = run_binary(args, &[("DATABASE_URL", url)], dir);
    assert_eq!(got, code, "{args:?} with {url}: {text}");
    assert!(text.contains(names), "{args:?} with {url}: {text}");
    assert!(
        !text.contains("s3cret"),
        "{args:?} with {url} shows the password: {text}"
    );
}

/// `--help` shows that `DATABASE_URL` is read, never its value (it may hold a password).
#[test]
fn help_never_shows_the_database_password() {
    let dir = temp_dir("conveyor-cli-help");
    let url = "postgres://u:pw-s3cret@127.0.0.1/db?password=pw-s3cret";
    for args in [
        &["serve", "--help"][..],
        &["--help"],
        &["migrate", "--help"],
        &["bench", "--help"],
    ] {
        assert_hides_the_password(args, url, &dir, 0, "DATABASE_URL");
    }
    std::fs::remove_dir_all(dir).ok();
}

/// A password in any form of the URL (userinfo, `?password=`, any case, `sslpassword`) is
/// in no message or log line of a command that cannot connect.
#[test]
fn no_form_of_the_database_password_is_printed() {
    let dir = temp_dir("conveyor-cli-password");
    for url in [
        "postgres://u@127.0.0.1:1/db?password=pw-s3cret",
        "postgres://u:pw-s3cret@127.0.0.1:1/db?sslmode=disable",
        "postgres://u@127.0.0.1:1/db?PASSWORD=pw-s3cret",
        "postgres://u@127.0.0.1:1/db?sslpassword=pw-s3cret",
    ] {
        assert_hides_the_password(&["migrate"], url, &dir, 1, "--database-url");
    }
    std::fs::remove_dir_all(dir).ok();
}

/// Out-of-range numbers are usage errors (exit 2) naming the flag, before anything starts,
/// not a server whose every ingest fails.
#[tokio::test]
async fn out_of_range_numbers_stop_serve_naming_the_flag() {
    let dir = temp_dir("conveyor-cli-ranges");
    let url = format!("sqlite://{}", dir.join("data/c.db").display());
    let spool = dir.join("spool");
    let spool = spool.to_str().unwrap();
    for (flag, value) in [
        ("--retention-days", "4000000000"),
        ("--max-future-secs", "18446744073709551615"),
        ("--partitions-ahead", "100000"),
        ("--cache-ttl-ms", "18446744073709551615"),
        ("--max-body-bytes", "0"),
    ] {
        let args = [
            "serve",
            "--database-url",
            &url,
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            "k=t",
            "--spool-dir",
            spool,
            flag,
            value,
        ];
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(20), conveyor(&args))
            .await
            .unwrap_or_else(|_| panic!("{flag} {value}: serve started"));
        let err = outcome.unwrap_err();
        assert!(err.contains(flag), "{flag} {value}: {err}");
        let (code, text) = run_binary(&args, &[], &dir);
        assert_eq!(code, 2, "{flag} {value}: {text}");
    }
    assert!(!dir.join("data").exists(), "nothing was created");
    std::fs::remove_dir_all(dir).ok();
}

/// A malformed `--api-key` is refused naming the flag, without echoing the key.
#[tokio::test]
async fn a_malformed_api_key_is_never_echoed() {
    for bad in ["key-s3cret", "key-s3cret=", "key s3cret=acme"] {
        let err = conveyor(&["serve", "--api-key", bad]).await.unwrap_err();
        assert!(err.contains("--api-key"), "{bad}: {err}");
        assert!(!err.contains("s3cret"), "{bad} echoed: {err}");
    }
}

/// A key ending in base64 padding (`=`) is the whole key: `KEY=NAMESPACE` splits at the
/// last `=`.
#[tokio::test]
async fn a_key_with_base64_padding_authenticates() {
    let dir = temp_dir("conveyor-cli-padded-key");
    let server = ServerProcess::start(BIN, None, "dG9rZW4===tenant", &dir).await;
    let post = |key: &'static str| {
        reqwest::Client::new()
            .post(format!("http://{}/v1/events/bulk", server.addr))
            .bearer_auth(key)
            .json(&bulk(&[event(0)]))
            .send()
    };
    assert_eq!(post("dG9rZW4==").await.unwrap().status(), 202);
    assert_eq!(post("dG9rZW4").await.unwrap().status(), 401);
    server.kill();
    std::fs::remove_dir_all(dir).ok();
}
