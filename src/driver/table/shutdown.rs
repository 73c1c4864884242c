//! What shutdown asks of the table: which entries to cancel, freeing what
//! completed, and leaking what the kernel never gave back.

use super::{OpId, State, Table};

impl Table {
    /// Ids of the entries for which `pick` holds.
    fn ids(&self, pick: impl Fn(&State) -> bool) -> Vec<OpId> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| pick(&s.state))
            .map(|(i, s)| OpId {
                index: i as u32,
                generation: s.generation,
            })
            .collect()
    }

    /// Ids of every entry the kernel may still touch (for shutdown cancels).
    pub(crate) fn in_flight(&self) -> Vec<OpId> {
        self.ids(|state| {
            matches!(
                state,
                State::Waiting { .. }
                    | State::Abandoned { .. }
                    | State::Multishot {
                        finished: false,
                        ..
                    }
            )
        })
    }

    /// Frees every entry whose completion has arrived but was never collected.
    pub(crate) fn drop_finished(&mut self) {
        let done = self.ids(|state| {
            matches!(
                state,
                State::Completed { .. } | State::Multishot { finished: true, .. }
            )
        });
        for id in done {
            self.release(id);
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
