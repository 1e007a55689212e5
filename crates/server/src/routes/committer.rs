//! [`Committer`]: group commit for the ingestion route. Requests that arrive while a commit
//! is in flight are accepted together in the next transaction, so concurrent requests share
//! one commit (one WAL flush, one fsync on SQLite) instead of queueing one commit each.
//!
//! Each request still gets its own answer, and only after the transaction holding its
//! events committed. When a group's transaction fails for a reason other than an outage
//! (one request's rows refused), every request of the group is retried alone, so one bad
//! request never fails the others.

use std::sync::Arc;

use conveyor_handlers::{AcceptReport, Backend, EventsReceived, PipelineStore};
use tokio::sync::{mpsc, oneshot, Mutex};

/// Most requests one transaction accepts.
const MAX_GROUP_REQUESTS: usize = 64;
/// Stop adding requests to a group past this many events.
const MAX_GROUP_EVENTS: usize = 10_000;
/// Requests waiting for a writer before `accept` waits for room.
const QUEUE: usize = 1_024;

/// Why a request's events were not accepted.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The database cannot take writes now (spool the batch): the error's message.
    Outage(String),
    /// The database refused the batch, or the writers are gone.
    Refused(anyhow::Error),
}

/// What [`Committer::accept`] answers: the batch back (to spool it) and the outcome.
pub(crate) type Answer = (EventsReceived, Result<AcceptReport, Failure>);

struct Job {
    batch: EventsReceived,
    reply: oneshot::Sender<Answer>,
}

/// The handle of the route's group-commit writers. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Committer {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("events", &self.batch.events.len())
            .finish()
    }
}

impl Committer {
    /// Start `writers` tasks accepting into `store` for `backends`; they stop when every
    /// handle is dropped. One writer suffices on SQLite (one write lock); more let Postgres
    /// run one group's statements while another commits.
    pub(crate) fn start<S: PipelineStore>(
        store: S,
        backends: Arc<[Backend]>,
        writers: usize,
    ) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..writers.max(1) {
            tokio::spawn(write(store.clone(), backends.clone(), queue.clone()));
        }
        Self { jobs }
    }

    /// Accept `batch` with whatever other requests are waiting; returns once its transaction
    /// committed (`Ok`) or failed (nothing of it was written).
    pub(crate) async fn accept(&self, batch: EventsReceived) -> Answer {
        let (reply, answer) = oneshot::channel();
        if let Err(refused) = self.jobs.send(Job { batch, reply }).await {
            let failure = Failure::Refused(anyhow::anyhow!("the ingestion writers stopped"));
            return (refused.0.batch, Err(failure));
        }
        match answer.await {
            Ok(answer) => answer,
            // a writer panicked with the batch: nothing is acknowledged, the client retries
            Err(_) => (
                EventsReceived {
                    namespace: String::new(),
                    request_id: String::new(),
                    events: Vec::new(),
                },
                Err(Failure::Refused(anyhow::anyhow!(
                    "the ingestion writer failed mid-batch"
                ))),
            ),
        }
    }
}

/// One writer: take the first waiting request and every other already waiting (up to the
/// limits), accept them in one transaction, answer each.
async fn write<S: PipelineStore>(
    store: S,
    backends: Arc<[Backend]>,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
) {
    loop {
        let jobs = {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            let mut events = first.batch.events.len();
            let mut jobs = vec![first];
            while jobs.len() < MAX_GROUP_REQUESTS && events < MAX_GROUP_EVENTS {
                match queue.try_recv() {
                    Ok(job) => {
                        events += job.batch.events.len();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            jobs
        };
        let (batches, replies): (Vec<EventsReceived>, Vec<_>) =
            jobs.into_iter().map(|j| (j.batch, j.reply)).unzip();
        match store.accept(&backends, &batches).await {
            Ok(reports) => {
                for ((batch, reply), report) in batches.into_iter().zip(replies).zip(reports) {
                    let _ = reply.send((batch, Ok(report)));
                }
            }
            Err(e) if super::events::is_outage(&e) => {
                let message = e.to_string();
                for (batch, reply) in batches.into_iter().zip(replies) {
                    let _ = reply.send((batch, Err(Failure::Outage(message.clone()))));
                }
            }
            Err(e) if batches.len() == 1 => {
                let batch = batches.into_iter().next().expect("one batch");
                let _ = replies
                    .into_iter()
                    .next()
                    .expect("one reply")
                    .send((batch, Err(Failure::Refused(e.into()))));
            }
            Err(e) => {
                tracing::warn!(error.message = %e, requests = batches.len(), "group refused; accepting its requests one by one");
                for (batch, reply) in batches.into_iter().zip(replies) {
                    let result = store
                        .accept(&backends, std::slice::from_ref(&batch))
                        .await
                        .map(|reports| reports[0])
                        .map_err(|e| {
                            if super::events::is_outage(&e) {
                                Failure::Outage(e.to_string())
                            } else {
                                Failure::Refused(e.into())
                            }
                        });
                    let _ = reply.send((batch, result));
                }
            }
        }
    }
}
