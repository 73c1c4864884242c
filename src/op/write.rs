//! `IORING_OP_WRITE`: write a `Bytes` at an offset.

use std::io;

use bytes::Bytes;
use io_uring::{opcode, squeue, types};

use super::{CURRENT_POS, Operation, or_wait, ready_now, syscall_result};
use crate::driver::{Attempt, CqeResult, Interest, SharedFd};

/// Writes `buf` at `offset` (or the current position with `CURRENT_POS`).
#[derive(Debug)]
pub(crate) struct Write {
    /// Keeps the fd open while the kernel uses it.
    fd: SharedFd,
    /// The bytes the kernel reads.
    buf: Bytes,
    /// Most bytes handed over (`usize::MAX`, unless a test fault
    /// shortens the transfer through `Operation::limit`).
    max: usize,
    /// File offset, or `CURRENT_POS`.
    offset: u64,
}

impl Write {
    /// A write of all of `buf` (the kernel may write less).
    pub(crate) fn new(fd: SharedFd, buf: Bytes, offset: u64) -> Write {
        Write {
            fd,
            buf,
            max: usize::MAX,
            offset,
        }
    }
}

impl Operation for Write {
    type Output = (io::Result<usize>, Bytes);

    fn entry(&mut self) -> squeue::Entry {
        let len = u32::try_from(self.buf.len().min(self.max)).unwrap_or(u32::MAX);
        opcode::Write::new(types::Fd(self.fd.raw()), self.buf.as_ptr(), len)
            .offset(self.offset)
            .build()
    }

    fn attempt(&mut self) -> Attempt {
        let fd = self.fd.raw();
        let (ptr, len) = (self.buf.as_ptr(), self.buf.len().min(self.max));
        if self.offset != CURRENT_POS {
            // SAFETY: the owned bytes, their length.
            let ret = unsafe { libc::pwrite(fd, ptr.cast(), len, self.offset as libc::off_t) };
            let res = syscall_result(ret);
            // Not seekable (a pipe): io_uring ignores the offset there too.
            if res != -libc::ESPIPE {
                return Attempt::Done(res);
            }
        }
        if !ready_now(fd, Interest::Write) {
            return Attempt::Wait(fd, Interest::Write);
        }
        // A pipe that polls writable takes PIPE_BUF bytes without blocking.
        let len = len.min(libc::PIPE_BUF);
        // SAFETY: the owned bytes, at most their length.
        let ret = unsafe { libc::write(fd, ptr.cast(), len) };
        or_wait(syscall_result(ret), fd, Interest::Write)
    }

    fn transfer_len(&self) -> Option<usize> {
        Some(self.buf.len())
    }

    fn limit(&mut self, max: usize) -> bool {
        self.max = max;
        true
    }

    fn complete(self, res: CqeResult) -> Self::Output {
        (res.result.map(|n| n as usize), self.buf)
    }
}
