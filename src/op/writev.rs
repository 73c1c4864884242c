//! `IORING_OP_WRITEV`: write several `Bytes` segments in one operation
//! (files, pipes, terminals).

use std::io;

use bytes::Bytes;
use io_uring::{opcode, squeue, types};

use super::{CURRENT_POS, Operation, or_wait, ready_now, syscall_result};
use crate::driver::{Attempt, CqeResult, Interest, SharedFd};

/// Most segments one vectored operation carries (well under `IOV_MAX`).
pub(crate) const MAX_SEGMENTS: usize = 64;

/// iovecs kept in the operation itself up to this many segments (a
/// writer's flush has one, or a few after a short write); more go to the
/// heap.
const INLINE_IOVECS: usize = 4;

/// Writes `bufs` in order at `offset` (or the current position).
pub(crate) struct Writev {
    /// Keeps the fd open while the kernel uses it.
    fd: SharedFd,
    /// The segments; the kernel reads them through `iovecs`.
    bufs: Vec<Bytes>,
    /// One iovec per segment, pointing into `bufs`' heap memory (which
    /// moves with nothing). Inline ones sit in the operation, which the
    /// driver's table holds at a fixed heap address until the completion.
    iovecs: Iovecs,
    /// File offset, or `CURRENT_POS`.
    offset: u64,
}

impl Writev {
    /// A vectored write of `bufs` (at most [`MAX_SEGMENTS`] of them).
    pub(crate) fn new(fd: SharedFd, bufs: Vec<Bytes>, offset: u64) -> Writev {
        debug_assert!(bufs.len() <= MAX_SEGMENTS);
        Writev {
            fd,
            iovecs: Iovecs::new(&bufs, usize::MAX),
            bufs,
            offset,
        }
    }
}

/// The iovecs of a vectored operation: in the operation's own memory when
/// there are few (no allocation per operation), else on the heap.
pub(super) enum Iovecs {
    /// The first `len` entries of the array are used.
    Inline([libc::iovec; INLINE_IOVECS], usize),
    /// More segments than fit inline.
    Heap(Vec<libc::iovec>),
}

impl Iovecs {
    /// iovecs describing at most `max` bytes of `bufs` (empty segments
    /// and those past `max` left out).
    pub(super) fn new(bufs: &[Bytes], max: usize) -> Iovecs {
        let mut left = max;
        let mut each = bufs.iter().filter_map(|b| {
            let len = b.len().min(left);
            left -= len;
            (len > 0).then_some(libc::iovec {
                iov_base: b.as_ptr() as *mut libc::c_void,
                iov_len: len,
            })
        });
        if bufs.len() > INLINE_IOVECS {
            return Iovecs::Heap(each.collect());
        }
        let empty = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        let mut inline = [empty; INLINE_IOVECS];
        let mut len = 0;
        for (slot, v) in inline.iter_mut().zip(&mut each) {
            *slot = v;
            len += 1;
        }
        Iovecs::Inline(inline, len)
    }

    /// The iovecs in use.
    pub(super) fn as_slice(&self) -> &[libc::iovec] {
        match self {
            Iovecs::Inline(inline, len) => &inline[..*len],
            Iovecs::Heap(v) => v,
        }
    }

    /// Pointer and count for a system call or a submission entry.
    pub(super) fn raw(&mut self) -> (*mut libc::iovec, usize) {
        match self {
            Iovecs::Inline(inline, len) => (inline.as_mut_ptr(), *len),
            Iovecs::Heap(v) => (v.as_mut_ptr(), v.len()),
        }
    }
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
        let (iov, n) = self.iovecs.raw();
        opcode::Writev::new(types::Fd(self.fd.raw()), iov.cast_const(), n as u32)
            .offset(self.offset)
            .build()
    }

    fn attempt(&mut self) -> Attempt {
        let fd = self.fd.raw();
        let (iov, n) = self.iovecs.raw();
        let (iov, n) = (iov.cast_const(), n as libc::c_int);
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
        let Some(first) = self.iovecs.as_slice().first() else {
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
        self.iovecs = Iovecs::new(&self.bufs, max);
        true
    }

    fn complete(self, res: CqeResult) -> Self::Output {
        (res.result.map(|n| n as usize), self.bufs)
    }
}
