//! SQL a handler runs in its batch's transaction on any SQL backend: [`sql`] builds a
//! statement with bound values, [`Context::execute`] / [`Context::fetch_all`] /
//! [`Context::fetch_optional`] / [`Context::fetch_one`] run it. A handler generic over
//! [`SqlStore`] needs one line of bounds and runs on Postgres and SQLite alike:
//!
//! ```
//! use conveyor::{sql, Batch, Context, EventHandler, HandlerError, SqlStore};
//!
//! # #[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
//! # struct OrderPlaced { #[garde(skip)] order_id: String, #[garde(skip)] cents: i64 }
//! # impl conveyor::Event for OrderPlaced { const NAME: &'static str = "order_placed"; }
//! struct BookOrders;
//!
//! #[async_trait::async_trait]
//! impl<S: SqlStore> EventHandler<S> for BookOrders {
//!     type Event = OrderPlaced;
//!
//!     async fn handle(&self, batch: Batch<OrderPlaced>, ctx: &mut Context<'_, S>) -> Result<(), HandlerError> {
//!         for item in &batch {
//!             ctx.execute(
//!                 sql("insert into orders_booked (order_id, cents) values ($1, $2) on conflict do nothing")
//!                     .bind(item.payload.order_id.as_str())
//!                     .bind(item.payload.cents),
//!             )
//!             .await?;
//!         }
//!         Ok(())
//!     }
//! }
//! ```
//!
//! Placeholders are `$1`, `$2`, … on both backends. Values are any type both backends
//! encode ([`SqlValue`]: integers, floats, `bool`, strings, byte vectors, `Uuid`, `chrono`
//! times, `sqlx::types::Json`, and `Option`s of them); rows are any type both decode
//! ([`SqlRow`]: `#[derive(sqlx::FromRow)]` structs, tuples). Where SQL truly differs per
//! backend, write the handler for the concrete store and use [`Context::db`].

use futures::future::BoxFuture;
use futures::{FutureExt as _, TryStreamExt as _};
use sqlx::error::BoxDynError;
#[cfg(feature = "postgres")]
use sqlx::postgres::{PgArguments, PgRow, Postgres};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{Sqlite, SqliteArguments, SqliteRow};
#[cfg(any(feature = "postgres", feature = "sqlite"))]
use sqlx::{Encode, FromRow, Type};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::store::Store;

/// A statement and its bound values, to run with [`Context::execute`] and the `fetch_*`
/// methods.
#[must_use = "a statement does nothing until a context runs it"]
pub struct Sql<'q> {
    sql: &'q str,
    binds: Vec<Box<dyn Bind<'q> + 'q>>,
}

/// Start a statement: `sql("update t set n = $1 where id = $2").bind(n).bind(id)`.
pub fn sql(sql: &str) -> Sql<'_> {
    Sql {
        sql,
        binds: Vec::new(),
    }
}

impl<'q> Sql<'q> {
    /// Bind the next placeholder (`$1` first).
    pub fn bind<T: SqlValue<'q>>(mut self, value: T) -> Self {
        self.binds.push(Box::new(value));
        self
    }
}

impl std::fmt::Debug for Sql<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sql")
            .field("sql", &self.sql)
            .field("binds", &self.binds.len())
            .finish()
    }
}

/// A value both SQL backends can bind. Implemented for every type that sqlx encodes on
/// Postgres and on SQLite (on the backends this build has); nothing to implement yourself.
pub trait SqlValue<'q>: backend::PgValue<'q> + backend::SqliteValue<'q> + Send + 'q {}

impl<'q, T> SqlValue<'q> for T where T: backend::PgValue<'q> + backend::SqliteValue<'q> + Send + 'q {}

/// A row type both SQL backends can decode: `#[derive(sqlx::FromRow)]` structs and tuples
/// of types both decode (on the backends this build has). Nothing to implement yourself.
pub trait SqlRow: backend::PgRowType + backend::SqliteRowType + Send + Unpin {}

impl<T> SqlRow for T where T: backend::PgRowType + backend::SqliteRowType + Send + Unpin {}

