//! Routing wake-ups from the store's notification stream to the workers of each queue.
//!
//! Each queue has a `watch` channel whose value counts wake-ups. A worker marks the value
//! seen before it claims, so a wake-up that arrives while it is claiming is never missed:
//! `changed()` returns at once afterwards.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::event::Queue;
use crate::store::{Store, Wake};

/// The wake-up channels of a pool, one per registered queue.
#[derive(Debug, Clone, Default)]
pub(crate) struct Wakers {
    senders: Arc<HashMap<Queue, watch::Sender<u64>>>,
}

impl Wakers {
    pub(crate) fn new(queues: impl IntoIterator<Item = Queue>) -> Self {
        let senders = queues
            .into_iter()
            .map(|q| (q, watch::Sender::new(0)))
            .collect();
        Self {
            senders: Arc::new(senders),
        }
    }

    /// A receiver for `queue`'s workers.
    pub(crate) fn subscribe(&self, queue: &Queue) -> watch::Receiver<u64> {
        match self.senders.get(queue) {
            Some(tx) => tx.subscribe(),
            // unreachable for registered queues; a closed channel degrades to polling
            None => watch::channel(0).1,
        }
    }

    /// Wake the workers of `queue`, if it is registered here.
    pub(crate) fn wake(&self, queue: &Queue) {
        if let Some(tx) = self.senders.get(queue) {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Wake every worker.
    pub(crate) fn wake_all(&self) {
        for tx in self.senders.values() {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Forward the store's wake-ups until `stop` is cancelled.
    pub(crate) async fn listen<S: Store>(self, store: S, stop: CancellationToken) {
        let mut stream = loop {
            match store.wake_stream().await {
                Ok(stream) => break stream,
                Err(e) => {
                    tracing::warn!(error.message = %e, "cannot listen for wake-ups; polling until it can");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    }
                }
            }
        };
        loop {
            let wake = tokio::select! {
                () = stop.cancelled() => return,
                wake = stream.next() => wake,
            };
            match wake {
                Some(Wake::Queue(queue)) => self.wake(&queue),
                Some(Wake::All) => self.wake_all(),
                None => return,
            }
        }
    }
}
