//! The in-flight table: every operation the kernel may still touch lives here.
//!
//! An entry owns the operation's data (buffers, addresses, iovecs, fds) from
//! the moment its submission entry is pushed until the kernel's completion for
//! it has been reaped. The future waiting on it holds only an [`OpId`].
//!
//! ```text
//!   push ──► Waiting ──completion──► Completed ──future collects──► Vacant
//!               │                        └──future dropped──► Vacant (discarded)
//!         future dropped
//!               ▼
//!           Abandoned ──completion──► Vacant (data discarded, fds closed)
//!
//!   push ──► Multishot ──completion with MORE──► (queued) Multishot
//!               │       ──last completion──► finished; collected ──► Vacant
//!         future dropped (queue discarded)
//!               ▼
//!           Abandoned ──MORE: discarded──► Abandoned ──last──► Vacant
//! ```
//!
//! Unit tests (`table/tests`) walk every arrow, directly and through a
//! driver over the fake backend (`driver/fake.rs`).

mod owned;
mod shutdown;

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

use super::CqeResult;

pub(crate) use owned::{OpId, Owned};

/// Lifecycle of one entry.
enum State {
    /// Free slot.
    Vacant,
    /// Submitted; the future (if it polled yet) waits with `waker`.
    Waiting {
        /// The operation's kernel-facing data.
        data: Box<dyn Owned>,
        /// Waker of the last poll.
        waker: Option<Waker>,
    },
    /// Multishot operation: completions queue up until the future takes them;
    /// the entry stays until a completion without `IORING_CQE_F_MORE`.
    Multishot {
        /// The operation's kernel-facing data.
        data: Box<dyn Owned>,
        /// Waker of the last poll.
        waker: Option<Waker>,
        /// Completions not yet taken, oldest first.
        results: VecDeque<CqeResult>,
        /// The final completion (no more to come) has arrived.
        finished: bool,
        /// A cancel was asked for because the queue reached its cap.
        capped: bool,
    },
    /// The kernel completed; the result waits for the future.
    Completed {
        /// The operation's kernel-facing data.
        data: Box<dyn Owned>,
        /// The completion.
        res: CqeResult,
    },
    /// The future was dropped first; the data waits for the kernel's completion.
    Abandoned {
        /// The operation's kernel-facing data.
        data: Box<dyn Owned>,
        /// Multishot entries stay until their final completion.
        multishot: bool,
    },
}

/// One slot of the table.
struct Slot {
    /// Bumped each time the slot is vacated; part of every [`OpId`].
    generation: u32,
    /// What the slot holds.
    state: State,
}

/// Slab of in-flight operations. Invariant: `live` equals the number of
/// non-vacant slots, and every index in `free` is a vacant slot.
#[derive(Default)]
pub(crate) struct Table {
    /// All slots, vacant or not.
    slots: Vec<Slot>,
    /// Indexes of vacant slots.
    free: Vec<u32>,
    /// Number of occupied slots.
    live: usize,
    /// Completions recorded so far: a backend that completed something
    /// before its wait must not block (the wakes it caused stay local).
    completions: u64,
    /// The emptied result queue of the last multishot entry freed, kept
    /// for its capacity and given to the next one.
    spare_queue: VecDeque<CqeResult>,
}

/// What happened when a future let go of its entry.
pub(crate) enum Released {
    /// The kernel still owns the data; an async cancel may be worth sending.
    StillInFlight,
    /// The entry was finished (or already gone) and has been freed.
    Freed,
}

