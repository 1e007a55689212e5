//! The `fifo` workload's payload ([`Sequenced`]: a key and its sequence number) and its
//! handler ([`CheckOrder`]), which plays each key's part and counts every order violation
//! into an [`OrderState`] the workload reads.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use conveyor::{Batch, Context, Event, EventHandler, HandlerError, Store};

use crate::probe::Tally;

/// How long a retrying key's head waits before its next attempt: far past any run, so the
/// key stays blocked behind its head for the whole drain.
pub(crate) const RETRY_BACKOFF: Duration = Duration::from_secs(3_600);

/// The payload: event number `seq` of ordering key `key` (published in `seq` order).
#[derive(Debug, serde::Serialize, serde::Deserialize, garde::Validate)]
pub(crate) struct Sequenced {
    #[garde(skip)]
    pub(crate) key: u32,
    #[garde(skip)]
    pub(crate) seq: u32,
}

impl Event for Sequenced {
    const NAME: &'static str = "bench.fifo";
}

impl Sequenced {
    /// The ordering key's text for key number `key`.
    pub(crate) fn ordering_key(key: u32) -> String {
        format!("key-{key}")
    }
}

/// What a key does in the workload, by its number: keys `0..parked` have a head that fails
/// permanently (which parks the key), the next `retrying` keys a head that keeps retrying
/// with [`RETRY_BACKOFF`], and the rest flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Roles {
    pub(crate) parked: u32,
    pub(crate) retrying: u32,
}

/// One key's part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Parked,
    Retrying,
    Flowing,
}

impl Roles {
    fn of(self, key: u32) -> Role {
        if key < self.parked {
            Role::Parked
        } else if key - self.parked < self.retrying {
            Role::Retrying
        } else {
            Role::Flowing
        }
    }

    /// The keys whose heads the setup publishes and settles: `0..held()`.
    pub(crate) fn held(self) -> u32 {
        self.parked + self.retrying
    }
}

/// What the handlers saw, shared by every worker of a run.
#[derive(Debug)]
pub(crate) struct OrderState {
    roles: Roles,
    /// Check order and exclusivity per key (off for the unordered baseline).
    ordered: bool,
    /// The flowing keys' events handled.
    pub(crate) tally: Arc<Tally>,
    /// Per key, the sequence number expected next.
    next: Vec<AtomicU32>,
    /// Per key, whether one of its events is being handled.
    running: Vec<AtomicBool>,
    /// Events whose sequence number was not the previous one + 1 (a skip, a repeat).
    pub(crate) out_of_order: AtomicU64,
    /// Events handled while another of their key was being handled.
    pub(crate) concurrent: AtomicU64,
    /// Events behind a parked or retrying head that ran anyway.
    pub(crate) blocked_ran: AtomicU64,
    /// Heads failed (parking their keys) and heads sent back to retry.
    pub(crate) heads_failed: AtomicU64,
    pub(crate) heads_retried: AtomicU64,
    /// Events inside `handle` now, and the most seen at once.
    in_flight: AtomicU64,
    pub(crate) max_in_flight: AtomicU64,
}

impl OrderState {
    /// A fresh state for `keys` keys with `roles`; `ordered` checks per-key order.
    pub(crate) fn new(keys: u32, roles: Roles, ordered: bool) -> Arc<Self> {
        let keys = keys as usize;
        Arc::new(Self {
            roles,
            ordered,
            tally: Tally::new(),
            next: (0..keys).map(|_| AtomicU32::new(0)).collect(),
            running: (0..keys).map(|_| AtomicBool::new(false)).collect(),
            out_of_order: AtomicU64::new(0),
            concurrent: AtomicU64::new(0),
            blocked_ran: AtomicU64::new(0),
            heads_failed: AtomicU64::new(0),
            heads_retried: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
        })
    }

    /// Every violation: out of order, concurrent, or run behind a held head.
    pub(crate) fn violations(&self) -> u64 {
        [&self.out_of_order, &self.concurrent, &self.blocked_ran]
            .iter()
            .map(|n| n.load(Ordering::Acquire))
            .sum()
    }

    /// A flowing key's event `seq` starts: count what is wrong with it.
    fn start(&self, key: usize, seq: u32) {
        if self.running[key].swap(true, Ordering::AcqRel) {
            self.concurrent.fetch_add(1, Ordering::AcqRel);
        }
        let expected = self.next[key].swap(seq.saturating_add(1), Ordering::AcqRel);
        if expected != seq {
            self.out_of_order.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Plays each key's part (see [`Roles`]) and checks, per flowing key, that each event's
/// sequence number is the previous one's + 1 and that no two of its events run at once.
#[derive(Debug)]
pub(crate) struct CheckOrder(pub(crate) Arc<OrderState>);

#[async_trait::async_trait]
impl<S: Store> EventHandler<S> for CheckOrder {
    type Event = Sequenced;
    const BATCH_SIZE: usize = 100;

    async fn handle(
        &self,
        batch: Batch<Sequenced>,
        ctx: &mut Context<'_, S>,
    ) -> Result<(), HandlerError> {
        let state = &self.0;
        let n = batch.len() as u64;
        let now = state.in_flight.fetch_add(n, Ordering::AcqRel) + n;
        state.max_in_flight.fetch_max(now, Ordering::AcqRel);
        let mut started = Vec::new();
        let mut flowed = 0;
        for item in &batch {
            let Sequenced { key, seq } = item.payload;
            let index = key as usize;
            if index >= state.next.len() {
                return Err(HandlerError::fail(format!("bench fifo: no key {key}")));
            }
            match (state.roles.of(key), seq) {
                (Role::Parked, 0) => {
                    state.heads_failed.fetch_add(1, Ordering::AcqRel);
                    ctx.fail(item.id, "bench fifo: this head dies and parks its key");
                }
                (Role::Retrying, 0) => {
                    state.heads_retried.fetch_add(1, Ordering::AcqRel);
                    ctx.retry_after(item.id, RETRY_BACKOFF, "bench fifo: this head retries");
                }
                (Role::Parked | Role::Retrying, _) => {
                    state.blocked_ran.fetch_add(1, Ordering::AcqRel);
                }
                (Role::Flowing, _) => {
                    if state.ordered {
                        state.start(index, seq);
                        started.push(index);
                    }
                    flowed += 1;
                }
            }
        }
        for index in started {
            state.running[index].store(false, Ordering::Release);
        }
        state.in_flight.fetch_sub(n, Ordering::AcqRel);
        state.tally.add(flowed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_split_the_keys_in_order() {
        let roles = Roles {
            parked: 2,
            retrying: 3,
        };
        let got: Vec<Role> = (0..7).map(|k| roles.of(k)).collect();
        use Role::*;
        assert_eq!(
            got,
            [Parked, Parked, Retrying, Retrying, Retrying, Flowing, Flowing]
        );
        assert_eq!(roles.held(), 5);
    }

    #[test]
    fn a_skip_a_repeat_and_an_overlap_are_violations() {
        let state = OrderState::new(
            2,
            Roles {
                parked: 0,
                retrying: 0,
            },
            true,
        );
        state.start(0, 0);
        state.running[0].store(false, Ordering::Release);
        state.start(0, 1);
        state.running[0].store(false, Ordering::Release);
        assert_eq!(state.violations(), 0);
        state.start(0, 3); // skips 2
        state.start(0, 3); // a repeat, while the first still runs
        assert_eq!(state.out_of_order.load(Ordering::Acquire), 2);
        assert_eq!(state.concurrent.load(Ordering::Acquire), 1);
        assert_eq!(state.violations(), 3);
    }
}
