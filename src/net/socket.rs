//! Plumbing shared by the TCP and Unix sources: creating and connecting
//! sockets, owned-buffer stream IO on a
//! [`SharedFd`], and a borrowed std view of an fd for the plain socket calls
//! std already wraps (addresses, options).
//!
//! Sockets stay in blocking mode: io_uring waits for readiness itself.

use std::io;
use std::mem::ManuallyDrop;
use std::net::Shutdown;
use std::os::fd::{FromRawFd, OwnedFd};

use bytes::{Bytes, BytesMut};

use super::addr::RawAddr;
use crate::driver::SharedFd;
use crate::op::{self, Op};

/// A new close-on-exec stream socket of `domain` (`AF_INET`, `AF_INET6`,
/// `AF_UNIX`), connected to `addr` by io_uring.
///
/// The fd is in a [`SharedFd`] before the first await, so a dropped connect
/// closes it once the kernel is done with it.
pub(super) async fn connect(domain: libc::c_int, addr: RawAddr) -> io::Result<SharedFd> {
    let fd = socket(domain)?;
    let (storage, len) = addr;
    Op::submit(op::Connect::new(fd, storage, len)).await
}

/// `socket(domain, SOCK_STREAM | SOCK_CLOEXEC, 0)`, blocking mode.
fn socket(domain: libc::c_int) -> io::Result<SharedFd> {
    // SAFETY: socket(2) takes no pointers; the result is checked below.
    let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a successful socket(2) returns a new fd that nobody else owns.
    Ok(SharedFd::new(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Runs `f` on a std socket `S` that borrows `fd` without owning it.
///
/// `S` must be one of std's socket types: their methods are plain syscalls on
/// the fd and their only drop effect, closing it, is suppressed here.
pub(super) fn with_std<S: FromRawFd, R>(fd: &SharedFd, f: impl FnOnce(&S) -> R) -> R {
    // SAFETY: the fd stays open during `f`, since the `SharedFd` borrow keeps
    // it alive; `ManuallyDrop` keeps `S` from closing it afterwards (also when
    // `f` panics), so ownership never really moves.
    let view = ManuallyDrop::new(unsafe { S::from_raw_fd(fd.raw()) });
    f(&view)
}

/// Receives into `buf`'s spare capacity and appends what arrived; `Ok(0)`
/// is end of stream (or a buffer without spare capacity).
pub(super) async fn read(fd: &SharedFd, buf: BytesMut) -> (io::Result<usize>, BytesMut) {
    if buf.capacity() == buf.len() {
        return (Ok(0), buf);
    }
    let (res, buf, _) = Op::submit(op::Recv::new(fd.clone(), buf)).await;
    (res, buf)
}

/// Sends some prefix of `buf` (without SIGPIPE) and returns its length.
pub(super) async fn write(fd: &SharedFd, buf: Bytes) -> (io::Result<usize>, Bytes) {
    Op::submit(op::Send::new(fd.clone(), buf)).await
}

/// Sends all of `buf`, resuming short sends and interrupted ones.
///
/// A send of 0 bytes (from a non-empty rest) is a `WriteZero` error. On
/// error, an unknown prefix of `buf` was sent.
pub(super) async fn write_all(fd: &SharedFd, buf: Bytes) -> (io::Result<()>, Bytes) {
    let res = crate::io::write_all(&buf, |rest| write(fd, rest)).await;
    (res, buf)
}

/// Listen backlog: std's 128 overflows under bursts of connections (the
/// client then believes it is connected while the server dropped the
/// handshake, and its first request waits for SYN-ACK retries); tokio uses
/// 1024 too. The kernel caps it at `net.core.somaxconn`.
pub(super) const BACKLOG: libc::c_int = 1024;

/// Sets the backlog of the listening socket `fd` (listening again only
/// changes the backlog).
pub(super) fn listen(fd: &impl std::os::fd::AsRawFd) -> io::Result<()> {
    // SAFETY: plain integers; `fd` is a valid listening socket.
    if unsafe { libc::listen(fd.as_raw_fd(), BACKLOG) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `shutdown(2)` of one or both directions.
pub(super) async fn shutdown(fd: &SharedFd, how: Shutdown) -> io::Result<()> {
    let how = match how {
        Shutdown::Read => libc::SHUT_RD,
        Shutdown::Write => libc::SHUT_WR,
        Shutdown::Both => libc::SHUT_RDWR,
    };
    Op::submit(op::Shutdown::new(fd.clone(), how)).await
}
