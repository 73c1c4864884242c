//! Which operations wait for which fd, and what the backend knows of each
//! fd's registration and readiness, kept so that waiting allocates
//! nothing once the lists have grown: a slot per fd number (as the
//! kernel's own fd table), whose lists keep their capacity when they
//! empty, and a map from each waiting operation to its fd whose capacity
//! stays too.
//!
//! Each fd is registered once, edge-triggered, for reading and writing:
//! the kernel reports a change of its readiness once. An operation that
//! waits after its own attempt failed (`EAGAIN`) misses nothing: any
//! change after that attempt is reported later. A receive that waits
//! *without* trying (`Recv::poll_first`: its reader's last receive did not
//! fill all it asked for, so it drained the socket; one that filled it
//! says so, and the next tries at once) would miss two things the
//! registration does not report again: bytes whose report came while nobody waited
//! (so readable reports are counted, and a read that would wait after one
//! it has not seen tries at once instead), and an end of stream or error
//! reported before (it stays; a drained socket whose peer closed has no
//! bytes but an end to read), after which every read tries once before
//! it waits.

use std::collections::HashMap;
use std::os::fd::RawFd;

use super::super::Interest;
use super::super::table::OpId;

/// One fd number: its waiters, registration and readable reports.
#[derive(Debug, Default)]
struct Slot {
    /// Waiting to read (or accept).
    read: Vec<OpId>,
    /// Waiting to write (or connect).
    write: Vec<OpId>,
    /// The close generation (`closes.rs`) of the fd number when it was
    /// registered with epoll; `None` while not registered.
    registered: Option<u32>,
    /// Readable reports so far (wrapping).
    readable: u32,
    /// `readable` when a read on this fd last tried or started waiting:
    /// different means a report came that no read has seen since.
    seen: u32,
    /// A hang-up or error was reported (it stays until the fd is closed).
    ended: bool,
}

/// What [`Waiting::park`] did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Park {
    /// A readable report came that no read has seen since it last tried:
    /// try the operation again now instead of waiting.
    TryNow,
    /// Parked, and the fd is registered.
    Parked,
    /// Parked; the fd must be registered now (then [`Waiting::registered`]).
    Register,
}

/// The waiting operations of every fd.
///
/// Invariant: `waits_on[id] == fd` exactly when `id` is in one of
/// `fds[fd]`'s lists.
#[derive(Debug, Default)]
pub(super) struct Waiting {
    /// Indexed by fd number; grows to the highest fd that waited.
    fds: Vec<Slot>,
    /// Which fd each waiting operation waits on.
    waits_on: HashMap<OpId, RawFd>,
}

/// Events that concern readers, and writers (errors and hang-ups wake both).
const ANY: u32 = (libc::EPOLLERR | libc::EPOLLHUP) as u32;
/// See [`ANY`].
pub(super) const READABLE: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP) as u32 | ANY;
/// A reported end: hang-up (either side), or error.
const ANY_END: u32 = libc::EPOLLRDHUP as u32 | ANY;
/// See [`ANY`].
const WRITABLE: u32 = libc::EPOLLOUT as u32 | ANY;

impl Waiting {
    /// The slot of `fd` (not negative), made if new.
    fn slot(&mut self, fd: RawFd) -> &mut Slot {
        let index = fd as usize;
        if index >= self.fds.len() {
            self.fds.resize_with(index + 1, Slot::default);
        }
        &mut self.fds[index]
    }

    /// Parks `id` until `fd` (not negative) is ready for `interest`, unless
    /// a read should try again first (not after it `retried` already).
    /// `generation` is the fd number's close generation now.
    pub(super) fn park(
        &mut self,
        fd: RawFd,
        id: OpId,
        interest: Interest,
        generation: u32,
        retried: bool,
    ) -> Park {
        let slot = self.slot(fd);
        let unseen = slot.seen != slot.readable || slot.ended;
        match interest {
            Interest::Read if unseen && !retried => {
                slot.seen = slot.readable;
                return Park::TryNow;
            }
            Interest::Read => slot.read.push(id),
            Interest::Write => slot.write.push(id),
        }
        let parked = if slot.registered == Some(generation) {
            Park::Parked
        } else {
            Park::Register
        };
        self.waits_on.insert(id, fd);
        parked
    }

    /// `fd` is registered for its close generation `generation` (a new
    /// file: what was reported for the number's last one is forgotten).
    pub(super) fn registered(&mut self, fd: RawFd, generation: u32) {
        let slot = self.slot(fd);
        slot.registered = Some(generation);
        slot.ended = false;
    }

    /// Removes `id`; returns the fd it waited on, if it was waiting.
    pub(super) fn forget(&mut self, id: OpId) -> Option<RawFd> {
        let fd = self.waits_on.remove(&id)?;
        if let Some(w) = self.fds.get_mut(fd as usize) {
            w.read.retain(|&w| w != id);
            w.write.retain(|&w| w != id);
        }
        Some(fd)
    }

