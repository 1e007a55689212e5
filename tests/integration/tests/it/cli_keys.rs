//! `keys parked` and `keys skip` through the real binary, on both backends: a key parked
//! for real by a handler whose head dies, listed, skipped, and the rest of it delivered.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use conveyor::{
    Batch, Context, DeadHead, EventHandler, EventId, HandlerError, HandlerOptions, Message, Queue,
    SqliteStore, Store, WorkerPool,
};
use conveyor_integration::{database_url, remove_database, temp_database, Ping};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio_util::sync::CancellationToken;

use crate::cli_admin::{run, store};

/// Fails every event numbered 0 (the heads), records the others' numbers in handling order.
#[derive(Debug, Clone, Default)]
struct FailHeads(Arc<Mutex<Vec<u32>>>);

impl FailHeads {
    fn seen(&self) -> Vec<u32> {
        self.0.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl<S: Store> EventHandler<S> for FailHeads {
    type Event = Ping;

    async fn handle(
        &self,
        batch: Batch<Ping>,
        ctx: &mut Context<'_, S>,
    ) -> Result<(), HandlerError> {
        for item in &batch {
            if item.payload.n == 0 {
                ctx.fail(item.id, "the head dies");
            } else {
                self.0.lock().unwrap().push(item.payload.n);
            }
        }
        Ok(())
    }
}

/// Run a pool of `handler` (dead heads park their key) until `done` holds for the store.
async fn run_pool_until<S: Store, F: std::future::Future<Output = bool>>(
    store: &S,
    handler: &FailHeads,
    done: impl Fn() -> F,
) {
    let pool = WorkerPool::builder(store.clone())
        .register_with(
            handler.clone(),
            HandlerOptions::default()
                .poll_interval(Duration::from_millis(50))
                .on_dead_head(DeadHead::Park),
        )
        .build()
        .unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(pool.run(stop.clone().cancelled_owned()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out; handled {:?}",
            handler.seen()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    running.await.unwrap().unwrap();
}

/// Key `k1`'s head dies and parks it (its events 1 and 2 wait) while key `k2` flows;
/// `keys parked` lists it, `keys skip` refuses a key that is not parked (exit 1) and bad
/// flags (exit 2), then unparks `k1`, printing the dead head's id, and its events run in order.
async fn a_parked_key_is_listed_and_skipped<S: Store>(store: S, url: &str) {
    let publish = |n: u32, key: &'static str| {
        let store = store.clone();
        async move {
            store
                .publish(Message::new(Ping { n }).ordering_key(key))
                .await
                .unwrap()
                .id()
                .unwrap()
        }
    };
    let head = publish(0, "k1").await;
    publish(1, "k1").await;
    publish(2, "k1").await;
    publish(10, "k2").await;
    let queue = Queue::new("it.ping", None);
    let handler = FailHeads::default();
    run_pool_until(&store, &handler, || async {
        let parked = store.parked_keys(Some(&queue), 10).await.unwrap();
        parked.len() == 1 && handler.seen() == [10]
    })
    .await;
    assert_eq!(
        handler.seen(),
        [10],
        "k1's events wait behind its dead head"
    );

    let (code, out, err) = run(url, &["keys", "parked"]);
    assert_eq!(code, 0, "{err}");
    let row = out.lines().nth(1).expect("one parked key");
    assert!(
        row.contains("it.ping") && row.contains("k1") && row.contains(&head.to_string()),
        "{out}"
    );
    assert_eq!(out.lines().count(), 2, "{out}");
    let (code, out, err) = run(url, &["keys", "parked", "--queue", "it.ping", "--json"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(json["ordering_key"], "k1");
    assert_eq!(json["event_id"], head.0);
    assert_eq!(json["queue"]["event_type"], "it.ping");
    let (code, out, err) = run(url, &["keys", "parked", "--queue", "other"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "only the header: {out}");

    let (code, _, err) = run(url, &["keys", "skip", "it.ping", "k2"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("\"k2\"") && err.contains("not parked"),
        "{err}"
    );
    let (code, _, err) = run(url, &["keys", "skip", "it.ping"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("<KEY>"), "{err}");
    let (code, _, err) = run(url, &["keys", "skip", "it.ping", ""]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("<KEY>"), "{err}");
    let (code, _, err) = run(url, &["keys", "parked", "--limit", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--limit"), "{err}");

    let (code, out, err) = run(url, &["keys", "skip", "it.ping", "k1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("skipped {head}")), "{out}");
    assert!(store.parked_keys(None, 10).await.unwrap().is_empty());
    let dead = store.dead_letters(None, None, 10).await.unwrap();
    let dead: Vec<EventId> = dead.iter().map(|d| d.id).collect();
    assert_eq!(dead, [head], "the skipped head stays a dead letter");
    let (code, _, err) = run(url, &["keys", "skip", "it.ping", "k1"]);
    assert_eq!(code, 1, "skipped already: {err}");

    run_pool_until(&store, &handler, || async { handler.seen().len() == 3 }).await;
    assert_eq!(handler.seen(), [10, 1, 2], "the rest of k1, in order");
}

#[sqlx::test(migrations = false)]
async fn a_parked_key_is_listed_and_skipped_on_postgres(_: PgPoolOptions, opts: PgConnectOptions) {
    let url = database_url(&opts);
    a_parked_key_is_listed_and_skipped(store(opts).await, &url).await;
}

#[tokio::test]
async fn a_parked_key_is_listed_and_skipped_on_sqlite() {
    let file = temp_database();
    let store = SqliteStore::open(&file).await.unwrap();
    let url = format!("sqlite://{}", file.display());
    a_parked_key_is_listed_and_skipped(store.clone(), &url).await;
    store.pool().close().await;
    remove_database(&file);
}
