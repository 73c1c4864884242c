//! Receive into a buffer the kernel picks from the runtime's pool when data
//! arrives: multishot `IORING_OP_RECV` with `IOSQE_BUFFER_SELECT` on
//! io_uring (as a bundle where the pool uses them); on epoll a non-blocking
//! `recv` that takes a free pool buffer only once the socket is readable.
//! Either way the completion names the buffer (`IORING_CQE_F_BUFFER`), and
//! nothing is held while the socket is idle. What a completion means for
//! the reader ([`RecvOutcome`]) is decided here, so the layers above never
//! read an errno value of this receive.

use std::io;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use io_uring::{opcode, squeue, types};

use super::{Multishot, Operation, or_wait, syscall_result};
use crate::driver::{Attempt, CqeResult, Inbox, Interest, Pool, PoolMode, SharedFd};
use crate::error::is_retry;

/// A receive from the pool. Each completion's buffers are booked into the
/// inbox when it is reaped; the output is only the completion (its result
/// says how many bytes the inbox gained).
#[derive(Debug)]
pub(crate) struct RecvPool {
    /// Keeps the socket open while the kernel uses it.
    fd: SharedFd,
    /// Where received buffers go.
    inbox: Rc<Inbox>,
    /// Buffers' worth of bytes it may receive before it ends (where the
    /// kernel takes a byte limit).
    buffers: usize,
}

impl RecvPool {
    /// A receive from `fd` into buffers of the inbox's pool, ending after
    /// `buffers` buffers' worth of bytes.
    pub(crate) fn new(fd: SharedFd, inbox: Rc<Inbox>, buffers: usize) -> RecvPool {
        RecvPool { fd, inbox, buffers }
    }
}

/// What one completion of a pooled receive means for its reader. The bytes
/// a completion carried are already in the reader's inbox (booked when it
/// was reaped), so no outcome carries bytes.
#[derive(Debug)]
pub(crate) enum RecvOutcome {
    /// Bytes arrived, and the receive stays armed.
    Data,
    /// The receive is over without an end of stream: its byte limit was
    /// reached, it was cancelled at the per-reader cap, the kernel refused
    /// the byte limit, the pool grew after running dry, or a retry. Arm it
    /// again when more bytes are wanted.
    Paused,
    /// The pool ran dry and has no free buffer (`ENOBUFS`): wait for one to
    /// come back before arming again.
    Starved,
    /// The peer closed its side: end of stream.
    End,
    /// The receive failed.
    Failed(io::Error),
}

impl RecvOutcome {
    /// Reads one completion; `last` says it ends the receive. The one place
    /// that interprets this receive's results (and tells the pool it ran
    /// dry, or that the kernel has no byte limits).
    fn of(res: CqeResult, last: bool, pool: &Pool) -> RecvOutcome {
        let e = match res.result {
            Ok(0) => return RecvOutcome::End,
            Ok(_) if last => return RecvOutcome::Paused,
            Ok(_) => return RecvOutcome::Data,
            Err(e) => e,
        };
        match e.raw_os_error() {
            // Out of buffers: the pool grows if it may; else wait for one.
            Some(libc::ENOBUFS) if pool.exhausted() => RecvOutcome::Paused,
            Some(libc::ENOBUFS) => RecvOutcome::Starved,
            // Cancelled at the per-reader cap.
            Some(libc::ECANCELED) => RecvOutcome::Paused,
            // A kernel without byte limits on multishot receives: from now
            // on receives go without one.
            Some(libc::EINVAL) if pool.refuse_limit() => RecvOutcome::Paused,
            _ if is_retry(&e) => RecvOutcome::Paused,
            _ => RecvOutcome::Failed(e),
        }
    }
}

impl Multishot<RecvPool> {
    /// The next completion of this receive, as its reader's outcome.
    /// Anything but [`RecvOutcome::Data`] means the receive is over: drop
    /// it and submit a new one for more.
    pub(crate) fn poll_outcome(&mut self, cx: &mut Context<'_>, pool: &Pool) -> Poll<RecvOutcome> {
        match ready!(self.poll_next(cx)) {
            Some((res, last)) => Poll::Ready(RecvOutcome::of(res, last, pool)),
            None => Poll::Ready(RecvOutcome::Paused),
        }
    }
}

/// Offset of `optlen` in `struct io_uring_sqe` (include/uapi/linux/io_uring.h:
/// the `u32` of the union with `file_index`, after the `u16 personality` at
/// byte 42 and before `addr3` at byte 48).
const SQE_OPTLEN: usize = 44;

