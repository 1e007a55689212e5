//! [`Context`]: what a handler can do besides reading its batch.

use std::collections::HashMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use uuid::Uuid;

use crate::error::Result;
use crate::event::{Event, EventId, Message, NewEvent};
use crate::handler::Item;
use crate::store::Store;
use crate::DefaultStore;

/// A handler's view of its batch's transaction and outcomes.
///
/// - [`db`](Self::db) / [`tx`](Self::tx): the transaction that also completes the batch, so
///   the handler's writes commit together with the outcomes and emitted events, or not at all.
///   It is opened on first use: a handler that never writes never holds a connection.
/// - [`emit`](Self::emit): events inserted when the batch commits.
/// - [`retry`](Self::retry) / [`fail`](Self::fail) / [`snooze`](Self::snooze) /
///   [`cancel`](Self::cancel): per-item outcomes; unmarked items are delivered when `handle`
///   returns `Ok`.
pub struct Context<'a, S: Store = DefaultStore> {
    store: &'a S,
    tx: Option<S::Tx>,
    pub(crate) emitted: Vec<(Option<EventId>, NewEvent)>,
    pub(crate) marks: HashMap<EventId, Mark>,
    /// what each item of the batch hands down to the events it causes
    items: HashMap<EventId, Cause>,
}

/// What an item hands down to the events it causes: its correlation id and trace context.
#[derive(Debug, Clone)]
pub(crate) struct Cause {
    correlation_id: Option<Uuid>,
    traceparent: Option<String>,
}

impl Cause {
    pub(crate) fn of<E>(item: &Item<E>) -> Self {
        Cause {
            correlation_id: item.correlation_id,
            traceparent: item.traceparent.clone(),
        }
    }
}

/// A per-item outcome other than delivered.
#[derive(Debug, Clone)]
pub(crate) enum Mark {
    Retry {
        after: Option<Duration>,
        error: String,
    },
    Fail {
        error: String,
    },
    Snooze {
        after: Duration,
    },
    Cancel {
        reason: String,
    },
}

impl<S: Store> fmt::Debug for Context<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("namespace", &self.store.namespace())
            .field("in_transaction", &self.tx.is_some())
            .field("emitted", &self.emitted.len())
            .field("marks", &self.marks)
            .finish()
    }
}

impl<'a, S: Store> Context<'a, S> {
    pub(crate) fn new(store: &'a S, items: HashMap<EventId, Cause>) -> Self {
        Self {
            store,
            tx: None,
            emitted: Vec::new(),
            marks: HashMap::new(),
            items,
        }
    }

