//! The backend contract: one behavioural suite, written once against [`conveyor::Store`]
//! and the [`conveyor::WorkerPool`], run against every backend.
//!
//! A backend plugs in by implementing [`Backend`] and calling each case from a thin test
//! file (`tests/postgres.rs`). A backend that fails a case has a bug; the case is not
//! weakened for it.
//!
//! # Layout
//! - [`support`]: the [`Backend`] harness, test events and recording handlers.
//! - [`publish`]: single, bulk, idempotency keys, validation.
//! - [`claim`]: leases, due times, exactly-once claiming under contention, fairness.
//! - [`outcomes`]: per-item outcomes, poison payloads, retries, atomicity.
//! - [`lease`]: crash recovery and graceful shutdown.
//! - [`pool`]: exactly-once across pools, fair draining, wake-up latency.
//! - [`admin`]: pause/resume, stats, dead letters, namespaces.

pub mod admin;
pub mod claim;
pub mod lease;
pub mod outcomes;
pub mod pool;
pub mod publish;
pub mod support;

pub use support::Backend;
