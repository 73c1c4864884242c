//! Which operations wait for which fd, kept so that waiting allocates
//! nothing once the lists have grown: a slot per fd number (as the
//! kernel's own fd table), whose lists keep their capacity when they
//! empty, and a map from each waiting operation to its fd whose capacity
//! stays too.

use std::collections::HashMap;
use std::os::fd::RawFd;

use super::super::Interest;
use super::super::table::OpId;

/// Operations waiting for one fd.
#[derive(Debug, Default)]
struct Waiters {
    /// Waiting to read (or accept).
    read: Vec<OpId>,
    /// Waiting to write (or connect).
    write: Vec<OpId>,
}

impl Waiters {
    /// Whether no operation waits.
    fn is_empty(&self) -> bool {
        self.read.is_empty() && self.write.is_empty()
    }
}

/// The waiting operations of every fd.
///
/// Invariant: `waits_on[id] == fd` exactly when `id` is in one of
/// `fds[fd]`'s lists.
#[derive(Debug, Default)]
pub(super) struct Waiting {
    /// Indexed by fd number; grows to the highest fd that waited.
    fds: Vec<Waiters>,
    /// Which fd each waiting operation waits on.
    waits_on: HashMap<OpId, RawFd>,
}

/// Events that concern readers, and writers (errors and hang-ups wake both).
const ANY: u32 = (libc::EPOLLERR | libc::EPOLLHUP) as u32;
/// See [`ANY`].
const READABLE: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP) as u32 | ANY;
/// See [`ANY`].
const WRITABLE: u32 = libc::EPOLLOUT as u32 | ANY;

impl Waiting {
    /// Records that `id` waits until `fd` (not negative) is ready for
    /// `interest`.
    pub(super) fn add(&mut self, fd: RawFd, id: OpId, interest: Interest) {
        let index = fd as usize;
        if index >= self.fds.len() {
            self.fds.resize_with(index + 1, Waiters::default);
        }
        let w = &mut self.fds[index];
        match interest {
            Interest::Read => w.read.push(id),
            Interest::Write => w.write.push(id),
        }
        self.waits_on.insert(id, fd);
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
    pub(super) fn has(&self, fd: RawFd) -> bool {
        self.fds.get(fd as usize).is_some_and(|w| !w.is_empty())
    }

    /// The epoll events `fd`'s waiters need (none if nobody waits).
    pub(super) fn events(&self, fd: RawFd) -> u32 {
        let Some(w) = self.fds.get(fd as usize) else {
            return 0;
        };
        let mut ev = 0;
        if !w.read.is_empty() {
            ev |= (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
        }
        if !w.write.is_empty() {
            ev |= libc::EPOLLOUT as u32;
        }
        ev
    }

    /// Moves the waiters of `fd` that `events` concern into `ready` (and
    /// out of the bookkeeping).
    pub(super) fn take_ready(&mut self, fd: RawFd, events: u32, ready: &mut Vec<OpId>) {
        let Some(w) = self.fds.get_mut(fd as usize) else {
            return;
        };
        let start = ready.len();
        if events & READABLE != 0 {
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
        w.add(5, id(1), Interest::Read);
        w.add(5, id(2), Interest::Write);
        assert!(w.has(5) && !w.has(4) && !w.has(500));
        let both = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLOUT) as u32;
        assert_eq!(w.events(5), both);
        let mut ready = Vec::new();
        w.take_ready(5, libc::EPOLLIN as u32, &mut ready);
        assert_eq!(ready, [id(1)]);
        assert_eq!(w.forget(id(1)), None, "taken out of the bookkeeping");
        assert_eq!(w.events(5), libc::EPOLLOUT as u32);
        w.take_ready(5, libc::EPOLLHUP as u32, &mut ready);
        assert_eq!(ready, [id(1), id(2)], "a hang-up wakes writers too");
        assert!(!w.has(5));
    }

    #[test]
    fn a_forgotten_waiter_is_not_woken() {
        let mut w = Waiting::default();
        w.add(3, id(7), Interest::Read);
        assert_eq!(w.forget(id(7)), Some(3));
        assert_eq!(w.forget(id(7)), None);
        let mut ready = Vec::new();
        w.take_ready(3, u32::MAX, &mut ready);
        assert!(ready.is_empty() && !w.has(3));
    }
}
