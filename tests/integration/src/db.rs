//! [`TestDb`]: the test's own connection to the database a server runs on, Postgres or
//! SQLite, with the checks every pipeline test makes (unsettled outbox rows, raw counts, the
//! rollups against a GROUP BY over `events_raw`) written once for both.
//!
//! The SQL is shared where the dialects agree (`cast(day as text)` is `YYYY-MM-DD` on both);
//! only the UTC day of a raw event's `ts` differs: a `timestamptz` on Postgres, integer
//! microseconds since the epoch on SQLite.

use std::path::Path;
use std::time::Duration;

use sqlx::postgres::PgRow;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions, SqliteRow};
use sqlx::{FromRow, PgPool, SqlitePool};

/// The test's pool on the server's database.
#[derive(Debug, Clone)]
pub enum TestDb {
    /// A Postgres test database.
    Postgres(PgPool),
    /// A SQLite database file.
    Sqlite(SqlitePool),
}

/// A row both drivers can decode (tuples of integers, text and uuids).
pub trait AnyRow:
    for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin
{
}

impl<T> AnyRow for T where
    T: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin
{
}

impl TestDb {
    /// A pool of 4 on the SQLite file at `path` (which the server created).
    ///
    /// # Panics
    /// When the file cannot be opened.
    pub async fn open_sqlite(path: &Path) -> TestDb {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
        TestDb::Sqlite(pool)
    }

    /// A pool of 4 on the database `url` names: `postgres://…` or `sqlite://PATH`.
    ///
    /// # Panics
    /// When the database cannot be reached.
    pub async fn connect(url: &str) -> TestDb {
        match url.strip_prefix("sqlite://") {
            Some(path) => TestDb::open_sqlite(Path::new(path)).await,
            None => TestDb::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(4)
                    .connect(url)
                    .await
                    .unwrap_or_else(|e| panic!("connecting to {url}: {e}")),
            ),
        }
    }

    /// The Postgres pool, for the tests that check Postgres specifics.
    ///
    /// # Panics
    /// On SQLite.
    pub fn pg(&self) -> &PgPool {
        match self {
            TestDb::Postgres(pool) => pool,
            TestDb::Sqlite(_) => panic!("this check needs Postgres"),
        }
    }

    /// Every row of `sql`, which must be valid on both dialects.
    ///
    /// # Panics
    /// When the query fails; the message holds the SQL.
    pub async fn rows<T: AnyRow>(&self, sql: &str) -> Vec<T> {
        let rows = match self {
            TestDb::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await,
            TestDb::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await,
        };
        rows.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The one integer `sql` selects (a count, say).
    ///
    /// # Panics
    /// When the query fails or returns no row.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let rows: Vec<(i64,)> = self.rows(sql).await;
        rows.first().unwrap_or_else(|| panic!("{sql}: no row")).0
    }

    /// Outbox rows not yet settled (pending or claimed), in every namespace.
    pub async fn unsettled(&self) -> i64 {
        self.scalar("select count(*) from conveyor_events where status in ('pending', 'claimed')")
            .await
    }

    /// The number of rows in `events_raw` and how many distinct (namespace, event id) they hold.
    pub async fn raw_counts(&self) -> (i64, i64) {
        let rows: Vec<(i64, i64)> = self
            .rows(
                "select count(*),
                        (select count(*) from (select distinct namespace, event_id from events_raw) d)
                 from events_raw",
            )
            .await;
        rows[0]
    }

    /// The event id of every row `events_raw` holds for `namespace` (a doubled event twice).
    pub async fn raw_event_ids(&self, namespace: &str) -> Vec<uuid::Uuid> {
        assert!(!namespace.contains('\''), "a plain namespace");
        let rows: Vec<(uuid::Uuid,)> = self
            .rows(&format!(
                "select event_id from events_raw where namespace = '{namespace}'"
            ))
            .await;
        rows.into_iter().map(|(id,)| id).collect()
    }

    /// Assert the invariant: the rollups equal a GROUP BY over `events_raw`, row for row, and
    /// the unique actors per day equal the distinct actors of `events_raw`.
    ///
    /// # Panics
    /// When they differ.
    pub async fn assert_rollups_match_raw(&self) {
        let day = self.raw_day();
        let rollup: Vec<(String, String, String, String, i64)> = self
            .rows(
                "select namespace, cast(day as text), event_type, source, count
                 from analytics_daily_event_counts order by 1, 2, 3, 4",
            )
            .await;
        let raw: Vec<(String, String, String, String, i64)> = self
            .rows(&format!(
                "select namespace, {day}, event_type, source, count(*)
                 from events_raw group by 1, 2, 3, 4 order by 1, 2, 3, 4"
            ))
            .await;
        assert_eq!(
            rollup, raw,
            "rollups differ from the GROUP BY over events_raw"
        );

        let actors: Vec<(String, String, i64)> = self
            .rows(
                "select namespace, cast(day as text), count(*) from analytics_daily_actors
                 group by 1, 2 order by 1, 2",
            )
            .await;
        let raw_actors: Vec<(String, String, i64)> = self
            .rows(&format!(
                "select namespace, {day}, count(distinct actor_id)
                 from events_raw group by 1, 2 order by 1, 2"
            ))
            .await;
        assert_eq!(actors, raw_actors, "unique actors differ from events_raw");
    }

    /// The UTC day of `events_raw.ts`, as `YYYY-MM-DD` text.
    fn raw_day(&self) -> &'static str {
        match self {
            TestDb::Postgres(_) => "cast((ts at time zone 'UTC')::date as text)",
            TestDb::Sqlite(_) => "date(ts / 1000000, 'unixepoch')",
        }
    }

    /// Close the pool: the database becomes unreachable through it.
    pub async fn close(&self) {
        match self {
            TestDb::Postgres(pool) => pool.close().await,
            TestDb::Sqlite(pool) => pool.close().await,
        }
    }
}
