//! `IORING_OP_WRITEV`: write several `Bytes` segments in one operation
//! (files, pipes, terminals).

use std::io;

use bytes::Bytes;
use io_uring::{opcode, squeue, types};

use super::{CURRENT_POS, Operation, or_wait, ready_now, syscall_result};
use crate::driver::{Attempt, CqeResult, Interest, SharedFd};

/// Most segments one vectored operation carries (well under `IOV_MAX`).
pub(crate) const MAX_SEGMENTS: usize = 64;

/// Writes `bufs` in order at `offset` (or the current position).
pub(crate) struct Writev {
    /// Keeps the fd open while the kernel uses it.
    fd: SharedFd,
    /// The segments; the kernel reads them through `iovecs`.
    bufs: Vec<Bytes>,
    /// One iovec per segment, pointing into `bufs`; heap memory that moves
    /// with nothing.
    iovecs: Vec<libc::iovec>,
    /// File offset, or `CURRENT_POS`.
    offset: u64,
}

impl Writev {
    /// A vectored write of `bufs` (at most [`MAX_SEGMENTS`] of them).
    pub(crate) fn new(fd: SharedFd, bufs: Vec<Bytes>, offset: u64) -> Writev {
        debug_assert!(bufs.len() <= MAX_SEGMENTS);
        Writev {
            fd,
            iovecs: iovecs(&bufs),
            bufs,
            offset,
        }
    }
}

/// iovecs describing `bufs`.
pub(super) fn iovecs(bufs: &[Bytes]) -> Vec<libc::iovec> {
    bufs.iter()
        .map(|b| libc::iovec {
            iov_base: b.as_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        })
        .collect()
}

/// iovecs describing at most `max` bytes of `bufs`.
pub(super) fn limited_iovecs(bufs: &[Bytes], max: usize) -> Vec<libc::iovec> {
    let mut left = max;
    let mut out = iovecs(bufs);
    out.retain_mut(|v| {
        v.iov_len = v.iov_len.min(left);
        left -= v.iov_len;
        v.iov_len > 0
    });
    out
}

impl std::fmt::Debug for Writev {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writev")
            .field("fd", &self.fd)
            .field("bufs", &self.bufs.len())
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

impl Operation for Writev {
    type Output = (io::Result<usize>, Vec<Bytes>);

    fn entry(&mut self) -> squeue::Entry {
        opcode::Writev::new(
            types::Fd(self.fd.raw()),
            self.iovecs.as_ptr(),
            self.iovecs.len() as u32,
        )
        .offset(self.offset)
        .build()
    }

    fn attempt(&mut self) -> Attempt {
        let fd = self.fd.raw();
        let (iov, n) = (self.iovecs.as_ptr(), self.iovecs.len() as libc::c_int);
        if self.offset != CURRENT_POS {
            // SAFETY: iovecs describing the owned segments.
            let ret = unsafe { libc::pwritev(fd, iov, n, self.offset as libc::off_t) };
            let res = syscall_result(ret);
            // Not seekable (a pipe): io_uring ignores the offset there too.
            if res != -libc::ESPIPE {
                return Attempt::Done(res);
            }
        }
        if !ready_now(fd, Interest::Write) {
            return Attempt::Wait(fd, Interest::Write);
        }
        // A pipe that polls writable takes PIPE_BUF bytes without blocking:
        // write at most that much of the first segment.
        let Some(first) = self.iovecs.first() else {
            return Attempt::Done(0);
        };
        let len = first.iov_len.min(libc::PIPE_BUF);
        // SAFETY: the first iovec describes an owned segment; at most its length.
        let ret = unsafe { libc::write(fd, first.iov_base, len) };
        or_wait(syscall_result(ret), fd, Interest::Write)
    }

    fn transfer_len(&self) -> Option<usize> {
        Some(self.bufs.iter().map(|b| b.len()).sum())
    }

    fn limit(&mut self, max: usize) -> bool {
        self.iovecs = limited_iovecs(&self.bufs, max);
        true
    }

    fn complete(self, res: CqeResult) -> Self::Output {
        (res.result.map(|n| n as usize), self.bufs)
    }
}