    /// Whether some operation waits on `fd`.
    #[cfg(test)]
    pub(super) fn has(&self, fd: RawFd) -> bool {
        self.fds
            .get(fd as usize)
            .is_some_and(|w| !(w.read.is_empty() && w.write.is_empty()))
    }

    /// `fd` reported `events`: moves the waiters they concern into `ready`
    /// (and out of the bookkeeping), counting a readable report.
    pub(super) fn take_ready(&mut self, fd: RawFd, events: u32, ready: &mut Vec<OpId>) {
        let Some(w) = self.fds.get_mut(fd as usize) else {
            return;
        };
        let start = ready.len();
        if events & READABLE != 0 {
            w.readable = w.readable.wrapping_add(1);
            w.ended |= events & ANY_END != 0;
            if !w.read.is_empty() {
                // The reads woken now try after this report.
                w.seen = w.readable;
            }
            ready.append(&mut w.read);
        }
        if events & WRITABLE != 0 {
            ready.append(&mut w.write);
        }
        for id in &ready[start..] {
            self.waits_on.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(index: u32) -> OpId {
        OpId {
            index,
            generation: 0,
        }
    }

    #[test]
    fn readiness_takes_the_waiters_it_concerns() {
        let mut w = Waiting::default();
        assert_eq!(w.park(5, id(1), Interest::Read, 0, false), Park::Register);
        w.registered(5, 0);
        assert_eq!(w.park(5, id(2), Interest::Write, 0, false), Park::Parked);
        assert!(w.has(5) && !w.has(4) && !w.has(500));
        let mut ready = Vec::new();
        w.take_ready(5, libc::EPOLLIN as u32, &mut ready);
        assert_eq!(ready, [id(1)]);
        assert_eq!(w.forget(id(1)), None, "taken out of the bookkeeping");
        w.take_ready(5, libc::EPOLLHUP as u32, &mut ready);
        assert_eq!(ready, [id(1), id(2)], "a hang-up wakes writers too");
        assert!(!w.has(5));
    }

    #[test]
    fn a_forgotten_waiter_is_not_woken() {
        let mut w = Waiting::default();
        w.park(3, id(7), Interest::Read, 0, false);
        assert_eq!(w.forget(id(7)), Some(3));
        assert_eq!(w.forget(id(7)), None);
        let mut ready = Vec::new();
        w.take_ready(3, u32::MAX, &mut ready);
        assert!(ready.is_empty() && !w.has(3));
    }

    /// A readable report while no read waits: the next read to wait tries
    /// at once instead (once); a writer is not concerned.
    #[test]
    fn a_report_nobody_saw_makes_the_next_read_try() {
        let mut w = Waiting::default();
        w.park(4, id(1), Interest::Read, 0, false);
        w.registered(4, 0);
        let mut ready = Vec::new();
        w.take_ready(4, libc::EPOLLIN as u32, &mut ready);
        assert_eq!(w.park(4, id(1), Interest::Read, 0, false), Park::Parked);
        w.forget(id(1));
        w.take_ready(4, libc::EPOLLIN as u32, &mut ready);
        assert_eq!(w.park(4, id(2), Interest::Write, 0, false), Park::Parked);
        assert_eq!(w.park(4, id(1), Interest::Read, 0, false), Park::TryNow);
        assert_eq!(w.park(4, id(1), Interest::Read, 0, false), Park::Parked);
    }

    /// After a reported hang-up every read tries once before it waits;
    /// a new file under the same number starts afresh.
    #[test]
    fn after_a_hang_up_reads_try_before_they_wait() {
        let mut w = Waiting::default();
        w.park(4, id(1), Interest::Read, 0, false);
        w.registered(4, 0);
        let mut ready = Vec::new();
        let end = (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
        w.take_ready(4, end, &mut ready);
        for _ in 0..2 {
            assert_eq!(w.park(4, id(1), Interest::Read, 0, false), Park::TryNow);
            assert_eq!(w.park(4, id(1), Interest::Read, 0, true), Park::Parked);
            w.forget(id(1));
        }
        w.registered(4, 1);
        assert_eq!(w.park(4, id(1), Interest::Read, 1, false), Park::Parked);
    }

    /// A closed fd number (its generation moved on) is registered again.
    #[test]
    fn a_reused_fd_number_is_registered_again() {
        let mut w = Waiting::default();
        assert_eq!(w.park(6, id(1), Interest::Read, 0, false), Park::Register);
        w.registered(6, 0);
        w.forget(id(1));
        assert_eq!(w.park(6, id(1), Interest::Read, 0, false), Park::Parked);
        w.forget(id(1));
        assert_eq!(w.park(6, id(1), Interest::Read, 1, false), Park::Register);
    }
}
