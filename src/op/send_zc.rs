//! `IORING_OP_SEND_ZC`: send a `Bytes` on a socket without copying it into
//! the kernel, without SIGPIPE.
//!
//! The kernel completes a zero-copy send twice: first with the result
//! (flag `IORING_CQE_F_MORE` when a notification follows), then, once the
//! network stack no longer needs the pages, with a notification
//! (`IORING_CQE_F_NOTIF`). Submitted as a multishot entry, the operation
//! and the bytes it owns stay in the driver's table until that last
//! completion, however early the future goes away. On epoll it is a plain
//! `send` (`MSG_ZEROCOPY` is not used: its notifications come on the
//! socket's error queue).

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use io_uring::{cqueue, opcode, squeue, types};

use super::{Operation, or_wait, syscall_result};
use crate::driver::{Attempt, CqeResult, Interest, SharedFd};

/// `IORING_SEND_ZC_REPORT_USAGE` (uapi `io_uring.h`; the io-uring crate
/// does not export it): the notification says whether the kernel had to
/// copy after all.
const REPORT_USAGE: u16 = 1 << 3;

/// `IORING_NOTIF_USAGE_ZC_COPIED` (uapi `io_uring.h`): set in a
/// notification's result when the data was copied rather than sent from
/// the caller's pages.
const ZC_COPIED: u32 = 1 << 31;

/// Notifications seen by this process, and how many said "copied".
static NOTIFICATIONS: AtomicU64 = AtomicU64::new(0);
/// Of [`NOTIFICATIONS`], those with `IORING_NOTIF_USAGE_ZC_COPIED`.
static COPIED: AtomicU64 = AtomicU64::new(0);

/// `(notifications, copied)`: zero-copy send notifications seen by this
/// process so far, and how many of them reported that the kernel copied.
pub(crate) fn usage() -> (u64, u64) {
    (
        NOTIFICATIONS.load(Ordering::Relaxed),
        COPIED.load(Ordering::Relaxed),
    )
}

/// Sends `buf` from its own pages (the kernel may send less).
#[derive(Debug)]
pub(crate) struct SendZc {
    /// Keeps the socket open while the kernel uses it.
    fd: SharedFd,
    /// The bytes the kernel sends from; kept until the notification.
    buf: Bytes,
    /// Most bytes handed over (`usize::MAX`, unless a test fault
    /// shortens the transfer through `Operation::limit`).
    max: usize,
}

impl SendZc {
    /// A zero-copy send of `buf`; submit with [`Multishot`](super::Multishot).
    pub(crate) fn new(fd: SharedFd, buf: Bytes) -> SendZc {
        SendZc {
            fd,
            buf,
            max: usize::MAX,
        }
    }
}

impl Operation for SendZc {
    type Output = ();
    // A send waits for room in the socket, which a peer may never make.
    const CANCEL_ON_DROP: bool = true;

    fn entry(&mut self) -> squeue::Entry {
        let len = u32::try_from(self.buf.len().min(self.max)).unwrap_or(u32::MAX);
        opcode::SendZc::new(types::Fd(self.fd.raw()), self.buf.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .zc_flags(REPORT_USAGE)
            .build()
    }

    fn attempt(&mut self) -> Attempt {
        let fd = self.fd.raw();
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        let len = self.buf.len().min(self.max);
        // SAFETY: the owned bytes, at most their length.
        let ret = unsafe { libc::send(fd, self.buf.as_ptr().cast(), len, flags) };
        or_wait(syscall_result(ret), fd, Interest::Write)
    }

    fn transfer_len(&self) -> Option<usize> {
        Some(self.buf.len())
    }

    fn limit(&mut self, max: usize) -> bool {
        self.max = max;
        true
    }

    fn observe(&mut self, res: &CqeResult) {
        if cqueue::notif(res.flags) {
            NOTIFICATIONS.fetch_add(1, Ordering::Relaxed);
            if res.result.as_ref().is_ok_and(|r| r & ZC_COPIED != 0) {
                COPIED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn complete(self, _res: CqeResult) -> Self::Output {}
}
