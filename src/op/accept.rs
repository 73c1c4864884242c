//! `IORING_OP_ACCEPT`: accept one connection.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use io_uring::{opcode, squeue, types};

use super::{Operation, or_wait, ready_now, syscall_result};
use crate::driver::{Attempt, CqeResult, Interest, SharedFd};

/// Accepts a connection on a listening socket; the new fd is close-on-exec.
pub(crate) struct Accept {
    /// Keeps the listener open while the kernel uses it.
    fd: SharedFd,
    /// The kernel writes the peer's address here.
    addr: libc::sockaddr_storage,
    /// In: size of `addr`; out: length of the address written.
    len: libc::socklen_t,
}

impl std::fmt::Debug for Accept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accept")
            .field("fd", &self.fd)
            .finish_non_exhaustive()
    }
}

impl Accept {
    /// An accept on the listener `fd`.
    pub(crate) fn new(fd: SharedFd) -> Accept {
        Accept {
            fd,
            // SAFETY: sockaddr_storage is plain data; zero is a valid value.
            addr: unsafe { std::mem::zeroed() },
            len: std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }
}

impl Operation for Accept {
    /// The new socket and the peer's raw address.
    type Output = io::Result<(OwnedFd, libc::sockaddr_storage, libc::socklen_t)>;
    const CANCEL_ON_DROP: bool = true;

    fn entry(&mut self) -> squeue::Entry {
        opcode::Accept::new(
            types::Fd(self.fd.raw()),
            (&mut self.addr as *mut libc::sockaddr_storage).cast(),
            &mut self.len,
        )
        .flags(libc::SOCK_CLOEXEC)
        .build()
    }

    fn attempt(&mut self) -> Attempt {
        self.len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let addr = (&mut self.addr as *mut libc::sockaddr_storage).cast();
        // SAFETY: `addr`/`len` are owned fields sized for any address.
        unsafe { accept_now(self.fd.raw(), addr, &mut self.len) }
    }

    fn complete(self, res: CqeResult) -> Self::Output {
        let fd = res.result?;
        // SAFETY: a successful accept returns a new fd that nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok((fd, self.addr, self.len))
    }

    fn abandoned(self, res: CqeResult) {
        // The accept completed after its future was dropped: close the fd.
        drop(self.complete(res));
    }
}

/// epoll: `accept4` on the listener `fd` once it polls readable (it may be
/// blocking), close-on-exec, with the peer's address into `addr`/`len`
/// (both null: no address).
///
/// # Safety
///
/// `addr` and `len` are null, or valid for the call and `*len` bytes.
pub(super) unsafe fn accept_now(
    fd: std::os::fd::RawFd,
    addr: *mut libc::sockaddr,
    len: *mut libc::socklen_t,
) -> Attempt {
    if !ready_now(fd, Interest::Read) {
        return Attempt::Wait(fd, Interest::Read);
    }
    // SAFETY: the caller vouches for `addr` and `len`.
    let ret = unsafe { libc::accept4(fd, addr, len, libc::SOCK_CLOEXEC) };
    or_wait(syscall_result(ret as isize), fd, Interest::Read)
}