/// What one backend needs of a value or a row: its sqlx traits when the backend is built,
/// nothing otherwise (so `SqlValue`/`SqlRow` ask only for the backends compiled in).
#[doc(hidden)]
// public so that the public SqlValue/SqlRow can name these as supertraits, unreachable so
// that nobody else implements or names them (the sealed-trait pattern)
#[allow(unreachable_pub)]
pub mod backend {
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    use super::{Encode, FromRow, Type};
    #[cfg(feature = "postgres")]
    use super::{PgRow, Postgres};
    #[cfg(feature = "sqlite")]
    use super::{Sqlite, SqliteRow};

    /// Bindable on Postgres (anything when the `postgres` feature is off).
    #[cfg(feature = "postgres")]
    pub trait PgValue<'q>: Encode<'q, Postgres> + Type<Postgres> {}
    #[cfg(feature = "postgres")]
    impl<'q, T: Encode<'q, Postgres> + Type<Postgres>> PgValue<'q> for T {}
    /// Bindable on Postgres (anything when the `postgres` feature is off).
    #[cfg(not(feature = "postgres"))]
    pub trait PgValue<'q> {}
    #[cfg(not(feature = "postgres"))]
    impl<T> PgValue<'_> for T {}

    /// Bindable on SQLite (anything when the `sqlite` feature is off).
    #[cfg(feature = "sqlite")]
    pub trait SqliteValue<'q>: Encode<'q, Sqlite> + Type<Sqlite> {}
    #[cfg(feature = "sqlite")]
    impl<'q, T: Encode<'q, Sqlite> + Type<Sqlite>> SqliteValue<'q> for T {}
    /// Bindable on SQLite (anything when the `sqlite` feature is off).
    #[cfg(not(feature = "sqlite"))]
    pub trait SqliteValue<'q> {}
    #[cfg(not(feature = "sqlite"))]
    impl<T> SqliteValue<'_> for T {}

    /// Decodable from a Postgres row (anything when the `postgres` feature is off).
    #[cfg(feature = "postgres")]
    pub trait PgRowType: for<'r> FromRow<'r, PgRow> {}
    #[cfg(feature = "postgres")]
    impl<T: for<'r> FromRow<'r, PgRow>> PgRowType for T {}
    /// Decodable from a Postgres row (anything when the `postgres` feature is off).
    #[cfg(not(feature = "postgres"))]
    pub trait PgRowType {}
    #[cfg(not(feature = "postgres"))]
    impl<T> PgRowType for T {}

    /// Decodable from an SQLite row (anything when the `sqlite` feature is off).
    #[cfg(feature = "sqlite")]
    pub trait SqliteRowType: for<'r> FromRow<'r, SqliteRow> {}
    #[cfg(feature = "sqlite")]
    impl<T: for<'r> FromRow<'r, SqliteRow>> SqliteRowType for T {}
    /// Decodable from an SQLite row (anything when the `sqlite` feature is off).
    #[cfg(not(feature = "sqlite"))]
    pub trait SqliteRowType {}
    #[cfg(not(feature = "sqlite"))]
    impl<T> SqliteRowType for T {}
}

/// A [`Store`] whose handlers run [`Sql`] in the batch's transaction: [`PgStore`](crate::PgStore)
/// and [`SqliteStore`](crate::SqliteStore). Write `impl<S: SqlStore> EventHandler<S> for …` to
/// run one handler on either. Sealed: implemented by Conveyor's SQL stores only.
pub trait SqlStore: Store + sealed::Sealed {
    /// Run `sql` inside `tx` (from [`Store::begin`], finished with [`Store::commit`]); returns
    /// the rows it affected. For the application's own writes beside
    /// [`Store::publish_in`].
    fn execute_in<'a, 'q: 'a>(tx: &'a mut Self::Tx, sql: Sql<'q>) -> BoxFuture<'a, Result<u64>>;

