//! Receive into a buffer the kernel picks from the runtime's pool when data
//! arrives: multishot `IORING_OP_RECV` with `IOSQE_BUFFER_SELECT` on
//! io_uring (as a bundle where the pool uses them); on epoll a non-blocking
//! `recv` that takes a free pool buffer only once the socket is readable.
//! Either way the completion names the buffer (`IORING_CQE_F_BUFFER`), and
//! nothing is held while the socket is idle.

use std::rc::Rc;

use io_uring::{opcode, squeue, types};

use super::{Operation, or_wait, syscall_result};
use crate::driver::{Attempt, CqeResult, Inbox, Interest, PoolMode, SharedFd};

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

/// Offset of `optlen` in `struct io_uring_sqe` (include/uapi/linux/io_uring.h:
/// the union with `file_index` after `personality`).
const SQE_OPTLEN: usize = 44;

/// Sets a multishot receive's overall byte limit (`sqe->optlen`, Linux
/// 6.17): the kernel ends the receive once that many bytes arrived, so one
/// reader never takes more than its share of the pool, however fast its
/// peer sends. The io-uring crate has no setter for it.
fn with_byte_limit(entry: squeue::Entry, limit: u32) -> squeue::Entry {
    // SAFETY: `squeue::Entry` is `#[repr(C)]` around the kernel's 64-byte
    // `io_uring_sqe` (the transmute checks the size), and every bit pattern
    // is a valid sqe for the round trip; `optlen` is the `u32` at byte 44.
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
