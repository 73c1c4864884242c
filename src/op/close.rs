//! `IORING_OP_CLOSE`: close an fd and report the result.

use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use super::{Operation, syscall_result};
use crate::driver::{Attempt, CqeResult};

/// Closes `fd`, which the caller gave up (no one else holds it).
#[derive(Debug)]
pub(crate) struct Close {
    /// The fd; the kernel closes it whatever happens to the future.
    fd: RawFd,
}

impl Close {
    /// A close of `fd`, owned from now on by the kernel operation.
    pub(crate) fn new(fd: RawFd) -> Close {
        Close { fd }
    }
}

impl Operation for Close {
    type Output = io::Result<()>;

    fn entry(&mut self) -> squeue::Entry {
        opcode::Close::new(types::Fd(self.fd)).build()
    }

    fn attempt(&mut self) -> Attempt {
        // SAFETY: the caller gave this fd up to the operation.
        Attempt::Done(syscall_result(unsafe { libc::close(self.fd) } as isize))
    }

    fn complete(self, res: CqeResult) -> Self::Output {
        res.result.map(drop)
    }
}
