//! Ordering keys and global limits: a queue's recorded settings ([`QueueSettings`]), what a
//! dead head does to its key ([`DeadHead`]), and the keys waiting for an operator
//! ([`ParkedKey`]). The ordering migration (`20261204000001_ordering.sql`) says how a key
//! advances and how the limit is enforced.

use chrono::{DateTime, Utc};

use crate::event::{EventId, Queue};

/// What happens to an ordering key when its head event dies (runs out of retries, fails,
/// or is poison), so that the events behind it would run out of order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadHead {
    /// The key waits: nothing behind the dead event runs until an operator replays it
    /// (`conveyor dead-letters replay`, [`Store::replay`](crate::Store::replay)), which puts
    /// it back at the head, or skips it (`conveyor keys skip`,
    /// [`Store::skip_key`](crate::Store::skip_key)), which moves on without it. Parked keys are
    /// listed by [`Store::parked_keys`](crate::Store::parked_keys) and `conveyor keys parked`.
    /// River's sequences halt the same way.
    #[default]
    Park,
    /// The dead event goes to the dead letters and the key moves on at once.
    Skip,
}

/// A queue's settings for ordering keys and its global limit, recorded by the handler's
/// pool when it starts ([`Store::configure`](crate::Store::configure)); a queue never
/// configured has the defaults. Every process of the queue follows what was recorded last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueSettings {
    /// How many events of one ordering key may run at once (at least 1).
    pub key_concurrency: u32,
    /// What a dead head does to its key.
    pub on_dead_head: DeadHead,
    /// The most events of the queue in flight (claimed) at once across every process;
    /// `None` for no limit.
    pub max_in_flight: Option<u32>,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            key_concurrency: 1,
            on_dead_head: DeadHead::Park,
            max_in_flight: None,
        }
    }
}

impl QueueSettings {
    /// The settings: `key_concurrency` events per ordering key at once, `on_dead_head`, and
    /// at most `max_in_flight` in flight.
    pub fn new(key_concurrency: u32, on_dead_head: DeadHead, max_in_flight: Option<u32>) -> Self {
        Self {
            key_concurrency,
            on_dead_head,
            max_in_flight,
        }
    }

    /// Refuse a zero key concurrency or limit, and values past what the database stores.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.key_concurrency == 0 || self.key_concurrency > i32::MAX as u32 {
            return Err(format!(
                "key_concurrency must be within 1..={}, got {}",
                i32::MAX,
                self.key_concurrency
            ));
        }
        match self.max_in_flight {
            Some(n) if n == 0 || n > MAX_IN_FLIGHT => Err(format!(
                "max_in_flight must be within 1..={MAX_IN_FLIGHT}, got {n}"
            )),
            _ => Ok(()),
        }
    }

    /// The columns as both backends store them: key concurrency, park dead heads, limit.
    pub(crate) fn columns(&self) -> (i32, bool, Option<i32>) {
        (
            self.key_concurrency as i32,
            self.on_dead_head == DeadHead::Park,
            self.max_in_flight.map(|n| n as i32),
        )
    }
}

/// The highest global limit a queue may have: one slot row per unit on Postgres.
pub(crate) const MAX_IN_FLIGHT: u32 = 10_000;

/// An ordering key whose head died under [`DeadHead::Park`]: nothing behind it runs until
/// the dead event is replayed or skipped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParkedKey {
    /// The queue the key belongs to.
    pub queue: Queue,
    /// The ordering key.
    pub ordering_key: String,
    /// The dead head (a dead letter).
    pub event_id: EventId,
    /// When the key was parked.
    pub parked_at: DateTime<Utc>,
}

/// A row of either backend's `parked_keys.sql`; `T` is an instant as the backend returns it.
#[derive(sqlx::FromRow)]
pub(crate) struct ParkedRow<T> {
    event_type: String,
    routing_key: String,
    ordering_key: String,
    event_id: i64,
    parked_at: T,
}

impl<T> ParkedRow<T> {
    /// The parked key, with the backend's instant decoded by `instant`.
    pub(crate) fn into_parked(self, instant: impl Fn(T) -> DateTime<Utc>) -> ParkedKey {
        ParkedKey {
            queue: super::queue(self.event_type, self.routing_key),
            ordering_key: self.ordering_key,
            event_id: EventId(self.event_id),
            parked_at: instant(self.parked_at),
        }
    }
}
