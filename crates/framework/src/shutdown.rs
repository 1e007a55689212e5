//! Two-phase graceful shutdown.
//!
//! 1. **Drain** (`stop_claiming`): workers stop claiming; running batches finish and
//!    commit; a batch claimed but not yet started is released without counting an attempt.
//! 2. **Abort** (`abort`), only if draining outlasts the timeout: running handlers are
//!    dropped (their transactions roll back) and their events released, due at once.
//!
//! Either way nothing is lost: every claimed event is completed or back in the queue.

use tokio_util::sync::CancellationToken;

/// The shutdown signals shared by a pool's workers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shutdown {
    /// Stop claiming, finish what is running.
    pub(crate) stop_claiming: CancellationToken,
    /// Stop running batches now and release them.
    pub(crate) abort: CancellationToken,
}
