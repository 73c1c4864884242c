//! `IORING_OP_RECV`: receive from a socket into the spare capacity of a `BytesMut`.

use std::io;

use bytes::BytesMut;
use io_uring::{opcode, squeue, types};

use super::{Operation, filled, or_wait, syscall_result};
use crate::driver::{Attempt, Cap, CqeResult, Interest, SharedFd};

/// `IORING_RECVSEND_POLL_FIRST` (include/uapi/linux/io_uring.h), which the
/// io-uring crate does not export.
const RECVSEND_POLL_FIRST: u16 = 1;

/// Receives at most `buf.capacity() - buf.len()` bytes.
#[derive(Debug)]
pub(crate) struct Recv {
    /// Keeps the socket open while the kernel uses it.
    fd: SharedFd,
    /// The kernel writes into its spare capacity.
    buf: BytesMut,
    /// Most bytes asked for (`usize::MAX`, unless a test fault
    /// shortens the transfer through `Operation::limit`).
    max: usize,
    /// Arm the readiness poll before trying (`IORING_RECVSEND_POLL_FIRST`):
    /// for a socket just drained, a first try would only fail.
    poll_first: bool,
    /// The same on epoll: the first attempt waits for readiness instead
    /// of trying (saves the `recv` that fails with `EAGAIN`, one system
    /// call per request of a ping-pong); cleared by that first attempt.
    wait_first: bool,
    /// epoll: the last try filled all it asked for, so bytes may be left
    /// (the edge-triggered registration will not report them again).
    full: bool,
}

impl Recv {
    /// A receive into `buf`'s spare capacity.
    pub(crate) fn new(fd: SharedFd, buf: BytesMut) -> Recv {
        Recv {
            fd,
            buf,
            max: usize::MAX,
            poll_first: false,
            wait_first: false,
            full: false,
        }
    }

    /// A receive that waits for readiness before its first try (where the
    /// current runtime has [`Cap::PollFirst`]), for a socket that was just
    /// drained.
    pub(crate) fn poll_first(fd: SharedFd, buf: BytesMut) -> Recv {
        Recv {
            poll_first: crate::rt::context::driver_has(Cap::PollFirst),
            wait_first: true,
            ..Recv::new(fd, buf)
        }
    }
}

/// What a receive gives back: the result, the buffer, and whether the
/// kernel said more bytes were already waiting in the socket
/// (`IORING_CQE_F_SOCK_NONEMPTY`; on epoll: the receive filled all it
/// asked for).
pub(crate) type RecvOutput = (io::Result<usize>, BytesMut, bool);

impl Operation for Recv {
    type Output = RecvOutput;
    const CANCEL_ON_DROP: bool = true;

    fn entry(&mut self) -> squeue::Entry {
        let spare = self.buf.spare_capacity_mut();
        let len = u32::try_from(spare.len().min(self.max)).unwrap_or(u32::MAX);
        let ioprio = if self.poll_first {
            RECVSEND_POLL_FIRST
        } else {
            0
        };
        opcode::Recv::new(types::Fd(self.fd.raw()), spare.as_mut_ptr().cast(), len)
            .ioprio(ioprio)
            .build()
    }

    fn attempt(&mut self) -> Attempt {
        let fd = self.fd.raw();
        if std::mem::take(&mut self.wait_first) {
            // The backend tries at once instead where bytes may have
            // arrived unreported (`driver/epoll/waiters.rs`).
            return Attempt::Wait(fd, Interest::Read);
        }
        let spare = self.buf.spare_capacity_mut();
        let asked = spare.len().min(self.max);
        // SAFETY: the spare capacity of the owned buffer, its length.
        let ret = unsafe { libc::recv(fd, spare.as_mut_ptr().cast(), asked, libc::MSG_DONTWAIT) };
        self.full = ret > 0 && ret as usize == asked;
        or_wait(syscall_result(ret), fd, Interest::Read)
    }

    fn transfer_len(&self) -> Option<usize> {
        Some(self.buf.capacity() - self.buf.len())
    }

    fn limit(&mut self, max: usize) -> bool {
        self.max = max;
        true
    }

    fn take_kernel_buffer(&mut self) -> Option<BytesMut> {
        Some(std::mem::take(&mut self.buf))
    }

    fn complete(self, res: CqeResult) -> Self::Output {
        let more = io_uring::cqueue::sock_nonempty(res.flags) || self.full;
        let (res, buf) = filled(self.buf, res);
        (res, buf, more)
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::rc::Rc;

    use super::*;
    use crate::driver::eventfd::EventFd;
    use crate::driver::{Caps, Config, Driver, Kind};
    use crate::rt::context::{Handle, enter};

    /// Whether `Recv::poll_first` asks for `POLL_FIRST` on an io_uring
    /// runtime with the capabilities in `off` switched off.
    fn asks_poll_first(off: Caps) -> bool {
        let wake = EventFd::new().expect("eventfd");
        let config = Config {
            kind: Some(Kind::IoUring),
            entries: 8,
            ..Config::default()
        };
        let driver = Rc::new(Driver::start(&config, wake.as_raw_fd(), off).expect("driver"));
        let _enter = enter(Handle {
            driver,
            sched: None,
        });
        Recv::poll_first(socket(), BytesMut::with_capacity(8)).poll_first
    }

    /// Some socket to receive from.
    fn socket() -> SharedFd {
        let fd: OwnedFd = std::net::UdpSocket::bind("127.0.0.1:0")
            .expect("socket")
            .into();
        SharedFd::new(fd)
    }

    /// On epoll a receive for a drained socket waits for readiness once
    /// before it tries, even with bytes already there (the backend sees to
    /// those); then it receives them. An ordinary receive tries at once.
    #[test]
    fn epoll_waits_for_readiness_first_only_when_asked() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("socket");
        sock.send_to(b"hi", sock.local_addr().expect("addr"))
            .expect("send");
        let fd = SharedFd::new(sock.into());
        let mut first = Recv::poll_first(fd.clone(), BytesMut::with_capacity(8));
        assert!(matches!(first.attempt(), Attempt::Wait(_, Interest::Read)));
        assert!(matches!(first.attempt(), Attempt::Done(2)));
        assert!(!first.full, "2 bytes of 8: the socket was drained");
        let mut plain = Recv::new(fd, BytesMut::with_capacity(8));
        assert!(matches!(plain.attempt(), Attempt::Wait(_, Interest::Read)));
    }

    /// On epoll a receive that filled all it asked for says bytes may be
    /// left, so the reader's next receive tries at once.
    #[test]
    fn epoll_a_full_receive_says_bytes_may_be_left() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("socket");
        sock.send_to(&[7; 64], sock.local_addr().expect("addr"))
            .expect("send");
        let fd = SharedFd::new(sock.into());
        let mut recv = Recv::new(fd, BytesMut::with_capacity(8));
        let Attempt::Done(n) = recv.attempt() else {
            panic!("a datagram waits")
        };
        let (res, _, more) = recv.complete(CqeResult::new(n, 0));
        assert!(res.expect("received") > 0 && more);
    }

    #[test]
    fn poll_first_follows_the_runtime_capability() {
        assert!(asks_poll_first(Caps::NONE));
        assert!(!asks_poll_first(Caps::NONE.with(Cap::PollFirst, true)));
        // No runtime here: nothing to ask, no flag.
        assert!(!Recv::poll_first(socket(), BytesMut::new()).poll_first);
    }
}
