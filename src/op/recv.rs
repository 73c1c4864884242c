//! `IORING_OP_RECV`: receive from a socket into the spare capacity of a `BytesMut`.

use std::io;

use bytes::BytesMut;
use io_uring::{opcode, squeue, types};

use super::{Operation, filled, or_wait, syscall_result};
use crate::driver::{Attempt, CqeResult, Interest, SharedFd};

/// Receives at most `buf.capacity() - buf.len()` bytes.
#[derive(Debug)]
pub(crate) struct Recv {
    /// Keeps the socket open while the kernel uses it.
    fd: SharedFd,
    /// The kernel writes into its spare capacity.
    buf: BytesMut,
    /// Most bytes asked for (a test fault may lower it).
    max: usize,
}

impl Recv {
    /// A receive into `buf`'s spare capacity.
    pub(crate) fn new(fd: SharedFd, buf: BytesMut) -> Recv {
        Recv {
            fd,
            buf,
            max: usize::MAX,
        }
    }
}

impl Operation for Recv {
    type Output = (io::Result<usize>, BytesMut);
    const CANCEL_ON_DROP: bool = true;

    fn entry(&mut self) -> squeue::Entry {
        let spare = self.buf.spare_capacity_mut();
        let len = u32::try_from(spare.len().min(self.max)).unwrap_or(u32::MAX);
        opcode::Recv::new(types::Fd(self.fd.raw()), spare.as_mut_ptr().cast(), len).build()
    }

    fn attempt(&mut self) -> Attempt {
        let fd = self.fd.raw();
        let spare = self.buf.spare_capacity_mut();
        // SAFETY: the spare capacity of the owned buffer, its length.
        let ret = unsafe {
            libc::recv(
                fd,
                spare.as_mut_ptr().cast(),
                spare.len().min(self.max),
                libc::MSG_DONTWAIT,
            )
        };
        or_wait(syscall_result(ret), fd, Interest::Read)
    }

    fn transfer_len(&self) -> Option<usize> {
        Some(self.buf.capacity() - self.buf.len())
    }

    fn limit(&mut self, max: usize) {
        self.max = max;
    }

    fn take_kernel_buffer(&mut self) -> Option<BytesMut> {
        Some(std::mem::take(&mut self.buf))
    }

    fn complete(self, res: CqeResult) -> Self::Output {
        filled(self.buf, res)
    }
}
