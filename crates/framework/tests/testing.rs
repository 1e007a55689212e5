//! `conveyor::testing` on both backends: typed emitted events, a batch run as attempt N,
//! draining a pool, the outbox assertions and the temporary SQLite store.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conveyor::testing::{self, TestRun};
use conveyor::{
    Batch, Context, EventHandler, HandlerError, Message, NewEvent, Outcome, SqlStore, Store,
};
use sqlx::PgPool;

#[macro_use]
mod backends;
use backends::pg;

#[derive(Debug, serde::Serialize, serde::Deserialize, garde::Validate)]
struct Order {
    #[garde(skip)]
    id: String,
}

impl conveyor::Event for Order {
    const NAME: &'static str = "order";
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize, garde::Validate)]
struct SendReceipt {
    #[garde(skip)]
    order_id: String,
}

impl conveyor::Event for SendReceipt {
    const NAME: &'static str = "send_receipt";
}

/// Emits a receipt per order, and one unrelated `Audit` for the batch.
struct Receipts;

#[derive(Debug, serde::Serialize, serde::Deserialize, garde::Validate)]
struct Audit {
    #[garde(skip)]
    orders: Vec<String>,
}

impl conveyor::Event for Audit {
    const NAME: &'static str = "audit";
}

#[async_trait::async_trait]
impl<S: Store> EventHandler<S> for Receipts {
    type Event = Order;
    const BATCH_SIZE: usize = 10;

    async fn handle(
        &self,
        batch: Batch<Order>,
        ctx: &mut Context<'_, S>,
    ) -> Result<(), HandlerError> {
        for item in &batch {
            ctx.emit_for(
                item.id,
                SendReceipt {
                    order_id: item.payload.id.clone(),
                },
            )?;
        }
        ctx.emit(Audit {
            orders: batch.iter().map(|i| i.payload.id.clone()).collect(),
        })?;
        Ok(())
    }
}

/// What a [`Script`] does with every batch.
#[derive(Clone, Copy)]
enum Act {
    Deliver,
    /// Retry after the default backoff (`MAX_RETRIES = 5`).
    Retry,
    /// Retry at once, forever: the queue never settles.
    RetryNow,
    /// Dead-letter the batch.
    Fail,
}

/// A handler of any event type that acts as told and records the attempts it saw.
struct Script<E> {
    act: Act,
    seen: Arc<Mutex<Vec<u32>>>,
    event: PhantomData<fn() -> E>,
}

fn script<E>(act: Act) -> Script<E> {
    Script {
        act,
        seen: Arc::default(),
        event: PhantomData,
    }
}

#[async_trait::async_trait]
impl<S: Store, E: conveyor::Event> EventHandler<S> for Script<E> {
    type Event = E;

    async fn handle(&self, batch: Batch<E>, _: &mut Context<'_, S>) -> Result<(), HandlerError> {
        let attempts = batch.iter().map(|i| i.attempt);
        self.seen.lock().unwrap().extend(attempts);
        match self.act {
            Act::Deliver => Ok(()),
            Act::Retry => Err(HandlerError::retry("smtp down")),
            Act::RetryNow => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Err(HandlerError::retry_after(Duration::ZERO, "again"))
            }
            Act::Fail => Err(HandlerError::fail("closed")),
        }
    }

    fn max_retries(&self) -> u32 {
        match self.act {
            Act::RetryNow => u32::MAX,
            _ => 5,
        }
    }
}

fn orders(ids: &[&str]) -> Vec<Order> {
    ids.iter()
        .map(|id| Order {
            id: (*id).to_owned(),
        })
        .collect()
}

fn receipt(order_id: &str) -> SendReceipt {
    SendReceipt {
        order_id: order_id.to_owned(),
    }
}

fn audit() -> Audit {
    Audit {
        orders: vec!["o-1".into()],
    }
}

// 3. drain: in `testing/drain.rs`
#[path = "testing/drain.rs"]
mod drain;

// 1. typed emitted events

async fn emitted_decodes_one_type<S: SqlStore>(store: &S) {
    let run = testing::run_batch(store, &Receipts, orders(&["o-1", "o-2"]))
        .await
        .unwrap();
    assert_eq!(
        run.emitted::<SendReceipt>(),
        vec![receipt("o-1"), receipt("o-2")]
    );
    assert_eq!(
        run.emitted.len(),
        3,
        "the raw list keeps every emitted event"
    );
    assert_eq!(run.emitted::<Audit>().len(), 1);
}

on_both_backends!(
    emitted_decodes_one_type,
    emitted_decodes_on_postgres,
    emitted_decodes_on_sqlite
);

#[test]
#[should_panic(expected = "emitted \"send_receipt\" event does not decode as")]
fn emitted_of_a_mismatched_type_panics_naming_the_payload() {
    // another type under the name `send_receipt`
    let mut event: NewEvent = Message::new(audit()).into_new_event().unwrap();
    event.event_type = "send_receipt".into();
    let run = TestRun {
        outcomes: Vec::new(),
        emitted: vec![event],
    };
    run.emitted::<SendReceipt>();
}

