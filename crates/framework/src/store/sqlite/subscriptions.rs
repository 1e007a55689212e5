//! Recording, listing and removing subscriptions (see `store::subscription`). Mirrors
//! `postgres::subscriptions`; two copies, as the pools and bound types differ.

use sqlx::SqlitePool;

use super::{instant, SqliteTx};
use crate::error::Result;
use crate::event::Queue;
use crate::store::subscription::{columns as names, Subscription, SubscriptionRow};

const HANDLER: &str = "select handler from conveyor_subscriptions where namespace = $1 \
                       and event_type = $2 and routing_key = $3 and subscription = $4";
const REMOVE: &str = "delete from conveyor_subscriptions where namespace = $1 \
                      and event_type = $2 and routing_key = $3 and subscription = $4";
const SUBSCRIBE: &str = include_str!("sql/subscribe.sql");
const UNSUBSCRIBE: &str = include_str!("sql/unsubscribe.sql");
const SUBSCRIPTIONS: &str = include_str!("sql/subscriptions.sql");

pub(super) async fn subscribe(
    tx: &mut SqliteTx,
    namespace: &str,
    queue: &Queue,
    handler: &str,
    now: i64,
) -> Result<Option<String>> {
    let (routing_key, sub) = names(queue);
    let before: Option<String> = sqlx::query_scalar(HANDLER)
        .bind(namespace)
        .bind(&queue.event_type)
        .bind(routing_key)
        .bind(sub)
        .fetch_optional(&mut **tx)
        .await?;
    sqlx::query(SUBSCRIBE)
        .bind(namespace)
        .bind(&queue.event_type)
        .bind(routing_key)
        .bind(sub)
        .bind(handler)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(before)
}

pub(super) async fn unsubscribe(
    tx: &mut SqliteTx,
    namespace: &str,
    queue: &Queue,
) -> Result<Option<u64>> {
    let (routing_key, sub) = names(queue);
    let removed = sqlx::query(REMOVE)
        .bind(namespace)
        .bind(&queue.event_type)
        .bind(routing_key)
        .bind(sub)
        .execute(&mut **tx)
        .await?;
    if removed.rows_affected() == 0 {
        return Ok(None);
    }
    let purged = sqlx::query(UNSUBSCRIBE)
        .bind(namespace)
        .bind(&queue.event_type)
        .bind(queue.routing_key_str())
        .execute(&mut **tx)
        .await?;
    Ok(Some(purged.rows_affected()))
}

pub(super) async fn subscriptions(pool: &SqlitePool, namespace: &str) -> Result<Vec<Subscription>> {
    let rows: Vec<SubscriptionRow<i64>> = sqlx::query_as(SUBSCRIPTIONS)
        .bind(namespace)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| r.into_subscription(instant))
        .collect())
}
