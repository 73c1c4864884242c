//! `IORING_OP_READ`: read into the spare capacity of a `BytesMut`.

use std::io;

use bytes::BytesMut;
use io_uring::{opcode, squeue, types};

use super::{CURRENT_POS, Operation, filled, read_stream, syscall_result};
use crate::driver::{Attempt, CqeResult, SharedFd};

/// Reads into `buf[len..capacity]` at `offset` (or the current position /
/// none, with [`CURRENT_POS`](super::CURRENT_POS)).
#[derive(Debug)]
pub(crate) struct Read {
    /// Keeps the fd open while the kernel reads from it.
    fd: SharedFd,
    /// The kernel writes into its spare capacity; `len` grows by the result.
    buf: BytesMut,
    /// Most bytes asked for (`usize::MAX`, unless a test fault
    /// shortens the transfer through `Operation::limit`).
    max: usize,
    /// File offset, or `CURRENT_POS`.
    offset: u64,
}

impl Read {
    /// A read of at most `buf.capacity() - buf.len()` bytes.
    pub(crate) fn new(fd: SharedFd, buf: BytesMut, offset: u64) -> Read {
        Read {
            fd,
            buf,
            max: usize::MAX,
            offset,
        }
    }
}

impl Operation for Read {
    type Output = (io::Result<usize>, BytesMut);
    // Reads on sockets, pipes and terminals may never complete.
    const CANCEL_ON_DROP: bool = true;

    fn entry(&mut self) -> squeue::Entry {
        let spare = self.buf.spare_capacity_mut();
        let len = u32::try_from(spare.len().min(self.max)).unwrap_or(u32::MAX);
        opcode::Read::new(types::Fd(self.fd.raw()), spare.as_mut_ptr().cast(), len)
            .offset(self.offset)
            .build()
    }

    fn attempt(&mut self) -> Attempt {
        let fd = self.fd.raw();
        let spare = self.buf.spare_capacity_mut();
        let (ptr, len) = (spare.as_mut_ptr().cast::<u8>(), spare.len().min(self.max));
        if self.offset == CURRENT_POS {
            return read_stream(fd, ptr, len);
        }
        // SAFETY: `ptr` is the spare capacity of the owned buffer, `len` long.
        let ret = unsafe { libc::pread(fd, ptr.cast(), len, self.offset as libc::off_t) };
        match syscall_result(ret) {
            // Not seekable (a pipe): io_uring ignores the offset there too.
            res if res == -libc::ESPIPE => read_stream(fd, ptr, len),
            res => Attempt::Done(res),
        }
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
        filled(self.buf, res)
    }
}

/// Reads into the spare capacity of `buf` at `offset` now, but only bytes
/// the page cache already holds (`preadv2` with `RWF_NOWAIT`: the same
/// attempt an io_uring read makes inline before it would go to a kernel
/// worker). `WouldBlock` when they are not cached; `len` grows by the
/// result.
pub(crate) fn read_cached(fd: &SharedFd, buf: &mut BytesMut, offset: u64) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    let iov = libc::iovec {
        iov_base: spare.as_mut_ptr().cast(),
        iov_len: spare.len(),
    };
    // SAFETY: `iov` names the spare capacity of `buf`, which this call
    // borrows mutably for the whole system call (a synchronous one: the
    // kernel is done with the memory when it returns).
    let ret = unsafe { libc::preadv2(fd.raw(), &iov, 1, offset as libc::off_t, libc::RWF_NOWAIT) };
    let n = usize::try_from(ret).map_err(|_| io::Error::last_os_error())?;
    // SAFETY: the kernel initialised the first `n <= spare.len()` bytes of
    // the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}
