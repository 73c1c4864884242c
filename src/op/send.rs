//! `IORING_OP_SEND`: send a `Bytes` on a socket, without SIGPIPE.

use std::io;

use bytes::Bytes;
use io_uring::{opcode, squeue, types};

use super::{Operation, or_wait, syscall_result};
use crate::driver::{Attempt, CqeResult, Interest, SharedFd};

/// Sends `buf` (the kernel may send less).
#[derive(Debug)]
pub(crate) struct Send {
    /// Keeps the socket open while the kernel uses it.
    fd: SharedFd,
    /// The bytes the kernel reads.
    buf: Bytes,
    /// Most bytes handed over (`usize::MAX`, unless a test fault
    /// shortens the transfer through `Operation::limit`).
    max: usize,
}

impl Send {
    /// A send of `buf`.
    pub(crate) fn new(fd: SharedFd, buf: Bytes) -> Send {
        Send {
            fd,
            buf,
            max: usize::MAX,
        }
    }
}

impl Operation for Send {
    type Output = (io::Result<usize>, Bytes);
    const CANCEL_ON_DROP: bool = true;

    fn entry(&mut self) -> squeue::Entry {
        let len = u32::try_from(self.buf.len().min(self.max)).unwrap_or(u32::MAX);
        opcode::Send::new(types::Fd(self.fd.raw()), self.buf.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
    }

    fn attempt(&mut self) -> Attempt {
        let fd = self.fd.raw();
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        // SAFETY: the owned bytes, their length.
        let ret = unsafe {
            libc::send(
                fd,
                self.buf.as_ptr().cast(),
                self.buf.len().min(self.max),
                flags,
            )
        };
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
