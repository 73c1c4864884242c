//! `IORING_OP_CONNECT`: connect a socket.

use std::io;

use io_uring::{opcode, squeue, types};

use super::{Operation, syscall_result};
use crate::driver::{Attempt, CqeResult, Interest, SharedFd};

/// Connects the socket `fd` to `addr`. The socket is owned by the operation
/// until it completes, so a dropped connect closes it once the kernel is done.
pub(crate) struct Connect {
    /// The socket being connected.
    fd: SharedFd,
    /// The address the kernel reads.
    addr: libc::sockaddr_storage,
    /// Length of the address in `addr`.
    len: libc::socklen_t,
    /// epoll backend: the socket's file flags before it was made
    /// non-blocking for a connect in progress.
    in_progress: Option<libc::c_int>,
}

impl std::fmt::Debug for Connect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connect")
            .field("fd", &self.fd)
            .finish_non_exhaustive()
    }
}

impl Connect {
    /// A connect of `fd` to the raw address `addr[..len]`.
    pub(crate) fn new(fd: SharedFd, addr: libc::sockaddr_storage, len: libc::socklen_t) -> Connect {
        Connect {
            fd,
            addr,
            len,
            in_progress: None,
        }
    }
}

impl Operation for Connect {
    /// The connected socket.
    type Output = io::Result<SharedFd>;
    const CANCEL_ON_DROP: bool = true;

    fn entry(&mut self) -> squeue::Entry {
        opcode::Connect::new(
            types::Fd(self.fd.raw()),
            (&self.addr as *const libc::sockaddr_storage).cast(),
            self.len,
        )
        .build()
    }

    fn attempt(&mut self) -> Attempt {
        let fd = self.fd.raw();
        if let Some(flags) = self.in_progress.take() {
            // The socket became writable: the connect finished, one way or
            // the other; SO_ERROR says which.
            let res = socket_error(fd);
            set_flags(fd, flags);
            return Attempt::Done(res);
        }
        // SAFETY: plain integers.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 {
            return Attempt::Done(syscall_result(flags as isize));
        }
        set_flags(fd, flags | libc::O_NONBLOCK);
        let addr = (&self.addr as *const libc::sockaddr_storage).cast();
        // SAFETY: `addr` is an owned address of `len` bytes.
        let res = syscall_result(unsafe { libc::connect(fd, addr, self.len) } as isize);
        if res == -libc::EINPROGRESS {
            self.in_progress = Some(flags);
            return Attempt::Wait(fd, Interest::Write);
        }
        set_flags(fd, flags);
        Attempt::Done(res)
    }

    fn complete(self, res: CqeResult) -> Self::Output {
        res.result?;
        Ok(self.fd)
    }
}

/// Sets the file status flags of `fd` (best effort: a failure leaves the
/// socket non-blocking, which the epoll backend copes with).
fn set_flags(fd: libc::c_int, flags: libc::c_int) {
    // SAFETY: plain integers.
    unsafe { libc::fcntl(fd, libc::F_SETFL, flags) };
}

/// The pending error of socket `fd` as a completion result (0 or `-errno`).
fn socket_error(fd: libc::c_int) -> i32 {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err`/`len` are valid for the kernel to write one int.
    let ret = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if ret < 0 {
        syscall_result(ret as isize)
    } else {
        -err
    }
}
