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
    // Once the result is in, only the notification follows: a future
    // dropped after the result costs no cancel.
    const ENDS_AFTER_FIRST: bool = true;

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

#[cfg(test)]
mod tests {
    //! The cancel a dropped zero-copy send costs, with the fake kernel.

    use std::future::poll_fn;
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::rc::Rc;
    use std::task::Poll;

    use bytes::Bytes;

    use super::SendZc;
    use crate::driver::fake::{self, MORE};
    use crate::driver::{Cap, Caps, Kind, SharedFd};
    use crate::op::Multishot;
    use crate::rt::context::{self, Handle};

    /// `IORING_CQE_F_NOTIF` (uapi `io_uring.h`).
    const NOTIF: u32 = 1 << 3;

    /// A zero-copy send submitted on the fake, its result delivered if
    /// `result`, then dropped: a cancel goes out only when it was dropped
    /// before the result, and the entry (with the bytes) stays until the
    /// notification either way.
    fn drop_send(result: bool) -> usize {
        let (driver, kernel) = fake::driver(Kind::IoUring, Caps::NONE.with(Cap::SendZc, true));
        let driver = Rc::new(driver);
        let _entered = context::enter(Handle {
            driver: driver.clone(),
            sched: None,
        });
        // SAFETY: a new fd nobody else owns (the fake never uses it).
        let fd = unsafe { OwnedFd::from_raw_fd(libc::eventfd(0, libc::EFD_CLOEXEC)) };
        let mut op = Multishot::submit(SendZc::new(SharedFd::new(fd), Bytes::from_static(b"x")));
        let id = kernel.borrow().submitted[0];
        // The kernel sent already: a cancel finds nothing to end.
        kernel.borrow_mut().answer_cancels = false;
        if result {
            kernel.borrow_mut().complete(id, 1, MORE);
            driver.turn(false, None).expect("turn");
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            let got = poll_fn(|cx| op.poll_next(cx));
            let mut got = std::pin::pin!(got);
            match std::future::Future::poll(got.as_mut(), &mut cx) {
                Poll::Ready(Some((res, false))) => assert_eq!(res.result.expect("sent"), 1),
                other => panic!("expected the result with more to come: {other:?}"),
            }
        }
        drop(op);
        let cancels = kernel.borrow().cancelled.len();
        if !result {
            kernel.borrow_mut().complete(id, 1, MORE);
        }
        driver.turn(false, None).expect("turn");
        assert_eq!(driver.live(), 1, "freed before the notification");
        kernel.borrow_mut().complete(id, 0, NOTIF);
        driver.turn(false, None).expect("turn");
        assert_eq!(driver.live(), 0, "kept after the notification");
        cancels
    }

    #[test]
    fn dropped_after_the_result_sends_no_cancel() {
        assert_eq!(drop_send(true), 0);
    }

    #[test]
    fn dropped_before_the_result_is_cancelled() {
        assert_eq!(drop_send(false), 1);
    }
}
