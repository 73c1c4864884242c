//! `IORING_OP_SHUTDOWN`: shut down one or both directions of a socket.

use std::io;

use io_uring::{opcode, squeue, types};

use super::{Operation, syscall_result};
use crate::driver::{Attempt, CqeResult, SharedFd};

/// `shutdown(2)` of `fd` with `how` (`SHUT_WR`, `SHUT_RD`, `SHUT_RDWR`).
#[derive(Debug)]
pub(crate) struct Shutdown {
    /// Keeps the socket open while the kernel uses it.
    fd: SharedFd,
    /// Which direction.
    how: i32,
}

impl Shutdown {
    /// A shutdown of `fd`.
    pub(crate) fn new(fd: SharedFd, how: i32) -> Shutdown {
        Shutdown { fd, how }
    }
}

impl Operation for Shutdown {
    type Output = io::Result<()>;

    fn entry(&mut self) -> squeue::Entry {
        opcode::Shutdown::new(types::Fd(self.fd.raw()), self.how).build()
    }

    fn attempt(&mut self) -> Attempt {
        // SAFETY: plain integers.
        Attempt::Done(syscall_result(
            unsafe { libc::shutdown(self.fd.raw(), self.how) } as isize,
        ))
    }

    fn complete(self, res: CqeResult) -> Self::Output {
        res.result.map(drop)
    }
}