// What `with_byte_limit` relies on: the io-uring crate's entry is the
// kernel's 64-byte sqe (`#[repr(C)]` around `io_uring_sqe`), and `optlen` is
// an aligned `u32` inside it. The tests below check the offset against the
// crate's own `SetSockOpt`, which writes `optlen` by name.
const _: () = assert!(std::mem::size_of::<squeue::Entry>() == 64);
const _: () = assert!(std::mem::align_of::<squeue::Entry>() == 8);
const _: () = assert!(SQE_OPTLEN.is_multiple_of(4) && SQE_OPTLEN + 4 <= 64);

/// Sets a multishot receive's overall byte limit (`sqe->optlen`, Linux
/// 6.17, `IORING_RECV_MSHOT_LIM`): the kernel ends the receive once that
/// many bytes arrived, so one reader never takes more than its share of the
/// pool, however fast its peer sends. The io-uring crate (0.7) has no
/// setter for it, so this is the one place that writes into the entry's
/// private layout.
fn with_byte_limit(entry: squeue::Entry, limit: u32) -> squeue::Entry {
    // SAFETY: `squeue::Entry` is `#[repr(C)]` around the kernel's 64-byte
    // `io_uring_sqe` (the transmute and the asserts above check the size),
    // and every bit pattern is a valid sqe for the round trip.
    let mut raw: [u8; 64] = unsafe { std::mem::transmute(entry) };
    raw[SQE_OPTLEN..SQE_OPTLEN + 4].copy_from_slice(&limit.to_ne_bytes());
    // SAFETY: as above, back to the entry it came from.
    unsafe { std::mem::transmute::<[u8; 64], squeue::Entry>(raw) }
}

impl Operation for RecvPool {
    type Output = CqeResult;
    const CANCEL_ON_DROP: bool = true;

    fn entry(&mut self) -> squeue::Entry {
        let fd = types::Fd(self.fd.raw());
        let pool = self.inbox.pool();
        let entry = match pool.mode() {
            PoolMode::Bundles => opcode::RecvMultiBundle::new(fd, pool.bgid()).build(),
            PoolMode::Plain | PoolMode::Incremental => {
                opcode::RecvMulti::new(fd, pool.bgid()).build()
            }
        };
        match pool.receive_limit(self.buffers) {
            Some(limit) => with_byte_limit(entry, limit),
            None => entry,
        }
    }

    fn attempt(&mut self) -> Attempt {
        let fd = self.fd.raw();
        let pool = self.inbox.pool();
        let Some((bid, ptr, len)) = pool.select() else {
            return Attempt::Done(-libc::ENOBUFS);
        };
        // SAFETY: `ptr` is the start of pool buffer `bid`, valid for `len`
        // bytes and picked for this receive alone until it is booked
        // (`Inbox::receive`) or given back (`unselect`).
        let res = syscall_result(unsafe { libc::recv(fd, ptr.cast(), len, libc::MSG_DONTWAIT) });
        if res > 0 {
            return Attempt::Selected { res, bid };
        }
        pool.unselect(bid);
        or_wait(res, fd, Interest::Read)
    }

    fn transfer_len(&self) -> Option<usize> {
        Some(self.inbox.pool().config().get_buffer_size())
    }

    fn complete(self, res: CqeResult) -> CqeResult {
        res
    }

    fn observe(&mut self, res: &CqeResult) {
        // Booked at once, in completion order: the pool's counts stay right
        // while the completion waits, and bundles are read off the ring
        // before anything is published over them. Buffers of completions
        // nobody collects go back when the inbox goes.
        if let Ok(len) = res.result {
            self.inbox.receive(res.flags, len as usize);
        }
    }

