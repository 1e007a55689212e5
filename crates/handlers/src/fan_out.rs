//! [`FanOutToIndexBackends`]: one [`IndexRecord`] per configured backend for every
//! [`EventsReceived`] published to the outbox (by the spool, after an outage; the API's own
//! path is [`PipelineStore::accept`](crate::PipelineStore::accept)).

use async_trait::async_trait;
use conveyor::{Batch, Context, EventHandler, HandlerError, Message, Store};

use crate::events::{Backend, EventsReceived, IndexRecord};

/// Consumes [`EventsReceived`] (no routing key) and emits, for each item, one [`IndexRecord`]
/// per configured [`Backend`], routed by the backend's key and fair-queued by tenant namespace.
///
/// The emitted records commit in the same transaction that marks the input delivered, so a
/// crash either leaves the input pending (and the fan-out runs again, emitting nothing twice)
/// or completes both. It writes nothing else, so it runs on every [`Store`] backend.
/// Each backend then consumes only its own records: a failing backend never blocks another.
#[derive(Debug, Clone)]
pub struct FanOutToIndexBackends {
    backends: Vec<Backend>,
}

impl FanOutToIndexBackends {
    /// Fan out to `backends` (duplicates are ignored).
    pub fn new(backends: impl IntoIterator<Item = Backend>) -> Self {
        let mut backends: Vec<Backend> = backends.into_iter().collect();
        backends.sort();
        backends.dedup();
        Self { backends }
    }

    /// The backends records go to.
    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }
}

#[async_trait]
impl<S: Store> EventHandler<S> for FanOutToIndexBackends {
    type Event = EventsReceived;
    const BATCH_SIZE: usize = 50;

    async fn handle(
        &self,
        batch: Batch<EventsReceived>,
        ctx: &mut Context<'_, S>,
    ) -> Result<(), HandlerError> {
        for item in batch {
            let received = item.payload;
            for backend in &self.backends {
                let record = IndexRecord {
                    namespace: received.namespace.clone(),
                    request_id: received.request_id.clone(),
                    events: received.events.clone(),
                };
                let msg = Message::new(record)
                    .routing_key(backend.routing_key())
                    .fairness_key(received.namespace.clone());
                ctx.emit_for(item.id, msg)?;
            }
        }
        Ok(())
    }
}
