//! Receive into a buffer the kernel picks from the runtime's pool when data
//! arrives: multishot `IORING_OP_RECV` with `IOSQE_BUFFER_SELECT` on
//! io_uring; on epoll a non-blocking `recv` that takes a free pool buffer only
//! once the socket is readable. Either way the completion names the buffer
//! (`IORING_CQE_F_BUFFER`), and nothing is held while the socket is idle.

use std::rc::Rc;

use io_uring::{opcode, squeue, types};

use super::{Operation, or_wait, syscall_result};
use crate::driver::{Attempt, CqeResult, Interest, Pool, SharedFd, completion_buffer};

/// A receive from the pool: its output is only the completion, whose
/// buffer the caller takes from the pool.
#[derive(Debug)]
pub(crate) struct RecvPool {
    /// Keeps the socket open while the kernel uses it.
    fd: SharedFd,
    /// Where buffers come from and go back to.
    pool: Rc<Pool>,
}

impl RecvPool {
    /// A receive from `fd` into `pool`'s buffers.
    pub(crate) fn new(fd: SharedFd, pool: Rc<Pool>) -> RecvPool {
        RecvPool { fd, pool }
    }

    /// A completion nobody collects: its buffer goes straight back.
    fn release(&self, res: &CqeResult) {
        if let Some(bid) = completion_buffer(res.flags) {
            self.pool.recycle(bid);
        }
    }
}

impl Operation for RecvPool {
    type Output = CqeResult;
    const CANCEL_ON_DROP: bool = true;

    fn entry(&mut self) -> squeue::Entry {
        opcode::RecvMulti::new(types::Fd(self.fd.raw()), self.pool.bgid()).build()
    }

    fn attempt(&mut self) -> Attempt {
        let fd = self.fd.raw();
        let Some((bid, ptr, len)) = self.pool.select() else {
            return Attempt::Done(-libc::ENOBUFS);
        };
        // SAFETY: `ptr` is the start of pool buffer `bid`, valid for `len`
        // bytes and picked for this receive alone until it is recycled or
        // taken.
        let res = syscall_result(unsafe { libc::recv(fd, ptr.cast(), len, libc::MSG_DONTWAIT) });
        if res > 0 {
            return Attempt::Selected { res, bid };
        }
        self.pool.recycle(bid);
        or_wait(res, fd, Interest::Read)
    }

    fn complete(self, res: CqeResult) -> CqeResult {
        res
    }

    fn abandoned(self, res: CqeResult) {
        self.release(&res);
    }

    fn abandoned_one(&mut self, res: CqeResult) {
        self.release(&res);
    }

    fn observe(&mut self, res: &CqeResult) {
        // Booked at once, so the pool's count of free buffers is right
        // while the completion waits to be collected.
        if let Some(bid) = completion_buffer(res.flags) {
            self.pool.picked(bid);
        }
    }

    fn queue_cap(&self) -> usize {
        self.pool.config().get_per_reader()
    }
}