#[test]
fn emitted_is_empty_without_events_of_the_type() {
    let audit: NewEvent = Message::new(audit()).into_new_event().unwrap();
    let run = TestRun {
        outcomes: Vec::new(),
        emitted: vec![audit],
    };
    assert!(run.emitted::<SendReceipt>().is_empty());
}

// 2. a batch as attempt N

async fn attempt_n_counts_earlier_attempts<S: SqlStore>(store: &S) {
    let flaky = script::<Order>(Act::Retry);
    let run = testing::run_batch_as_attempt(store, &flaky, orders(&["o-5"]), 5)
        .await
        .unwrap();
    assert!(
        matches!(&run.outcomes[0].1, Outcome::Retry { error, .. } if error == "smtp down"),
        "attempt 5 of MAX_RETRIES 5 retries: {:?}",
        run.outcomes
    );
    let run = testing::run_batch_as_attempt(store, &flaky, orders(&["o-6"]), 6)
        .await
        .unwrap();
    assert!(
        matches!(&run.outcomes[0].1, Outcome::Dead { error } if error.contains("gave up after 6 attempts")),
        "attempt 6 of MAX_RETRIES 5 dies: {:?}",
        run.outcomes
    );
    assert_eq!(
        *flaky.seen.lock().unwrap(),
        vec![5, 6],
        "the handler saw the attempt"
    );
    let dead = store.dead_letters(None, None, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].id, dead[0].attempts),
        (run.outcomes[0].0, 6),
        "stored attempts"
    );
    let stats = store.stats().await.unwrap();
    assert_eq!((stats[0].retrying, stats[0].dead), (1, 1));

    let zero = testing::run_batch_as_attempt(store, &flaky, orders(&["o-0"]), 0).await;
    assert!(matches!(zero, Err(conveyor::Error::Config(_))), "{zero:?}");
}

on_both_backends!(
    attempt_n_counts_earlier_attempts,
    attempt_n_on_postgres,
    attempt_n_on_sqlite
);

// 4. the outbox

/// `other` is `store` in another namespace.
async fn published_lists_pending_events_of_a_type<S: SqlStore>(store: &S, other: &S) {
    testing::run_batch(store, &Receipts, orders(&["o-1", "o-2"]))
        .await
        .unwrap();
    store
        .publish(Message::new(receipt("o-3")).delay(Duration::from_secs(60)))
        .await
        .unwrap();
    let all = testing::published::<SendReceipt, S>(store).await.unwrap();
    assert_eq!(all, vec![receipt("o-1"), receipt("o-2"), receipt("o-3")]);
    let two = testing::assert_published(store, |r: &SendReceipt| r.order_id != "o-1").await;
    assert_eq!(two, vec![receipt("o-2"), receipt("o-3")]);
    // delivered orders are no longer waiting
    assert!(testing::published::<Order, S>(store)
        .await
        .unwrap()
        .is_empty());
    assert!(testing::published::<SendReceipt, S>(other)
        .await
        .unwrap()
        .is_empty());
}

#[sqlx::test(migrations = false)]
async fn published_on_postgres(pool: PgPool) {
    let store = pg(pool).await;
    let other = store.with_namespace("other").unwrap();
    published_lists_pending_events_of_a_type(&store, &other).await;
}

#[tokio::test]
async fn published_on_sqlite() {
    let db = testing::sqlite().await.unwrap();
    let other = db.with_namespace("other").unwrap();
    published_lists_pending_events_of_a_type(&*db, &other).await;
}

async fn assert_published_panics_without_a_match<S: SqlStore>(store: &S) {
    store.publish(receipt("o-1")).await.unwrap();
    testing::assert_published(store, |r: &SendReceipt| r.order_id == "o-2").await;
}

#[sqlx::test(migrations = false)]
#[should_panic(expected = "no pending \"send_receipt\" event matches; pending: [{\"order_id\"")]
async fn assert_published_panics_on_postgres(pool: PgPool) {
    assert_published_panics_without_a_match(&pg(pool).await).await;
}

#[tokio::test]
#[should_panic(expected = "no pending \"send_receipt\" event matches; pending: [{\"order_id\"")]
async fn assert_published_panics_on_sqlite() {
    let db = testing::sqlite().await.unwrap();
    assert_published_panics_without_a_match(&*db).await;
}

// 5. the temporary SQLite store

#[tokio::test]
async fn temp_sqlite_is_migrated_private_and_removed_on_drop() {
    let db = testing::sqlite().await.unwrap();
    let other = testing::sqlite().await.unwrap();
    assert_ne!(db.path(), other.path());
    assert!(db.path().is_file());
    db.publish(receipt("o-1")).await.unwrap();
    assert_eq!(db.stats().await.unwrap()[0].pending, 1);
    assert!(
        other.stats().await.unwrap().is_empty(),
        "each test gets its own database"
    );
    let dir = db.dir().to_path_buf();
    drop(db);
    assert!(!dir.exists(), "{} left behind", dir.display());
}
