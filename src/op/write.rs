//! `IORING_OP_WRITE`: write a `Bytes` at an offset.

use std::io;

use bytes::Bytes;
use io_uring::{opcode, squeue, types};

use super::Operation;
use crate::driver::{CqeResult, SharedFd};

/// Writes `buf` at `offset` (or the current position with `CURRENT_POS`).
#[derive(Debug)]
pub(crate) struct Write {
    /// Keeps the fd open while the kernel uses it.
    fd: SharedFd,
    /// The bytes the kernel reads.
    buf: Bytes,
    /// File offset, or `CURRENT_POS`.
    offset: u64,
}

impl Write {
    /// A write of all of `buf` (the kernel may write less).
    pub(crate) fn new(fd: SharedFd, buf: Bytes, offset: u64) -> Write {
        Write { fd, buf, offset }
    }
}

impl Operation for Write {
    type Output = (io::Result<usize>, Bytes);

    fn entry(&mut self) -> squeue::Entry {
        let len = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
        opcode::Write::new(types::Fd(self.fd.raw()), self.buf.as_ptr(), len)
            .offset(self.offset)
            .build()
    }

    fn complete(self, res: CqeResult) -> Self::Output {
        (res.result.map(|n| n as usize), self.buf)
    }
}