    /// Every row of `sql` read inside `tx`.
    fn fetch_all_in<'a, 'q: 'a, R: SqlRow>(
        tx: &'a mut Self::Tx,
        sql: Sql<'q>,
    ) -> BoxFuture<'a, Result<Vec<R>>> {
        Self::fetch_in(tx, sql, None)
    }

    /// Every row of `sql`, read on a pooled connection outside any transaction: it sees
    /// committed data only and, on SQLite, never waits for the write lock (WAL readers run
    /// beside the writer).
    fn fetch_all<'a, 'q: 'a, R: SqlRow>(&'a self, sql: Sql<'q>) -> BoxFuture<'a, Result<Vec<R>>> {
        self.read(sql, None)
    }

    /// The first row of `sql`, if any, read as [`fetch_all`](Self::fetch_all) reads.
    fn fetch_optional<'a, 'q: 'a, R: SqlRow>(
        &'a self,
        sql: Sql<'q>,
    ) -> BoxFuture<'a, Result<Option<R>>> {
        async move { Ok(self.read(sql, Some(1)).await?.pop()) }.boxed()
    }

    /// The rows of `sql` inside `tx`, at most `limit`.
    #[doc(hidden)]
    fn fetch_in<'a, 'q: 'a, R: SqlRow>(
        tx: &'a mut Self::Tx,
        sql: Sql<'q>,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Vec<R>>>;

    /// The rows of `sql` on a pooled connection, at most `limit`.
    #[doc(hidden)]
    fn read<'a, 'q: 'a, R: SqlRow>(
        &'a self,
        sql: Sql<'q>,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Vec<R>>>;
}

mod sealed {
    pub trait Sealed {}
    #[cfg(feature = "postgres")]
    impl Sealed for crate::PgStore {}
    #[cfg(feature = "sqlite")]
    impl Sealed for crate::SqliteStore {}
}

impl<S: SqlStore> Context<'_, S> {
    /// Run `sql` in the batch's transaction (opened on first use); returns the rows it
    /// affected.
    ///
    /// # Errors
    /// [`Error::Database`] when the statement fails or a value cannot be bound.
    pub async fn execute(&mut self, sql: Sql<'_>) -> Result<u64> {
        S::execute_in(self.tx().await?, sql).await
    }

    /// Run `sql` in the batch's transaction and decode every row it returns.
    ///
    /// # Errors
    /// As [`execute`](Self::execute), and when a row does not decode as `R`.
    pub async fn fetch_all<R: SqlRow>(&mut self, sql: Sql<'_>) -> Result<Vec<R>> {
        S::fetch_in(self.tx().await?, sql, None).await
    }

    /// Run `sql` in the batch's transaction and decode its first row, if any.
    ///
    /// # Errors
    /// As [`fetch_all`](Self::fetch_all).
    pub async fn fetch_optional<R: SqlRow>(&mut self, sql: Sql<'_>) -> Result<Option<R>> {
        Ok(S::fetch_in(self.tx().await?, sql, Some(1)).await?.pop())
    }

    /// Every row of `sql`, read on a pooled connection outside the batch's transaction (see
    /// [`SqlStore::fetch_all`]): committed data only, and on SQLite no wait for the write
    /// lock. For a handler that reads before a slow call and writes after it: its batch's
    /// transaction (and on SQLite every other writer) is not held meanwhile.
    ///
    /// # Errors
    /// As [`fetch_all`](Self::fetch_all).
    pub async fn read_all<R: SqlRow>(&self, sql: Sql<'_>) -> Result<Vec<R>> {
        self.store().fetch_all(sql).await
    }

    /// The first row of `sql`, if any, read as [`read_all`](Self::read_all) reads.
    ///
    /// # Errors
    /// As [`fetch_all`](Self::fetch_all).
    pub async fn read_optional<R: SqlRow>(&self, sql: Sql<'_>) -> Result<Option<R>> {
        self.store().fetch_optional(sql).await
    }

    /// Run `sql` in the batch's transaction and decode its first row.
    ///
    /// # Errors
    /// As [`fetch_all`](Self::fetch_all), and [`Error::Database`] with
    /// `sqlx::Error::RowNotFound` when it returns no row.
    pub async fn fetch_one<R: SqlRow>(&mut self, sql: Sql<'_>) -> Result<R> {
        self.fetch_optional(sql)
            .await?
            .ok_or(Error::Database(sqlx::Error::RowNotFound))
    }
}

