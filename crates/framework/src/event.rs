//! Event payloads, their ids, the queues they travel on, and what a publish reports;
//! `message`: the publish envelope.

use std::fmt;

use serde::{de::DeserializeOwned, Serialize};

use crate::error::{Error, Result};

mod message;

pub use message::{Message, NewEvent, PRIORITY_DEFAULT, PRIORITY_MAX, PRIORITY_MIN};

/// A typed event payload.
///
/// `NAME` is the stable event-type name stored with every row: renaming the Rust type
/// does not orphan queued events, changing `NAME` does.
///
/// # Example
/// ```
/// #[derive(serde::Serialize, serde::Deserialize, garde::Validate)]
/// struct OrderPlaced {
///     #[garde(length(min = 1))]
///     order_id: String,
/// }
/// impl conveyor::Event for OrderPlaced {
///     const NAME: &'static str = "order_placed";
/// }
/// ```
/// Payloads validate without external context (`garde::Validate<Context = ()>`, what
/// `#[derive(garde::Validate)]` gives by default).
pub trait Event:
    Serialize + DeserializeOwned + garde::Validate<Context = ()> + Send + Sync + 'static
{
    /// The stable event-type name.
    const NAME: &'static str;
}

/// Validates a payload, turning garde's report into [`Error::Validation`].
pub(crate) fn validate<E: Event>(payload: &E) -> Result<()> {
    payload.validate().map_err(|report| Error::Validation {
        event_type: E::NAME,
        report,
    })
}

/// The id of a stored event.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct EventId(pub i64);

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The queue a handler consumes: an event type, an optional routing key and a subscription.
///
/// Exactly one registered handler may claim a queue. Each subscription of an event type
/// (and routing key) is a queue of its own: a publish stores one copy of the event for every
/// subscription recorded for it (see [`EventHandler::SUBSCRIPTION`](crate::EventHandler::SUBSCRIPTION)).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct Queue {
    /// The event type (`Event::NAME`).
    pub event_type: String,
    /// The routing key; `None` for events published without one.
    pub routing_key: Option<String>,
    /// The subscription; `None` for the default one (handlers that name none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
}

/// Separates the routing key from the subscription in the stored queue key.
const SUBSCRIPTION_SEPARATOR: char = '\u{1f}';

impl Queue {
    /// The queue for `event_type` and `routing_key`, in the default subscription.
    pub fn new(event_type: impl Into<String>, routing_key: Option<&str>) -> Self {
        Self {
            event_type: event_type.into(),
            routing_key: routing_key.map(str::to_owned),
            subscription: None,
        }
    }

    /// The same event type and routing key in the subscription `name` (`""` is the default
    /// subscription).
    pub fn in_subscription(mut self, name: &str) -> Self {
        self.subscription = (!name.is_empty()).then(|| name.to_owned());
        self
    }

    /// The queue key as stored in the outbox's `routing_key` column: the routing key (`""`
    /// when there is none), then U+001F and the subscription's name for a named
    /// subscription. Every statement that selects a queue compares this one column, so each
    /// subscription is a queue of its own on the same indexes.
    pub(crate) fn routing_key_str(&self) -> std::borrow::Cow<'_, str> {
        queue_key(
            self.routing_key.as_deref().unwrap_or(""),
            self.subscription.as_deref().unwrap_or(""),
        )
    }

    /// The queue of a stored event type and queue key (the inverse of `routing_key_str`).
    pub(crate) fn from_stored(event_type: String, stored: String) -> Self {
        let (key, sub) = match stored.split_once(SUBSCRIPTION_SEPARATOR) {
            Some((key, sub)) => (key.to_owned(), Some(sub.to_owned())),
            None => (stored, None),
        };
        Queue {
            event_type,
            routing_key: (!key.is_empty()).then_some(key),
            subscription: sub.filter(|s| !s.is_empty()),
        }
    }
}

/// The stored queue key of `routing_key` (`""` for none) in `subscription` (`""` for the
/// default one): see `Queue::routing_key_str`. Borrowed for the default subscription.
pub(crate) fn queue_key<'a>(routing_key: &'a str, subscription: &str) -> std::borrow::Cow<'a, str> {
    if subscription.is_empty() {
        routing_key.into()
    } else {
        format!("{routing_key}{SUBSCRIPTION_SEPARATOR}{subscription}").into()
    }
}

/// Refuse a routing key or subscription name that holds control characters (U+001F separates the two in the stored queue key).
pub(crate) fn check_name(what: &str, name: &str) -> std::result::Result<(), String> {
    if name.chars().any(char::is_control) {
        return Err(format!(
            "{what} must not contain control characters, got {name:?}"
        ));
    }
    Ok(())
}

impl fmt::Display for Queue {
    /// `event_type`, then `:routing_key` and `@subscription` when there are any.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.event_type)?;
        if let Some(key) = &self.routing_key {
            write!(f, ":{key}")?;
        }
        if let Some(sub) = &self.subscription {
            write!(f, "@{sub}")?;
        }
        Ok(())
    }
}

/// What happened to one published message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Stored under this id.
    Inserted(EventId),
    /// Not stored: the idempotency key was already used in the namespace within the key's
    /// window (see [`Message::idempotency_key`]); carries the id of the event published with
    /// it first (which may have been delivered and pruned since).
    Duplicate(EventId),
}

impl Published {
    /// The new id, or `None` for a duplicate.
    pub fn id(self) -> Option<EventId> {
        match self {
            Published::Inserted(id) => Some(id),
            Published::Duplicate(_) => None,
        }
    }

    /// Whether the message was refused as a duplicate.
    pub fn is_duplicate(self) -> bool {
        matches!(self, Published::Duplicate(_))
    }
}
