//! What the buffered layer needs from a source: its fd, where the next read
//! or write goes, and what kind of fd it is.
//!
//! The traits are sealed: the crate's own sources implement them (files,
//! sockets and their halves, stdio), so the buffered layer can trust that
//! the fd stays open for as long as the source lives.

use std::cell::Cell;
use std::future::poll_fn;
use std::io;

use crate::driver::SharedFd;
use crate::op::{self, Op};

pub(crate) mod sealed {
    use std::cell::Cell;

    use crate::driver::SharedFd;

    /// A source's fd.
    pub trait Fd {
        /// The fd, shared with every operation in flight on it.
        fn shared_fd(&self) -> &SharedFd;
    }

    /// Reading side.
    pub trait Read: Fd {
        /// The offset of the next read, kept by the source (files); `None`
        /// for streams, which read at their current position.
        fn read_pos(&self) -> Option<&Cell<u64>> {
            None
        }
        /// A socket: reads use `recv` (which can wait for readiness first).
        fn reads_socket(&self) -> bool {
            false
        }
    }

    /// Writing side.
    pub trait Write: Fd {
        /// The offset of the next write, kept by the source (files); `None`
        /// for streams.
        fn write_pos(&self) -> Option<&Cell<u64>> {
            None
        }
        /// A socket: writes use `sendmsg` without SIGPIPE, and `shutdown`
        /// shuts the write direction.
        fn is_socket(&self) -> bool;
    }
}

/// A source [`BufReader`](crate::io::BufReader) can read from: [`File`](crate::fs::File),
/// [`TcpStream`](crate::net::TcpStream) and its read half,
/// [`UnixStream`](crate::net::UnixStream) and its read half, [`Stdin`](crate::stdio::Stdin).
pub trait ReadSource: sealed::Read + Unpin + 'static {}

/// A sink [`BufWriter`](crate::io::BufWriter) can write to: [`File`](crate::fs::File),
/// [`TcpStream`](crate::net::TcpStream) and its write half,
/// [`UnixStream`](crate::net::UnixStream) and its write half,
/// [`Stdout`](crate::stdio::Stdout), [`Stderr`](crate::stdio::Stderr).
pub trait WriteSink: sealed::Write + Unpin + 'static {}

/// Closes `fd` once no operation holds it any more, and reports the result.
pub(crate) async fn close(fd: SharedFd) -> io::Result<()> {
    poll_fn(|cx| fd.poll_unique(cx)).await;
    match fd.into_raw() {
        Some(raw) => Op::submit(op::Close::new(raw)).await,
        None => unreachable!("poll_unique returned with other holders left"),
    }
}

/// Advances a kept offset by `n` bytes.
pub(crate) fn advance(pos: Option<&Cell<u64>>, n: usize) {
    if let Some(pos) = pos {
        pos.set(pos.get() + n as u64);
    }
}