impl Table {
    /// Number of operations the kernel may still touch or whose result waits.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// Inserts a freshly submitted operation.
    pub(crate) fn insert(&mut self, data: Box<dyn Owned>, multishot: bool) -> OpId {
        let state = if multishot {
            State::Multishot {
                data,
                waker: None,
                results: std::mem::take(&mut self.spare_queue),
                finished: false,
                capped: false,
            }
        } else {
            State::Waiting { data, waker: None }
        };
        self.live += 1;
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.state = state;
            return OpId {
                index,
                generation: slot.generation,
            };
        }
        let index = u32::try_from(self.slots.len()).expect("more than 2^32 operations in flight");
        self.slots.push(Slot {
            generation: 0,
            state,
        });
        OpId {
            index,
            generation: 0,
        }
    }

    /// The slot `id` names, if it still belongs to that entry.
    fn slot(&mut self, id: OpId) -> Option<&mut Slot> {
        self.slots
            .get_mut(id.index as usize)
            .filter(|s| s.generation == id.generation && !matches!(s.state, State::Vacant))
    }

    /// Empties a slot and returns what it held.
    fn vacate(&mut self, id: OpId) -> State {
        let slot = &mut self.slots[id.index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        self.live -= 1;
        self.free.push(id.index);
        std::mem::replace(&mut slot.state, State::Vacant)
    }

    /// Keeps the result queue of a freed multishot entry for the next one.
    fn keep_queue(&mut self, mut results: VecDeque<CqeResult>) {
        results.clear();
        if results.capacity() > self.spare_queue.capacity() {
            self.spare_queue = results;
        }
    }

    /// Completions recorded so far.
    pub(crate) fn completions(&self) -> u64 {
        self.completions
    }

    /// Records a completion from the kernel. Abandoned entries are freed here.
    /// Returns `true` when the entry is a multishot operation whose queue of
    /// uncollected completions reached its cap: the backend should cancel it.
    pub(crate) fn complete(&mut self, id: OpId, res: CqeResult) -> bool {
        self.completions += 1;
        let Some(slot) = self.slot(id) else {
            // Not ours (a stale id would be a driver bug; ignore rather than corrupt).
            return false;
        };
        match &mut slot.state {
            State::Waiting { data, .. } => {
                data.observe(&res);
                let State::Waiting { data, waker } =
                    std::mem::replace(&mut slot.state, State::Vacant)
                else {
                    unreachable!("matched Waiting above")
                };
                slot.state = State::Completed { data, res };
                if let Some(w) = waker {
                    w.wake();
                }
                false
            }
            State::Multishot { .. } => Self::queue(&mut slot.state, res),
            State::Abandoned { data, multishot } => {
                data.observe(&res);
                if *multishot && res.more() {
                    // Still owned by the kernel: a later completion ends it.
                    data.discard_one(res);
                } else if let State::Abandoned { data, .. } = self.vacate(id) {
                    data.discard(res);
                }
                false
            }
            // A second completion for a single-shot entry cannot happen.
            State::Completed { .. } => unreachable!("single-shot operation completed twice"),
            State::Vacant => unreachable!("slot() filters vacant slots"),
        }
    }

    /// Queues a completion of a live multishot entry and wakes its future;
    /// `true` when the queue just reached its cap (cancel the operation).
    fn queue(state: &mut State, res: CqeResult) -> bool {
        let State::Multishot {
            data,
            waker,
            results,
            finished,
            capped,
        } = state
        else {
            unreachable!("queue() is called for multishot entries")
        };
        data.observe(&res);
        let more = res.more();
        results.push_back(res);
        *finished = !more;
        if let Some(w) = waker.take() {
            w.wake();
        }
        let reached = more && !*capped && results.len() >= data.queue_cap();
        *capped |= reached;
        reached
    }

    /// Polls a single-shot entry: on completion the entry is freed and its data
    /// and result handed to the caller.
    pub(crate) fn poll(
        &mut self,
        id: OpId,
        cx: &mut Context<'_>,
    ) -> Poll<(Box<dyn Owned>, CqeResult)> {
        let slot = self
            .slot(id)
            .expect("polled an operation that is no longer in the table");
        match &mut slot.state {
            State::Waiting { waker, .. } => {
                match waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            State::Completed { .. } => match self.vacate(id) {
                State::Completed { data, res } => Poll::Ready((data, res)),
                _ => unreachable!("matched Completed above"),
            },
            _ => unreachable!("poll on a multishot or abandoned entry"),
        }
    }

    /// Polls a multishot entry for its next completion. With the last one
    /// the entry is freed and its data handed back (for its memory: the
    /// kernel is done with it).
    #[allow(clippy::type_complexity, reason = "the output of a poll")]
    pub(crate) fn poll_multishot(
        &mut self,
        id: OpId,
        cx: &mut Context<'_>,
    ) -> Poll<(CqeResult, Option<Box<dyn Owned>>)> {
        let slot = self
            .slot(id)
            .expect("polled a multishot operation that is no longer in the table");
        let State::Multishot {
            waker,
            results,
            finished,
            ..
        } = &mut slot.state
        else {
            unreachable!("poll_multishot on a single-shot entry")
        };
        let Some(res) = results.pop_front() else {
            *waker = Some(cx.waker().clone());
            return Poll::Pending;
        };
        if !(results.is_empty() && *finished) {
            return Poll::Ready((res, None));
        }
        let State::Multishot { data, results, .. } = self.vacate(id) else {
            unreachable!("matched Multishot above")
        };
        self.keep_queue(results);
        Poll::Ready((res, Some(data)))
    }

    /// The future let go of `id`. A finished entry is freed (its result
    /// discarded); an entry the kernel still owns becomes abandoned.
    pub(crate) fn release(&mut self, id: OpId) -> Released {
        let Some(slot) = self.slot(id) else {
            return Released::Freed;
        };
        let finished = matches!(
            slot.state,
            State::Completed { .. } | State::Multishot { finished: true, .. }
        );
        if finished {
            let state = self.vacate(id);
            self.discard_finished(state);
            return Released::Freed;
        }
        let state = std::mem::replace(&mut slot.state, State::Vacant);
        let abandoned = match state {
            State::Waiting { data, .. } => State::Abandoned {
                data,
                multishot: false,
            },
            State::Multishot {
                mut data,
                mut results,
                ..
            } => {
                // The queued completions will never be collected.
                for res in results.drain(..) {
                    data.discard_one(res);
                }
                self.keep_queue(results);
                State::Abandoned {
                    data,
                    multishot: true,
                }
            }
            abandoned @ State::Abandoned { .. } => abandoned,
            _ => unreachable!("finished and vacant slots are handled above"),
        };
        self.slots[id.index as usize].state = abandoned;
        Released::StillInFlight
    }

    /// Releases what a finished, uncollected entry produced: a single-shot
    /// result, or a multishot entry's queued completions (the last one, which
    /// has no more to come, is its final discard).
    fn discard_finished(&mut self, state: State) {
        match state {
            State::Completed { data, res } => data.discard(res),
            State::Multishot {
                mut data,
                mut results,
                ..
            } => {
                let last = results.pop_back();
                for res in results.drain(..) {
                    data.discard_one(res);
                }
                self.keep_queue(results);
                if let Some(last) = last {
                    data.discard(last);
                }
            }
            _ => unreachable!("discard_finished of an entry still in flight"),
        }
    }

    /// The data of an entry the kernel has not finished with.
    pub(crate) fn data_mut(&mut self, id: OpId) -> Option<&mut dyn Owned> {
        match &mut self.slot(id)?.state {
            State::Waiting { data, .. }
            | State::Multishot { data, .. }
            | State::Abandoned { data, .. } => Some(&mut **data),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
