//! `IORING_OP_OPENAT`: open a file.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use io_uring::{opcode, squeue, types};

use super::{Operation, syscall_result};
use crate::driver::{Attempt, CqeResult};

/// Opens `path` relative to the current directory.
#[derive(Debug)]
pub(crate) struct OpenAt {
    /// The path the kernel reads.
    path: CString,
    /// `open(2)` flags (close-on-exec always added).
    flags: i32,
    /// Mode for created files.
    mode: libc::mode_t,
}

impl OpenAt {
    /// An open of `path` with `flags` and `mode`.
    pub(crate) fn new(path: CString, flags: i32, mode: libc::mode_t) -> OpenAt {
        OpenAt {
            path,
            flags: flags | libc::O_CLOEXEC,
            mode,
        }
    }
}

impl Operation for OpenAt {
    type Output = io::Result<OwnedFd>;

    fn entry(&mut self) -> squeue::Entry {
        opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
            .flags(self.flags)
            .mode(self.mode)
            .build()
    }

    fn attempt(&mut self) -> Attempt {
        // SAFETY: `path` is an owned NUL-terminated string.
        let ret = unsafe {
            libc::openat(
                libc::AT_FDCWD,
                self.path.as_ptr(),
                self.flags,
                self.mode as libc::c_uint,
            )
        };
        Attempt::Done(syscall_result(ret as isize))
    }

    fn complete(self, res: CqeResult) -> Self::Output {
        let fd = res.result?;
        // SAFETY: a successful open returns a new fd that nobody else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }

    fn abandoned(self, res: CqeResult) {
        // Opened after its future was dropped: close the fd.
        drop(self.complete(res));
    }
}