/// A bound value, kept until the statement runs on a backend.
trait Bind<'q>: Send {
    #[cfg(feature = "postgres")]
    fn add_pg(self: Box<Self>, args: &mut PgArguments) -> std::result::Result<(), BoxDynError>;
    #[cfg(feature = "sqlite")]
    fn add_sqlite(
        self: Box<Self>,
        args: &mut SqliteArguments<'q>,
    ) -> std::result::Result<(), BoxDynError>;
}

impl<'q, T: SqlValue<'q>> Bind<'q> for T {
    #[cfg(feature = "postgres")]
    fn add_pg(self: Box<Self>, args: &mut PgArguments) -> std::result::Result<(), BoxDynError> {
        sqlx::Arguments::add(args, *self)
    }

    #[cfg(feature = "sqlite")]
    fn add_sqlite(
        self: Box<Self>,
        args: &mut SqliteArguments<'q>,
    ) -> std::result::Result<(), BoxDynError> {
        sqlx::Arguments::add(args, *self)
    }
}

/// `SqlStore` for one of Conveyor's stores, and `$execute` (a statement on a plain
/// connection, for the crate's own use): the same code on each backend, with its sqlx types
/// and the `Bind` method filling its arguments.
macro_rules! sql_store {
    ($store:ty, $db:ty, $conn:ty, $args:ty, $add:ident, $execute:ident) => {
        /// Run `sql` on `conn`; the rows it affected.
        pub(crate) async fn $execute(conn: &mut $conn, sql: Sql<'_>) -> Result<u64> {
            let Sql { sql, binds } = sql;
            let args = bound!(binds, $args, $add);
            let done = sqlx::query_with::<$db, _>(sql, args).execute(conn).await?;
            Ok(done.rows_affected())
        }

        impl SqlStore for $store {
            fn execute_in<'a, 'q: 'a>(
                tx: &'a mut <Self as Store>::Tx,
                sql: Sql<'q>,
            ) -> BoxFuture<'a, Result<u64>> {
                $execute(&mut **tx, sql).boxed()
            }

            fn fetch_in<'a, 'q: 'a, R: SqlRow>(
                tx: &'a mut <Self as Store>::Tx,
                sql: Sql<'q>,
                limit: Option<usize>,
            ) -> BoxFuture<'a, Result<Vec<R>>> {
                async move {
                    let Sql { sql, binds } = sql;
                    let args = bound!(binds, $args, $add);
                    let query = sqlx::query_as_with::<$db, R, _>(sql, args);
                    first_rows(query.fetch(&mut **tx), limit).await
                }
                .boxed()
            }

            fn read<'a, 'q: 'a, R: SqlRow>(
                &'a self,
                sql: Sql<'q>,
                limit: Option<usize>,
            ) -> BoxFuture<'a, Result<Vec<R>>> {
                async move {
                    let Sql { sql, binds } = sql;
                    let args = bound!(binds, $args, $add);
                    let query = sqlx::query_as_with::<$db, R, _>(sql, args);
                    first_rows(query.fetch(self.pool()), limit).await
                }
                .boxed()
            }
        }
    };
}

/// The first `limit` rows of `rows` (every row for `None`); the rest are not read.
async fn first_rows<R>(
    rows: impl futures::Stream<Item = std::result::Result<R, sqlx::Error>>,
    limit: Option<usize>,
) -> Result<Vec<R>> {
    let mut rows = std::pin::pin!(rows);
    let mut out = Vec::new();
    while let Some(row) = rows.try_next().await? {
        out.push(row);
        if Some(out.len()) == limit {
            break;
        }
    }
    Ok(out)
}

/// The arguments of `binds` for one backend; an encoding failure returns the error.
macro_rules! bound {
    ($binds:expr, $args:ty, $add:ident) => {{
        let mut args = <$args>::default();
        for bind in $binds {
            bind.$add(&mut args).map_err(sqlx::Error::Encode)?;
        }
        args
    }};
}

#[cfg(feature = "postgres")]
sql_store!(
    crate::PgStore,
    Postgres,
    sqlx::PgConnection,
    PgArguments,
    add_pg,
    execute_pg
);
#[cfg(feature = "sqlite")]
sql_store!(
    crate::SqliteStore,
    Sqlite,
    sqlx::SqliteConnection,
    SqliteArguments<'_>,
    add_sqlite,
    execute_sqlite
);
