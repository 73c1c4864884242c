//! How an operation finishes on each backend: the completion every backend
//! delivers ([`CqeResult`]), and what the epoll backend's attempt at the
//! system call did ([`Attempt`], [`Interest`]).

use std::io;
use std::os::fd::RawFd;
use std::time::Instant;

/// The outcome of one completion: the kernel's result and its flags.
#[derive(Debug)]
pub(crate) struct CqeResult {
    /// Non-negative result, or the error the kernel returned.
    pub(crate) result: io::Result<u32>,
    /// `IORING_CQE_F_*` flags (always 0 on epoll).
    pub(crate) flags: u32,
}

impl CqeResult {
    /// The one place a raw completion becomes a result.
    pub(crate) fn new(res: i32, flags: u32) -> CqeResult {
        // A zero-copy send's notification (`IORING_CQE_F_NOTIF`) carries
        // flag bits, not an errno: bit 31 is `IORING_NOTIF_USAGE_ZC_COPIED`.
        let result = if res < 0 && !io_uring::cqueue::notif(flags) {
            Err(io::Error::from_raw_os_error(-res))
        } else {
            Ok(res as u32)
        };
        CqeResult { result, flags }
    }

    /// More completions follow for this (multishot) entry.
    pub(crate) fn more(&self) -> bool {
        io_uring::cqueue::more(self.flags)
    }
}

/// What an operation did when the epoll backend tried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Finished, with the result a completion would carry (`>= 0` or `-errno`).
    Done(i32),
    /// Would block: try again once `fd` is ready for the direction.
    Wait(RawFd, Interest),
    /// Finished with `res` bytes received into pool buffer `bid` (a
    /// receive that picks its buffer from the runtime's pool).
    Selected {
        /// The result, as for `Done`.
        res: i32,
        /// The buffer the bytes are in.
        bid: u16,
    },
    /// Finishes at this instant with `-ETIME` (a timeout).
    Until(Instant),
}

/// A readiness direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Readable (or closed, or in error).
    Read,
    /// Writable (or closed, or in error).
    Write,
}
