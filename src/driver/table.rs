//! The in-flight table: every operation the kernel may still touch lives here.
//!
//! An entry owns the operation's data (buffers, addresses, iovecs, fds) from
//! the moment its submission entry is pushed until the kernel's completion for
//! it has been reaped. The future waiting on it holds only an [`OpId`].
//!
//! ```text
//!   push ──► Waiting ──completion──► Completed ──future collects──► Vacant
//!               │                                     
//!         future dropped                              
//!               ▼                                     
//!           Abandoned ──completion──► Vacant (data discarded, fds closed)
//! ```

use std::any::Any;
use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

use super::CqeResult;

/// Identifies one table entry: slot index and the slot's generation, so a stale
/// id (or a cancel aimed at a finished operation) never touches a reused slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct OpId {
    /// Index into `Table::slots`.
    pub(crate) index: u32,
    /// Generation of the slot when the entry was inserted.
    pub(crate) generation: u32,
}

impl OpId {
    /// The `user_data` the submission entry carries.
    pub(crate) fn user_data(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }

    /// Inverse of [`OpId::user_data`].
    pub(crate) fn from_user_data(data: u64) -> OpId {
        OpId {
            index: data as u32,
            generation: (data >> 32) as u32,
        }
    }
}

/// Kernel-facing data of one operation, type-erased so the table can hold any.
pub trait Owned: 'static {
    /// io_uring: the submission entry; may point into `self`, which sits at
    /// its final heap address.
    fn entry(&mut self) -> io_uring::squeue::Entry;
    /// epoll: performs the operation now without blocking.
    fn attempt(&mut self) -> super::Attempt;
    /// Bytes the operation moves, if it is a read or a write (for fault
    /// injection).
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))] // test hooks
    fn transfer_len(&self) -> Option<usize>;
    /// Whether [`Owned::limit`] can shorten the transfer (a multishot
    /// receive has no length to shorten).
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))] // test hooks
    fn shortens(&self) -> bool;
    /// Asks the kernel for at most `max` bytes (a short transfer on purpose).
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))] // test hooks
    fn limit(&mut self, max: usize);
    /// The buffer the kernel writes into, taken out when the operation is
    /// released (for the quarantine).
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))] // test hooks
    fn take_kernel_buffer(&mut self) -> Option<bytes::BytesMut>;
    /// Hands the data back to the typed future that collects it.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
    /// The completion arrived but nobody will collect it: release what it
    /// produced (an accepted or opened fd is closed here).
    fn discard(self: Box<Self>, res: CqeResult);
    /// A multishot completion (more to come) arrived for an abandoned entry, or
    /// was still queued when its future let go: release what it produced.
    fn discard_one(&mut self, res: CqeResult);
    /// Multishot: completions that may queue up uncollected before the
    /// driver cancels the operation (its future starts it again when it
    /// wants more).
    fn queue_cap(&self) -> usize;
    /// Sees every completion as it is reaped, before anyone collects it
    /// (a pooled receive books the buffer the kernel picked).
    fn observe(&mut self, res: &CqeResult);
}

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
    /// Released kernel-facing buffers held back for checking.
    #[cfg(feature = "fault-injection")]
    quarantine: super::faults::Quarantine,
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
                results: VecDeque::new(),
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

    /// Completions recorded so far.
    pub(crate) fn completions(&self) -> u64 {
        self.completions
    }

    /// Records a completion from the kernel. Abandoned entries are freed here.
    /// Returns `true` when the entry is a multishot operation whose queue of
    /// uncollected completions reached its cap: the backend should cancel it.
    pub(crate) fn complete(&mut self, id: OpId, res: CqeResult) -> bool {
        self.completions += 1;
        let more = res.more();
        let Some(slot) = self.slot(id) else {
            // Not ours (a stale id would be a driver bug; ignore rather than corrupt).
            return false;
        };
        match &mut slot.state {
            State::Waiting { data, .. }
            | State::Multishot { data, .. }
            | State::Abandoned { data, .. } => data.observe(&res),
            State::Completed { .. } | State::Vacant => {}
        }
        match &mut slot.state {
            State::Waiting { .. } => {
                let State::Waiting { data, waker } =
                    std::mem::replace(&mut slot.state, State::Vacant)
                else {
                    unreachable!("matched Waiting above")
                };
                slot.state = State::Completed { data, res };
                if let Some(w) = waker {
                    w.wake();
                }
            }
            State::Multishot {
                data,
                waker,
                results,
                finished,
                capped,
            } => {
                results.push_back(res);
                *finished = !more;
                if let Some(w) = waker.take() {
                    w.wake();
                }
                if more && !*capped && results.len() >= data.queue_cap() {
                    *capped = true;
                    return true;
                }
            }
            State::Abandoned { multishot, .. } => {
                if *multishot && more {
                    // Still owned by the kernel: a later completion ends it.
                    if let State::Abandoned { data, .. } = &mut slot.state {
                        data.discard_one(res);
                    }
                    return false;
                }
                if let State::Abandoned { data, .. } = self.vacate(id) {
                    self.retire(data, res);
                }
            }
            State::Completed { .. } => {
                // A second completion for a single-shot entry cannot happen.
                unreachable!("single-shot operation completed twice")
            }
            State::Vacant => unreachable!("slot() filters vacant slots"),
        }
        false
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

    /// Polls a multishot entry for its next completion; `true` with it
    /// means it was the last, and the entry is gone.
    pub(crate) fn poll_multishot(
        &mut self,
        id: OpId,
        cx: &mut Context<'_>,
    ) -> Poll<(CqeResult, bool)> {
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
        match results.pop_front() {
            Some(res) => {
                let last = results.is_empty() && *finished;
                if last {
                    self.vacate(id);
                }
                Poll::Ready((res, last))
            }
            None => {
                *waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// The future let go of `id`. A finished entry is freed (its result
    /// discarded); an entry the kernel still owns becomes abandoned.
    pub(crate) fn release(&mut self, id: OpId) -> Released {
        let Some(slot) = self.slot(id) else {
            return Released::Freed;
        };
        match &slot.state {
            State::Completed { .. } => {
                if let State::Completed { data, res } = self.vacate(id) {
                    self.retire(data, res);
                }
                Released::Freed
            }
            State::Multishot { finished: true, .. } => {
                if let State::Multishot {
                    mut data,
                    mut results,
                    ..
                } = self.vacate(id)
                {
                    let last = results.pop_back();
                    for res in results {
                        data.discard_one(res);
                    }
                    if let Some(res) = last {
                        self.retire(data, res);
                    }
                }
                Released::Freed
            }
            State::Waiting { .. } | State::Multishot { .. } => {
                let multishot = matches!(slot.state, State::Multishot { .. });
                let data = match std::mem::replace(&mut slot.state, State::Vacant) {
                    State::Waiting { data, .. } => data,
                    State::Multishot {
                        mut data, results, ..
                    } => {
                        for res in results {
                            data.discard_one(res);
                        }
                        data
                    }
                    _ => unreachable!("matched Waiting or Multishot above"),
                };
                slot.state = State::Abandoned { data, multishot };
                Released::StillInFlight
            }
            State::Abandoned { .. } | State::Vacant => Released::StillInFlight,
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

    /// Frees the data of an entry nobody collects; with the quarantine on,
    /// the buffer the kernel wrote into is held back and checked later.
    fn retire(&mut self, mut data: Box<dyn Owned>, res: CqeResult) {
        #[cfg(feature = "fault-injection")]
        if let Some(buf) = data.take_kernel_buffer() {
            self.quarantine.hold(buf);
        }
        #[cfg(not(feature = "fault-injection"))]
        let _ = &mut data;
        data.discard(res);
    }

    /// Ids of every entry the kernel may still touch (for shutdown cancels).
    pub(crate) fn in_flight(&self) -> Vec<OpId> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                matches!(
                    s.state,
                    State::Waiting { .. }
                        | State::Abandoned { .. }
                        | State::Multishot {
                            finished: false,
                            ..
                        }
                )
            })
            .map(|(i, s)| OpId {
                index: i as u32,
                generation: s.generation,
            })
            .collect()
    }

    /// Frees every entry whose completion has arrived but was never collected.
    pub(crate) fn drop_finished(&mut self) {
        for i in 0..self.slots.len() {
            let s = &self.slots[i];
            let done = matches!(
                s.state,
                State::Completed { .. } | State::Multishot { finished: true, .. }
            );
            if done {
                let id = OpId {
                    index: i as u32,
                    generation: s.generation,
                };
                self.release(id);
            }
        }
    }

    /// Forgets every remaining entry without freeing its memory: used only
    /// when the kernel did not finish in time at shutdown, so that memory it
    /// may still write is never handed back to the allocator.
    pub(crate) fn leak_remaining(&mut self) -> usize {
        let n = self.live;
        for slot in self.slots.drain(..) {
            std::mem::forget(slot);
        }
        self.free.clear();
        self.live = 0;
        n
    }
}
