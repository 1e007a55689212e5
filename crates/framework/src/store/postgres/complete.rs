//! Completing a batch, and the lease operations on claimed rows: renew and release.

use std::time::Duration;

use sqlx::{PgPool, Postgres, Transaction};

use super::{insert, millis, raw_ids};
use crate::error::{Error, Result};
use crate::event::EventId;
use crate::store::Completion;

const COMPLETE: &str = include_str!("sql/complete.sql");
const RENEW: &str = include_str!("sql/renew.sql");
const RELEASE: &str = include_str!("sql/release.sql");

/// Apply the outcomes and insert the emitted events in one transaction.
///
/// Without handler writes or emitted events the outcomes go in one autocommit statement;
/// rows whose lease was lost are then left alone and reported through [`Error::LeaseLost`]
/// while the rows still held get their outcome.
pub(super) async fn complete(
    pool: &PgPool,
    namespace: &str,
    key_window: Duration,
    tx: Option<Transaction<'static, Postgres>>,
    completion: &Completion,
) -> Result<()> {
    let expected = completion.outcomes.len();
    let query = outcomes_query(namespace, completion);
    if tx.is_none() && completion.emitted.is_empty() {
        let held: i64 = query.fetch_one(pool).await?;
        return check_held(completion, expected, held as u64);
    }
    let mut tx = match tx {
        Some(tx) => tx,
        None => pool.begin().await?,
    };
    let held: i64 = query.fetch_one(&mut *tx).await?;
    let held = held as u64;
    // on a lost lease `tx` drops here: the handler's writes roll back with it
    check_held(completion, expected, held)?;
    if !completion.emitted.is_empty() {
        insert::insert(&mut *tx, namespace, key_window, &completion.emitted).await?;
    }
    tx.commit().await?;
    Ok(())
}

fn check_held(completion: &Completion, expected: usize, held: u64) -> Result<()> {
    if held == expected as u64 {
        return Ok(());
    }
    Err(Error::LeaseLost {
        worker: completion.worker.clone(),
        expected,
        held: held as usize,
    })
}

fn outcomes_query<'q>(
    namespace: &'q str,
    completion: &'q Completion,
) -> sqlx::query::QueryScalar<'q, Postgres, i64, sqlx::postgres::PgArguments> {
    let n = completion.outcomes.len();
    let mut ids = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    let mut delays = Vec::with_capacity(n);
    let mut errors: Vec<Option<&str>> = Vec::with_capacity(n);
    for (id, outcome) in &completion.outcomes {
        let (status, delay, error) = outcome.columns();
        ids.push(id.0);
        statuses.push(status);
        delays.push(millis(delay));
        errors.push(error);
    }
    sqlx::query_scalar(COMPLETE)
        .bind(namespace)
        .bind(&completion.worker)
        .bind(ids)
        .bind(statuses)
        .bind(delays)
        .bind(errors)
        .bind(completion.delete_delivered)
}

pub(super) async fn renew(
    pool: &PgPool,
    namespace: &str,
    worker: &str,
    ids: &[EventId],
    lease: Duration,
) -> Result<u64> {
    let done = sqlx::query(RENEW)
        .bind(namespace)
        .bind(worker)
        .bind(raw_ids(ids))
        .bind(millis(lease))
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

pub(super) async fn release(
    pool: &PgPool,
    namespace: &str,
    worker: &str,
    ids: &[EventId],
    uncount: bool,
) -> Result<u64> {
    let released: i64 = sqlx::query_scalar(RELEASE)
        .bind(namespace)
        .bind(worker)
        .bind(raw_ids(ids))
        .bind(i32::from(uncount))
        .fetch_one(pool)
        .await?;
    Ok(released as u64)
}
