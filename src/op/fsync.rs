//! `IORING_OP_FSYNC`: flush a file's data (and metadata) to its device.

use std::io;

use io_uring::{opcode, squeue, types};

use super::{Operation, syscall_result};
use crate::driver::{Attempt, CqeResult, SharedFd};

/// Syncs the whole file, like `fsync(2)` (or `fdatasync(2)` with `data_only`).
#[derive(Debug)]
pub(crate) struct Fsync {
    /// Keeps the fd open while the kernel syncs it.
    fd: SharedFd,
    /// Sync only the data and the metadata needed to read it back.
    data_only: bool,
}

impl Fsync {
    /// A sync of the file behind `fd`.
    pub(crate) fn new(fd: SharedFd, data_only: bool) -> Fsync {
        Fsync { fd, data_only }
    }
}

impl Operation for Fsync {
    type Output = io::Result<()>;

    fn entry(&mut self) -> squeue::Entry {
        let flags = if self.data_only {
            types::FsyncFlags::DATASYNC
        } else {
            types::FsyncFlags::empty()
        };
        opcode::Fsync::new(types::Fd(self.fd.raw()))
            .flags(flags)
            .build()
    }

    fn attempt(&mut self) -> Attempt {
        let fd = self.fd.raw();
        // SAFETY: plain integers.
        let ret = unsafe {
            if self.data_only {
                libc::fdatasync(fd)
            } else {
                libc::fsync(fd)
            }
        };
        Attempt::Done(syscall_result(ret as isize))
    }

    fn complete(self, res: CqeResult) -> Self::Output {
        res.result.map(drop)
    }
}