    /// The store the batch was claimed from.
    pub(crate) fn store(&self) -> &'a S {
        self.store
    }

    /// The namespace the batch was claimed in.
    pub fn namespace(&self) -> &str {
        self.store.namespace()
    }

    /// The batch's transaction, opened on first use.
    ///
    /// # Errors
    /// [`Error::Database`](crate::Error::Database) if no transaction can be opened.
    pub async fn tx(&mut self) -> Result<&mut S::Tx> {
        let tx = match self.tx.take() {
            Some(tx) => tx,
            None => self.store.begin().await?,
        };
        Ok(self.tx.insert(tx))
    }

    /// The batch's transaction as a connection to run queries on (`&mut PgConnection`
    /// on Postgres), opened on first use.
    ///
    /// # Errors
    /// [`Error::Database`](crate::Error::Database) if no transaction can be opened.
    pub async fn db(&mut self) -> Result<&mut <S::Tx as Deref>::Target>
    where
        S::Tx: DerefMut,
    {
        Ok(&mut **self.tx().await?)
    }

    /// Emit an event, inserted when the batch commits.
    ///
    /// In a batch of one, the event is caused by that item (and inherits its correlation id);
    /// in larger batches use [`emit_for`](Self::emit_for) to say which item caused it.
    ///
    /// Unless the message states its [`traceparent`](Message::traceparent), the event carries
    /// the current span's trace context (the batch's span, a child of the item's publisher,
    /// with the `opentelemetry` feature), so a chain of events is one trace. When the current
    /// span is not in the causing item's trace (a batch of several traces, or a build without
    /// the feature), the item's own `traceparent` is handed down instead.
    ///
    /// # Errors
    /// [`Error::Validation`](crate::Error::Validation) if the payload is invalid.
    pub fn emit<E: Event>(&mut self, msg: impl Into<Message<E>>) -> Result<()> {
        let cause = match self.items.len() {
            1 => self.items.keys().next().copied(),
            _ => None,
        };
        self.push(cause, msg.into())
    }

    /// Emit an event caused by item `cause`: it inherits the item's correlation id (and its
    /// trace context, as [`emit`](Self::emit) says) and is inserted only if that item is
    /// delivered (not retried or failed).
    ///
    /// # Errors
    /// [`Error::Validation`](crate::Error::Validation) if the payload is invalid.
    pub fn emit_for<E: Event>(&mut self, cause: EventId, msg: impl Into<Message<E>>) -> Result<()> {
        self.push(Some(cause), msg.into())
    }

    fn push<E: Event>(&mut self, cause: Option<EventId>, mut msg: Message<E>) -> Result<()> {
        if let Some(cause) = cause {
            // the item's trace context, unless the current span already continues it
            let inherited = self
                .items
                .get(&cause)
                .and_then(|i| i.traceparent.as_deref());
            if let Some(traceparent) = inherited.filter(|_| msg.options.traceparent.is_none()) {
                if !crate::trace::current_in_trace(traceparent) {
                    msg.options.traceparent = Some(traceparent.to_owned());
                }
            }
        }
        let event = msg.into_new_event()?;
        self.push_event(cause, event);
        Ok(())
    }

    /// Emit a validated event caused by `cause` (which it inherits its correlation id from).
    pub(crate) fn push_event(&mut self, cause: Option<EventId>, mut event: NewEvent) {
        if let Some(cause) = cause {
            event.causation_id = Some(cause);
            let item = self.items.get(&cause);
            if event.correlation_id.is_none() {
                event.correlation_id = item.and_then(|i| i.correlation_id);
            }
            if event.traceparent.is_none() {
                event.traceparent = item.and_then(|i| i.traceparent.clone());
            }
        }
        self.emitted.push((cause, event));
    }

    /// Retry item `id` after the handler's backoff (or dead-letter it once retries run out).
    pub fn retry(&mut self, id: EventId, error: impl fmt::Display) {
        self.mark(
            id,
            Mark::Retry {
                after: None,
                error: error.to_string(),
            },
        );
    }

    /// Retry item `id` after `after`.
    pub fn retry_after(&mut self, id: EventId, after: Duration, error: impl fmt::Display) {
        self.mark(
            id,
            Mark::Retry {
                after: Some(after),
                error: error.to_string(),
            },
        );
    }

    /// Put item `id` back, due again after `after`, without using up an attempt (River's
    /// `JobSnooze`, Oban's `{:snooze, seconds}`): for "not yet" rather than "failed". Its
    /// `attempt` is the same the next time; `last_error` is untouched. A handler that snoozes
    /// forever never dead-letters: bound it yourself (for example on the item's age).
    pub fn snooze(&mut self, id: EventId, after: Duration) {
        self.mark(id, Mark::Snooze { after });
    }

    /// Cancel item `id`: it becomes `cancelled` with `reason` when the batch commits, never
    /// retried and not a dead letter (River's `JobCancel`, Oban's `{:cancel, reason}`): for
    /// work that must not happen any more rather than work that failed. Its emitted events
    /// are dropped, as for any item not delivered. Like every mark, it applies only if
    /// `handle` returns `Ok`.
    pub fn cancel(&mut self, id: EventId, reason: impl fmt::Display) {
        self.mark(
            id,
            Mark::Cancel {
                reason: reason.to_string(),
            },
        );
    }

    /// Dead-letter item `id` now, with `error`.
    pub fn fail(&mut self, id: EventId, error: impl fmt::Display) {
        self.mark(
            id,
            Mark::Fail {
                error: error.to_string(),
            },
        );
    }

    pub(crate) fn mark(&mut self, id: EventId, mark: Mark) {
        if self.items.contains_key(&id) {
            self.marks.insert(id, mark);
        } else {
            tracing::warn!(event.id = %id, "outcome set for an event not in the batch; ignored");
        }
    }

    pub(crate) fn take_tx(&mut self) -> Option<S::Tx> {
        self.tx.take()
    }
}
