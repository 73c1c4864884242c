//! `IORING_OP_SENDMSG`: send several `Bytes` segments on a socket in one
//! operation, without SIGPIPE.

use std::io::{self, IoSlice};
use std::os::fd::RawFd;

use bytes::Bytes;
use io_uring::{opcode, squeue, types};

use super::writev::Iovecs;
use super::{Operation, or_wait, syscall_result};
use crate::driver::{Attempt, CqeResult, Interest, SharedFd};

/// Sends `bufs` in order.
pub(crate) struct SendMsg {
    /// Keeps the socket open while the kernel uses it.
    fd: SharedFd,
    /// The segments; the kernel reads them through `iovecs`.
    bufs: Vec<Bytes>,
    /// One iovec per segment, pointing into `bufs`.
    iovecs: Iovecs,
    /// Points at `iovecs`; the kernel reads it through the entry's
    /// pointer, which is stable because the driver's table holds the
    /// operation at a fixed heap address until the completion.
    msg: libc::msghdr,
}

impl SendMsg {
    /// A vectored send of `bufs`.
    pub(crate) fn new(fd: SharedFd, bufs: Vec<Bytes>) -> SendMsg {
        SendMsg {
            fd,
            iovecs: Iovecs::new(&bufs, usize::MAX),
            bufs,
            // SAFETY: msghdr is plain data; all-zero is a valid empty header.
            msg: unsafe { std::mem::zeroed() },
        }
    }

    /// Sends `bufs` on the socket `fd` now, without blocking and without
    /// SIGPIPE, outside the driver: the bytes taken, or `-errno`. The kernel
    /// has copied them when the call returns, so nothing it reads outlives
    /// the borrow (the writer's direct flush, `io/writer/state.rs`).
    pub(crate) fn send_now(fd: RawFd, bufs: &[IoSlice<'_>]) -> i32 {
        // SAFETY: msghdr is plain data; all-zero is a valid empty header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = bufs.as_ptr().cast_mut().cast();
        msg.msg_iovlen = bufs.len();
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        // SAFETY: the header points at `bufs` (`IoSlice` has the layout of
        // `iovec`), borrowed for the whole call; the kernel only reads them.
        syscall_result(unsafe { libc::sendmsg(fd, &msg, flags) })
    }
}

impl std::fmt::Debug for SendMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendMsg")
            .field("fd", &self.fd)
            .field("bufs", &self.bufs.len())
            .finish_non_exhaustive()
    }
}

impl Operation for SendMsg {
    type Output = (io::Result<usize>, Vec<Bytes>);
    const CANCEL_ON_DROP: bool = true;

    fn entry(&mut self) -> squeue::Entry {
        (self.msg.msg_iov, self.msg.msg_iovlen) = self.iovecs.raw();
        opcode::SendMsg::new(types::Fd(self.fd.raw()), &self.msg)
            .flags(libc::MSG_NOSIGNAL as u32)
            .build()
    }

    fn attempt(&mut self) -> Attempt {
        (self.msg.msg_iov, self.msg.msg_iovlen) = self.iovecs.raw();
        let fd = self.fd.raw();
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        // SAFETY: the header points at iovecs describing the owned segments.
        let ret = unsafe { libc::sendmsg(fd, &self.msg, flags) };
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
