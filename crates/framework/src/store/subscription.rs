//! Subscriptions: which handlers consume an event type, recorded so a publish reaches each
//! of them (see the subscriptions migration for how copies are stored).

use chrono::{DateTime, Utc};

use crate::event::Queue;

/// A subscription recorded in the database: a publish to its event type and routing key
/// stores a copy of the event for it, whether or not a process of it is running.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Subscription {
    /// The queue its copies go to (event type, routing key, subscription name).
    pub queue: Queue,
    /// The handler type that recorded it last.
    pub handler: String,
    /// When it was last recorded (its pool's last start).
    pub recorded_at: DateTime<Utc>,
}

/// The routing key and subscription name of `queue` as the subscriptions table stores them
/// (`""` for none and for the default subscription).
pub(crate) fn columns(queue: &Queue) -> (&str, &str) {
    (
        queue.routing_key.as_deref().unwrap_or(""),
        queue.subscription.as_deref().unwrap_or(""),
    )
}

/// A row of either backend's `subscriptions.sql`; `T` is an instant as the backend returns it.
#[derive(sqlx::FromRow)]
pub(crate) struct SubscriptionRow<T> {
    event_type: String,
    routing_key: String,
    subscription: String,
    handler: String,
    recorded_at: T,
}

impl<T> SubscriptionRow<T> {
    /// The subscription, with the backend's instant decoded by `instant`.
    pub(crate) fn into_subscription(self, instant: impl Fn(T) -> DateTime<Utc>) -> Subscription {
        let routing_key = (!self.routing_key.is_empty()).then_some(self.routing_key.as_str());
        Subscription {
            queue: Queue::new(self.event_type, routing_key).in_subscription(&self.subscription),
            handler: self.handler,
            recorded_at: instant(self.recorded_at),
        }
    }
}