    fn queue_cap(&self) -> usize {
        self.inbox.pool().config().get_per_reader()
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::io::Write;
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::time::Duration;

    use super::*;
    use crate::driver::{Kind, PoolConfig};

    /// A completion with result `res`.
    fn cqe(res: io::Result<u32>) -> CqeResult {
        CqeResult {
            result: res,
            flags: 0,
        }
    }

    fn errno(e: i32) -> CqeResult {
        cqe(Err(io::Error::from_raw_os_error(e)))
    }

    /// A user-space pool of `n` buffers that never grows.
    fn pool(n: usize) -> Pool {
        Pool::user(PoolConfig::new().buffer_size(16).buffers(n).max_buffers(n))
    }

    #[test]
    fn completions_read_as_outcomes() {
        let pool = pool(2);
        let of = |res, last| RecvOutcome::of(res, last, &pool);
        assert!(matches!(of(cqe(Ok(5)), false), RecvOutcome::Data));
        assert!(matches!(of(cqe(Ok(5)), true), RecvOutcome::Paused));
        assert!(matches!(of(cqe(Ok(0)), true), RecvOutcome::End));
        assert!(matches!(
            of(errno(libc::ECANCELED), true),
            RecvOutcome::Paused
        ));
        assert!(matches!(of(errno(libc::EINTR), true), RecvOutcome::Paused));
        assert!(matches!(of(errno(libc::EAGAIN), true), RecvOutcome::Paused));
        // Buffers are free, so running dry is only a pause.
        assert!(matches!(
            of(errno(libc::ENOBUFS), true),
            RecvOutcome::Paused
        ));
        match of(errno(libc::ECONNRESET), true) {
            RecvOutcome::Failed(e) => assert_eq!(e.raw_os_error(), Some(libc::ECONNRESET)),
            other => panic!("a reset is a failure, got {other:?}"),
        }
        // A user-space pool sets no byte limit, so EINVAL is the kernel's.
        assert!(matches!(
            of(errno(libc::EINVAL), true),
            RecvOutcome::Failed(_)
        ));
    }

    #[test]
    fn running_dry_without_a_free_buffer_starves() {
        let pool = pool(2);
        assert!(pool.select().is_some() && pool.select().is_some());
        let outcome = RecvOutcome::of(errno(libc::ENOBUFS), true, &pool);
        assert!(matches!(outcome, RecvOutcome::Starved), "{outcome:?}");
    }

    /// The sqe field `with_byte_limit` writes is the one the io-uring crate
    /// itself calls `optlen` (in `SetSockOpt`), and it changes nothing else.
    #[test]
    fn byte_limit_writes_optlen_only() {
        let bytes = |e: squeue::Entry| -> [u8; 64] {
            // SAFETY: a 64-byte `repr(C)` entry read as its bytes.
            unsafe { std::mem::transmute(e) }
        };
        let marker = 0xA1B2_C3D4_u32;
        let sockopt = opcode::SetSockOpt::new(types::Fd(3), 0, 0, std::ptr::null(), marker);
        let raw = bytes(sockopt.build());
        assert_eq!(raw[SQE_OPTLEN..SQE_OPTLEN + 4], marker.to_ne_bytes());
        let recv = || opcode::RecvMulti::new(types::Fd(3), 7).build().user_data(9);
        let (before, after) = (bytes(recv()), bytes(with_byte_limit(recv(), marker)));
        assert_eq!(before[SQE_OPTLEN..SQE_OPTLEN + 4], [0; 4]);
        assert_eq!(after[SQE_OPTLEN..SQE_OPTLEN + 4], marker.to_ne_bytes());
        assert_eq!(before[..SQE_OPTLEN], after[..SQE_OPTLEN]);
        assert_eq!(before[SQE_OPTLEN + 4..], after[SQE_OPTLEN + 4..]);
    }

    /// Against the kernel: a multishot receive limited to two 16-byte
    /// buffers' worth delivers exactly 32 of the 100 bytes waiting, then
    /// ends without an error; the other 68 stay in the socket.
    #[test]
    fn kernel_ends_a_limited_receive_after_its_limit() {
        let config = PoolConfig::new().buffer_size(16).buffers(8).per_reader(64);
        let rt = crate::Runtime::builder()
            .driver(Kind::IoUring)
            .pool(config)
            .build()
            .unwrap();
        rt.block_on(async {
            let pool = crate::driver::current().unwrap().pool().unwrap();
            let Some(limit) = pool.receive_limit(2) else {
                eprintln!("skipped: this kernel has no receive byte limits");
                return;
            };
            assert_eq!(limit, 32);
            let (ours, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
            let raw = ours.as_raw_fd();
            let fd = SharedFd::new(OwnedFd::from(ours));
            peer.write_all(&[7; 100]).unwrap();
            let inbox = Rc::new(Inbox::new(pool.clone()));
            let mut recv = Multishot::submit(RecvPool::new(fd.clone(), inbox.clone(), 2));
            let ended = crate::time::timeout(Duration::from_secs(5), async {
                loop {
                    match poll_fn(|cx| recv.poll_outcome(cx, &pool)).await {
                        RecvOutcome::Data => continue,
                        RecvOutcome::Paused => break,
                        other => panic!("the limit ends the receive, got {other:?}"),
                    }
                }
            });
            ended.await.expect("the receive ends at its limit");
            drop(recv);
            let mut got = 0;
            while let Some(chunk) = inbox.pop() {
                got += chunk.len();
                pool.give_back(chunk);
            }
            assert_eq!(got, 32, "the receive took its limit's worth");
            let mut rest = [0u8; 200];
            // SAFETY: `rest` is valid for its length; `raw` is kept open by `fd`.
            let n = unsafe { libc::recv(raw, rest.as_mut_ptr().cast(), 200, libc::MSG_DONTWAIT) };
            assert_eq!(n, 68, "the rest waits in the socket");
            drop(fd);
        });
    }
}
