//! The owned halves of a stream socket, one generic pair for TCP and Unix.
//!
//! [`TcpStream::into_split`](super::TcpStream::into_split) and
//! [`UnixStream::into_split`](super::UnixStream::into_split) both give an
//! [`OwnedReadHalf`] and an [`OwnedWriteHalf`] sharing the socket; the type
//! parameter is the stream they came from, which decides only how addresses
//! are read ([`Family`]). `tcp::OwnedReadHalf` and friends are aliases of
//! these (tokio's names).

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::net::Shutdown;
use std::os::fd::FromRawFd;

use bytes::{Bytes, BytesMut};

use super::socket;
use crate::driver::SharedFd;
use crate::source::{ReadSource, WriteSink, sealed};

/// A stream socket type whose halves these are: [`TcpStream`](super::TcpStream)
/// or [`UnixStream`](super::UnixStream). Sealed.
pub trait Family: private::Sealed + 'static {
    /// The socket address of the family.
    type Addr;
    /// The std stream type the address calls borrow the fd as.
    #[doc(hidden)]
    type Std: FromRawFd;
    /// The peer's address of a connected socket.
    #[doc(hidden)]
    fn peer_addr(s: &Self::Std) -> io::Result<Self::Addr>;
    /// The socket's own address.
    #[doc(hidden)]
    fn local_addr(s: &Self::Std) -> io::Result<Self::Addr>;
}

/// Seals [`Family`]: only this crate's streams are families.
mod private {
    /// Implemented by `TcpStream` and `UnixStream` only.
    pub trait Sealed {}
}
impl private::Sealed for super::TcpStream {}
impl private::Sealed for super::UnixStream {}

/// The peer address of the connected socket `fd` of family `S`.
pub(super) fn peer_addr<S: Family>(fd: &SharedFd) -> io::Result<S::Addr> {
    socket::with_std(fd, S::peer_addr)
}

/// The local address of the socket `fd` of family `S`.
pub(super) fn local_addr<S: Family>(fd: &SharedFd) -> io::Result<S::Addr> {
    socket::with_std(fd, S::local_addr)
}

/// Both halves of the stream socket `fd`.
pub(super) fn split<S: Family>(fd: SharedFd) -> (OwnedReadHalf<S>, OwnedWriteHalf<S>) {
    let read = OwnedReadHalf {
        fd: fd.clone(),
        family: PhantomData,
    };
    (
        read,
        OwnedWriteHalf {
            fd,
            family: PhantomData,
        },
    )
}

/// The reading half of a stream `S`, from its `into_split`.
pub struct OwnedReadHalf<S: Family> {
    /// The stream's socket, shared with the write half.
    fd: SharedFd,
    /// Which stream it came from (addresses only).
    family: PhantomData<fn() -> S>,
}

/// The writing half of a stream `S`, from its `into_split`.
///
/// Dropping it does *not* shut down the write direction (the read half keeps
/// the socket open): call [`shutdown`](OwnedWriteHalf::shutdown) for the peer
/// to see end of stream before the read half is dropped too.
pub struct OwnedWriteHalf<S: Family> {
    /// The stream's socket, shared with the read half.
    fd: SharedFd,
    /// Which stream it came from (addresses only).
    family: PhantomData<fn() -> S>,
}

impl<S: Family> OwnedReadHalf<S> {
    /// As the stream's `read`: receives into `buf`'s spare capacity and
    /// appends; `0` at end of stream.
    pub async fn read(&self, buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        socket::read(&self.fd, buf).await
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<S::Addr> {
        peer_addr::<S>(&self.fd)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<S::Addr> {
        local_addr::<S>(&self.fd)
    }
}

impl<S: Family> OwnedWriteHalf<S> {
    /// As the stream's `write`: sends a prefix of `buf`.
    pub async fn write(&self, buf: impl Into<Bytes>) -> (io::Result<usize>, Bytes) {
        socket::write(&self.fd, buf.into()).await
    }

    /// As the stream's `write_all`: sends all of `buf`, resuming short sends.
    pub async fn write_all(&self, buf: impl Into<Bytes>) -> (io::Result<()>, Bytes) {
        socket::write_all(&self.fd, buf.into()).await
    }

    /// Shuts down the write direction: the peer reads end of stream.
    pub async fn shutdown(&self) -> io::Result<()> {
        socket::shutdown(&self.fd, Shutdown::Write).await
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<S::Addr> {
        peer_addr::<S>(&self.fd)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<S::Addr> {
        local_addr::<S>(&self.fd)
    }
}

impl<S: Family> fmt::Debug for OwnedReadHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedReadHalf")
            .field("fd", &self.fd)
            .finish()
    }
}

impl<S: Family> fmt::Debug for OwnedWriteHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedWriteHalf")
            .field("fd", &self.fd)
            .finish()
    }
}

impl<S: Family> sealed::Fd for OwnedReadHalf<S> {
    fn shared_fd(&self) -> &SharedFd {
        &self.fd
    }
}
impl<S: Family> sealed::Read for OwnedReadHalf<S> {
    fn reads_socket(&self) -> bool {
        true
    }
}
impl<S: Family> ReadSource for OwnedReadHalf<S> {}

impl<S: Family> sealed::Fd for OwnedWriteHalf<S> {
    fn shared_fd(&self) -> &SharedFd {
        &self.fd
    }
}
impl<S: Family> sealed::Write for OwnedWriteHalf<S> {
    fn is_socket(&self) -> bool {
        true
    }
}
impl<S: Family> WriteSink for OwnedWriteHalf<S> {}
