//! Recording, listing and removing subscriptions (see `store::subscription`). Mirrors
//! `sqlite::subscriptions`; two copies, as the pools and bound types differ.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::error::Result;
use crate::event::Queue;
use crate::store::subscription::{columns, Subscription, SubscriptionRow};

const SUBSCRIBE: &str = include_str!("sql/subscribe.sql");
const UNSUBSCRIBE: &str = include_str!("sql/unsubscribe.sql");
const SUBSCRIPTIONS: &str = include_str!("sql/subscriptions.sql");

pub(super) async fn subscribe(
    pool: &PgPool,
    namespace: &str,
    queue: &Queue,
    handler: &str,
) -> Result<Option<String>> {
    let (routing_key, sub) = columns(queue);
    Ok(sqlx::query_scalar(SUBSCRIBE)
        .bind(namespace)
        .bind(&queue.event_type)
        .bind(routing_key)
        .bind(sub)
        .bind(handler)
        .fetch_optional(pool)
        .await?)
}

pub(super) async fn unsubscribe(
    pool: &PgPool,
    namespace: &str,
    queue: &Queue,
) -> Result<Option<u64>> {
    let (routing_key, sub) = columns(queue);
    let (removed, purged): (bool, i64) = sqlx::query_as(UNSUBSCRIBE)
        .bind(namespace)
        .bind(&queue.event_type)
        .bind(routing_key)
        .bind(sub)
        .bind(queue.routing_key_str())
        .fetch_one(pool)
        .await?;
    Ok(removed.then_some(purged as u64))
}

pub(super) async fn subscriptions(pool: &PgPool, namespace: &str) -> Result<Vec<Subscription>> {
    let rows: Vec<SubscriptionRow<DateTime<Utc>>> = sqlx::query_as(SUBSCRIPTIONS)
        .bind(namespace)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| r.into_subscription(|t| t))
        .collect())
}
