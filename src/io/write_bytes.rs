//! `BufWriter::write_bytes`: an owned buffer sent from its own memory,
//! with zero-copy sends where the kernel has them.

use std::future::poll_fn;
use std::io;

use bytes::{Buf, Bytes};

use super::BufWriter;
use super::poison::Guard;
use crate::driver::Cap;
use crate::op::send_zc::{self, SendZc};
use crate::op::{Multishot, Op, Send};
use crate::source::WriteSink;

/// How often zero-copy sends were really zero-copy, from the kernel's
/// notifications (`IORING_SEND_ZC_REPORT_USAGE`), for this process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZeroCopyUsage {
    /// Notifications received: one per zero-copy send that was issued.
    pub notifications: u64,
    /// Of those, the ones where the kernel copied the bytes after all
    /// (always, over loopback; a real NIC is needed to avoid the copy).
    pub copied: u64,
}

/// The zero-copy usage counters of this process (see [`ZeroCopyUsage`]).
pub fn zero_copy_usage() -> ZeroCopyUsage {
    let (notifications, copied) = send_zc::usage();
    ZeroCopyUsage {
        notifications,
        copied,
    }
}

impl<S: WriteSink> BufWriter<S> {
    /// Sends `buf` after everything buffered, without copying it into the
    /// writer's buffer: the writer is flushed, then `buf` goes to the
    /// socket from its own memory, with `IORING_OP_SEND_ZC` where the
    /// runtime has [`Capability::SendZc`](crate::Capability::SendZc) and
    /// `buf` is at least the runtime's
    /// [`zero_copy_threshold`](crate::Builder::zero_copy_threshold)
    /// (default 16 KiB; the kernel sends from `buf`'s pages), else with a
    /// plain send (the kernel copies, but this crate does not). Short sends
    /// are resumed.
    /// Sockets that refuse zero-copy sends (Unix sockets) get plain sends.
    /// For sinks that are not sockets it is [`write_all`](BufWriter::write_all).
    ///
    /// Cost: each zero-copy send completes twice (the result, then a
    /// notification once the network no longer needs the pages); `buf`
    /// is kept, by the runtime, until that notification, so it is freed
    /// only then even if this future or the writer is dropped. Zero-copy
    /// pays off only for large buffers on a real NIC (hence the threshold,
    /// which needs measuring there): over loopback the kernel copies
    /// anyway ([`zero_copy_usage`] counts how often).
    ///
    /// Cancel safety: dropped while flushing, nothing of `buf` was sent
    /// and the writer is as before. Dropped (or failed) after the first
    /// send was submitted, the socket holds an unknown prefix of `buf`, so
    /// the writer is poisoned: every later write, flush and shutdown fails
    /// saying the stream is short.
    ///
    /// ```
    /// use uring_bufio::{io::BufWriter, net::UnixStream};
    /// uring_bufio::Runtime::new()?.block_on(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     let mut w = BufWriter::new(a);
    ///     w.write_all(b"head ").await?;
    ///     w.write_bytes(bytes::Bytes::from_static(b"body")).await?;
    ///     w.shutdown().await?;
    ///     let (n, buf) = b.read(bytes::BytesMut::with_capacity(64)).await;
    ///     assert_eq!(&buf[..n?], b"head body");
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub async fn write_bytes(&mut self, buf: Bytes) -> io::Result<()> {
        if !self.get_ref().is_socket() {
            return self.write_all(&buf).await;
        }
        self.flush().await?;
        let mut zero_copy = use_zero_copy(buf.len())?;
        let mut guard = Guard::new(self, "write_bytes");
        let fd = guard.writer.get_ref().shared_fd().clone();
        let mut rest = buf;
        while !rest.is_empty() {
            guard.touched = true;
            let res = if zero_copy {
                send_zero_copy(SendZc::new(fd.clone(), rest.clone())).await
            } else {
                Op::submit(Send::new(fd.clone(), rest.clone())).await.0
            };
            match res {
                Ok(0) => return Err(crate::error::write_zero(0, rest.len())),
                Ok(n) => {
                    rest.advance(n);
                    guard.sent += n as u64;
                }
                Err(e) if crate::error::is_retry(&e) => {}
                // Sockets without zero-copy support (Unix sockets): nothing
                // was sent; plain sends from here on.
                Err(e) if zero_copy && e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                    zero_copy = false;
                }
                Err(e) => return Err(e),
            }
        }
        guard.done = true;
        Ok(())
    }
}

/// Whether a `write_bytes` of `len` bytes goes out zero-copy: where the
/// runtime has the capability and `len` reaches its threshold
/// ([`Builder::zero_copy_threshold`](crate::Builder::zero_copy_threshold)).
fn use_zero_copy(len: usize) -> io::Result<bool> {
    if !crate::rt::context::driver_has(Cap::SendZc) {
        return Ok(false);
    }
    let threshold = crate::rt::context::current_driver()?.zero_copy_threshold();
    Ok(threshold.is_some_and(|t| len >= t))
}

/// Submits `op` and returns its first completion (the send's result);
/// the notification that may follow is left to the driver's table, which
/// keeps the bytes until it arrives.
async fn send_zero_copy(op: SendZc) -> io::Result<usize> {
    let mut op = Multishot::submit(op);
    match poll_fn(|cx| op.poll_next(cx)).await {
        Some((res, _last)) => res.result.map(|n| n as usize),
        None => unreachable!("a multishot entry yields at least one completion"),
    }
}
