//! [`Harness`]: what the suite needs from a backend besides its [`PipelineStore`]. Every
//! statement whose SQL or column types differ between backends lives behind it; the cases
//! only send SQL both dialects read alike.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use conveyor::testing::{run_batch, TestRun};
use conveyor::{EventHandler, HandlerOptions, PoolBuilder, Store};
use conveyor_handlers::{
    IndexRecord, KeywordIndexHandler, PipelineStore, RawStoreHandler, RollupHandler,
    VectorIndexHandler,
};

/// `(namespace, day, event_type, source, count)` rows.
pub(crate) type CountRow = (String, NaiveDate, String, String, i64);

/// The rollup's [`CountRow`]s in order, in SQL both backends read alike.
pub(crate) const ROLLUP_COUNTS: &str = "select namespace, day, event_type, source, count
    from analytics_daily_event_counts order by 1, 2, 3, 4";

/// A store the pipeline handler `Hd` runs on, implemented for every such pair.
///
/// A bound `RawStoreHandler: EventHandler<S>` is not implied where `S` is used, so every
/// case would have to repeat it; a bound on the store itself ([`Harness::Store`]) is, so
/// the cases reach the handlers through this trait.
#[allow(async_fn_in_trait)] // awaited in place, never spawned
pub(crate) trait Handles<Hd>: Store {
    /// [`run_batch`] of `handler` over `records`.
    async fn run(&self, handler: &Hd, records: Vec<IndexRecord>) -> conveyor::Result<TestRun>;

    /// [`PoolBuilder::register_with`].
    fn with(builder: PoolBuilder<Self>, handler: Hd, options: HandlerOptions) -> PoolBuilder<Self>;
}

impl<S: Store, Hd: EventHandler<S, Event = IndexRecord>> Handles<Hd> for S {
    async fn run(&self, handler: &Hd, records: Vec<IndexRecord>) -> conveyor::Result<TestRun> {
        run_batch(self, handler, records).await
    }

    fn with(builder: PoolBuilder<S>, handler: Hd, options: HandlerOptions) -> PoolBuilder<S> {
        builder.register_with(handler, options)
    }
}

/// One fresh, migrated database of a backend and the statements the cases read it with.
#[allow(async_fn_in_trait)] // awaited in place by the test binaries, never spawned
pub(crate) trait Harness {
    /// The backend's store.
    type Store: PipelineStore
        + Handles<RawStoreHandler>
        + Handles<RollupHandler>
        + Handles<KeywordIndexHandler>
        + Handles<VectorIndexHandler>;

    /// What [`stall_searches`](Self::stall_searches) holds until
    /// [`release_searches`](Self::release_searches).
    type Stall;

    /// Records (of 20 events) the concurrency case runs through two pools: fewer where
    /// writers take turns.
    const CONCURRENT_RECORDS: usize;

    /// A deadline the searches of a [stalled](Self::stall_searches) store cannot meet.
    const STALLED_SEARCH_TIMEOUT: Duration;

    /// The store on the database: migrated, with the day partitions around
    /// [`today`](super::fixtures::today) where the backend has them.
    fn store(&self) -> &Self::Store;

    /// Another store on the same database with a pool of its own, as a second server
    /// process would open.
    async fn another_store(&self) -> Self::Store;

    /// A single `i64` a statement returns (`count(*)`, `cast(… as bigint)`).
    async fn scalar(&self, sql: &str) -> i64;

    /// The one text column a statement returns, row by row.
    async fn strings(&self, sql: &str) -> Vec<String>;

    /// Run `sql` (one or more statements) as a writer of the database.
    async fn exec(&self, sql: &str);

    /// What the rollup must equal: the GROUP BY over `events_raw` (UTC days), sorted.
    async fn raw_group_by(&self) -> Vec<CountRow>;

    /// The rollup's daily counts, sorted like [`raw_group_by`](Self::raw_group_by).
    async fn rollup_counts(&self) -> Vec<CountRow>;

    /// The `ts` of every row of `table`, in order.
    async fn timestamps(&self, table: &str) -> Vec<DateTime<Utc>>;

    /// The distinct lengths of the stored embeddings, in dimensions.
    async fn embedding_dimensions(&self) -> Vec<i64>;

    /// Documents the keyword index itself holds (the FTS index where it is a table apart).
    async fn keyword_index_rows(&self) -> i64;

    /// Make the database refuse rows of `analytics_daily_actors` for `actor`; returns a part
    /// of the error message the refusal gives.
    async fn refuse_actor(&self, actor: &str) -> &'static str;

    /// Undo [`refuse_actor`](Self::refuse_actor).
    async fn allow_actors(&self);

    /// A store on one connection whose keyword and similarity searches cannot finish within
    /// [`STALLED_SEARCH_TIMEOUT`](Self::STALLED_SEARCH_TIMEOUT) until released.
    async fn stall_searches(&self) -> (Self::Store, Self::Stall);

    /// End the stall and check the store's connection kept nothing of the cancelled search:
    /// its settings are back and its searches answer.
    async fn release_searches(&self, store: &Self::Store, stall: Self::Stall);
}
