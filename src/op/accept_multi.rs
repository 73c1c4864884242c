//! `IORING_OP_ACCEPT` with `IORING_ACCEPT_MULTISHOT` (Linux 5.19): one
//! submission accepts connection after connection, one completion each,
//! until it is cancelled or an error ends it. The kernel writes no peer
//! address (there is one completion queue entry per connection but only one
//! submission to point at a buffer): callers ask with `getpeername`.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use io_uring::{opcode, squeue, types};

use super::Operation;
use crate::driver::{Attempt, CqeResult, SharedFd};

/// Completions that may wait uncollected before the driver cancels the
/// accept: a listener nobody accepts from holds at most this many
/// connections (plus the few the cancel races with) outside the kernel's
/// backlog.
const ACCEPT_QUEUE_CAP: usize = 64;

/// Accepts connections on a listening socket until cancelled; every new fd
/// is close-on-exec and in blocking mode, as with [`Accept`](super::Accept).
#[derive(Debug)]
pub(crate) struct AcceptMulti {
    /// Keeps the listener open while the kernel uses it.
    fd: SharedFd,
}

impl AcceptMulti {
    /// A multishot accept on the listener `fd`.
    pub(crate) fn new(fd: SharedFd) -> AcceptMulti {
        AcceptMulti { fd }
    }

    /// The connection one completion carries. Every successful completion
    /// must pass through here exactly once: it owns a new fd.
    pub(crate) fn accepted(res: CqeResult) -> io::Result<OwnedFd> {
        let fd = res.result?;
        // SAFETY: a successful accept returns a new fd that nobody else owns,
        // and each completion is turned into an `OwnedFd` only once (it is
        // consumed here).
        Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }
}

impl Operation for AcceptMulti {
    /// Unused: a multishot operation hands out its completions one by one
    /// through [`Multishot::poll_next`](super::Multishot::poll_next).
    type Output = io::Result<OwnedFd>;
    const CANCEL_ON_DROP: bool = true;

    fn entry(&mut self) -> squeue::Entry {
        opcode::AcceptMulti::new(types::Fd(self.fd.raw()))
            .flags(libc::SOCK_CLOEXEC)
            .build()
    }

    /// The epoll backend has no multishot: one `accept4`, completing the
    /// entry (its caller arms it again for the next connection).
    fn attempt(&mut self) -> Attempt {
        let null = std::ptr::null_mut();
        // SAFETY: null address and length ask the kernel for no address.
        unsafe { super::accept::accept_now(self.fd.raw(), null, null.cast()) }
    }

    fn complete(self, res: CqeResult) -> Self::Output {
        AcceptMulti::accepted(res)
    }

    fn abandoned(self, res: CqeResult) {
        // The final completion, with nobody to take it: close its fd.
        drop(AcceptMulti::accepted(res));
    }

    fn abandoned_one(&mut self, res: CqeResult) {
        // A connection accepted for nobody (the listener or its accepts
        // went away): close it.
        drop(AcceptMulti::accepted(res));
    }

    fn queue_cap(&self) -> usize {
        ACCEPT_QUEUE_CAP
    }
}
