//! The epoll backend's side of the operations: system call results, and
//! waiting for readiness.

use std::io;
use std::os::fd::RawFd;

use crate::driver::{Attempt, Interest};
use crate::error::Retry;

/// A system call's return value as a completion result: itself, or `-errno`.
/// The one place the epoll backend's system call results are read.
pub(crate) fn syscall_result(ret: isize) -> i32 {
    if ret < 0 {
        -io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    } else {
        i32::try_from(ret).unwrap_or(i32::MAX)
    }
}

/// `-EAGAIN` means: wait until `fd` is ready for `interest`.
pub(crate) fn or_wait(res: i32, fd: RawFd, interest: Interest) -> Attempt {
    if crate::error::retry_of_errno(-res) == Retry::WhenReady {
        Attempt::Wait(fd, interest)
    } else {
        Attempt::Done(res)
    }
}

/// Whether `fd` is ready for `interest` now (for fds that may be blocking,
/// such as pipes and terminals shared with other processes).
pub(crate) fn ready_now(fd: RawFd, interest: Interest) -> bool {
    let events = match interest {
        Interest::Read => libc::POLLIN,
        Interest::Write => libc::POLLOUT,
    };
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd for the duration of the call.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n != 0
}

/// Reads from a stream fd without blocking: `recv` for sockets, else a
/// `read` once the fd is readable.
pub(crate) fn read_stream(fd: RawFd, ptr: *mut u8, len: usize) -> Attempt {
    // SAFETY: the caller passes memory it owns, valid for `len` bytes.
    let res = syscall_result(unsafe { libc::recv(fd, ptr.cast(), len, libc::MSG_DONTWAIT) });
    if res != -libc::ENOTSOCK {
        return or_wait(res, fd, Interest::Read);
    }
    if !ready_now(fd, Interest::Read) {
        return Attempt::Wait(fd, Interest::Read);
    }
    // SAFETY: as above.
    or_wait(
        syscall_result(unsafe { libc::read(fd, ptr.cast(), len) }),
        fd,
        Interest::Read,
    )
}
