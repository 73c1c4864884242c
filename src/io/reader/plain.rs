//! The plain mode of [`BufReader`](super::BufReader): reads land in the
//! spare part of the reader's own buffer.
//!
//! A regular file's bytes that the page cache holds are read at once, with
//! `preadv2(RWF_NOWAIT)` from the reader's own call: the copy an io_uring
//! read would make inline in its `io_uring_enter`, without the ring's
//! submission and completion or a turn of the runtime per read (on the
//! 64-byte-line scan those made the difference to std's loop). Bytes not
//! cached go through the ring as before, so a scan never blocks the thread
//! on the disk; and the task yields once per [`CACHED_RUN`] such reads.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::fill::Stop;
use crate::buf::ReadBuffer;
use crate::error::is_retry;
use crate::op::{self, CURRENT_POS, Op, Spare};
use crate::source::{ReadSource, advance};

/// Reads without the ring in a row, at most, before the task yields to the
/// runtime once: at the default capacity a turn of the runtime per MiB of
/// a cached file (through the ring it was a turn per read).
const CACHED_RUN: u8 = 16;

/// A reader's own buffer and the read in flight into its spare part.
/// `repr(C)` with the buffer first field (see `Fill`).
#[derive(Debug)]
#[repr(C)]
pub(super) struct PlainFill {
    /// Filled bytes and room for the next read; while `inflight` is set,
    /// the spare part is split off and owned by that read.
    buf: ReadBuffer,
    /// The read in flight into the buffer's spare part, if any.
    inflight: Option<ReadOp>,
    /// The last receive left bytes waiting in the socket: the next one
    /// tries at once instead of waiting for readiness first.
    sock_nonempty: bool,
    /// Reads of a file's cached bytes may be tried without the ring:
    /// decided at the first read (not under a fault plan, whose short
    /// reads and errors apply to operations), cleared for good when the
    /// file cannot be read that way.
    cached_ok: Option<bool>,
    /// Reads made without the ring since the task last yielded.
    cached_run: u8,
    /// The memory of the last finished read (one kind per source), which
    /// carries the next: no allocation per read.
    spare: (Spare<op::Read>, Spare<op::Recv>),
}

/// A read into the buffer's spare part: `read` for files, pipes and
/// terminals; `recv` for sockets, which waits for readiness before its
/// first try (a socket the reader just drained has nothing yet; measured
/// 5 to 9 % more round trips per second on one core than `read`), unless
/// the kernel said the last receive left bytes in the socket.
#[derive(Debug)]
enum ReadOp {
    /// Files, pipes, terminals.
    Read(Op<op::Read>),
    /// Sockets.
    Recv(Op<op::Recv>),
}

impl Future for ReadOp {
    /// The result, the buffer, and whether more bytes wait in the socket.
    type Output = op::RecvOutput;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            ReadOp::Read(op) => Pin::new(op).poll(cx).map(|(res, buf)| (res, buf, false)),
            ReadOp::Recv(op) => Pin::new(op).poll(cx),
        }
    }
}

impl PlainFill {
    /// Reads into `buf`; nothing in flight yet.
    pub(super) fn new(buf: ReadBuffer) -> PlainFill {
        PlainFill {
            buf,
            inflight: None,
            sock_nonempty: false,
            cached_ok: None,
            cached_run: 0,
            spare: (Spare::new(), Spare::new()),
        }
    }

    /// The buffer.
    #[inline]
    pub(super) fn buf(&self) -> &ReadBuffer {
        &self.buf
    }

    /// The buffer, mutably.
    #[inline]
    pub(super) fn buf_mut(&mut self) -> &mut ReadBuffer {
        &mut self.buf
    }

    /// Reads until the buffer holds `n` bytes: starts a read if none is in
    /// flight and collects it. `Ready(None)` once it completed without
    /// stopping the stream (its bytes, if any, are in the buffer).
    pub(super) fn poll_more(
        &mut self,
        cx: &mut Context<'_>,
        source: &impl ReadSource,
        n: usize,
    ) -> Poll<Option<Stop>> {
        if self.inflight.is_none() {
            let have = self.buf.filled().len();
            if let Some(done) = self.read_cached(cx, source, n.saturating_sub(have)) {
                return done;
            }
            self.start_read(source, n.saturating_sub(have));
        }
        self.poll_inflight(cx, source)
    }

    /// A file whose next bytes are in the page cache: reads them now, with
    /// one `preadv2(RWF_NOWAIT)` and no trip through the ring and the
    /// runtime (the attempt an io_uring read makes inline anyway). `None`
    /// when the ring must read: not a file, bytes not cached, or a file
    /// that cannot be read this way. Every [`CACHED_RUN`]-th time it yields
    /// first (`Pending`, woken at once), so that a task scanning a cached
    /// file lets the others run.
    fn read_cached(
        &mut self,
        cx: &mut Context<'_>,
        source: &impl ReadSource,
        need: usize,
    ) -> Option<Poll<Option<Stop>>> {
        let pos = source.read_pos()?;
        if source.reads_socket() || !*self.cached_ok.get_or_insert_with(cached_reads_allowed) {
            return None;
        }
        self.cached_run += 1;
        if self.cached_run > CACHED_RUN {
            self.cached_run = 0;
            cx.waker().wake_by_ref();
            return Some(Poll::Pending);
        }
        let mut tail = self.buf.take_spare(need.max(self.buf.capacity() / 2));
        let res = op::read_cached(source.shared_fd(), &mut tail, pos.get());
        self.buf.put_back(tail);
        match res {
            Ok(0) => Some(Poll::Ready(Some(Stop::End))),
            Ok(n) => {
                advance(Some(pos), n);
                Some(Poll::Ready(None))
            }
            // Not cached (or interrupted): this read goes through the ring.
            Err(e) if is_retry(&e) => None,
            // Not seekable, no `RWF_NOWAIT` here, or a real error: the ring
            // reads from now on (and reports a real error itself).
            Err(_) => {
                self.cached_ok = Some(false);
                None
            }
        }
    }

    /// Collects the read in flight if it finished (`Ready(None)` also when
    /// none is in flight).
    fn poll_inflight(
        &mut self,
        cx: &mut Context<'_>,
        source: &impl ReadSource,
    ) -> Poll<Option<Stop>> {
        let Some(op) = self.inflight.as_mut() else {
            return Poll::Ready(None);
        };
        let (res, tail, nonempty) = ready!(Pin::new(op).poll(cx));
        self.sock_nonempty = nonempty;
        match self.inflight.take() {
            Some(ReadOp::Read(op)) => op.recycle(&mut self.spare.0),
            Some(ReadOp::Recv(op)) => op.recycle(&mut self.spare.1),
            None => {}
        }
        self.buf.put_back(tail);
        Poll::Ready(match res {
            Ok(0) => Some(Stop::End),
            Ok(n) => {
                advance(source.read_pos(), n);
                None
            }
            // Interrupted or would-block reads are simply issued again.
            Err(e) if is_retry(&e) => None,
            Err(e) => Some(Stop::Failed(e)),
        })
    }

    /// Issues a read of at least `need` bytes (and a worthwhile amount) into
    /// the spare part of the buffer.
    fn start_read(&mut self, source: &impl ReadSource, need: usize) {
        let want = need.max(self.buf.capacity() / 2);
        let tail = self.buf.take_spare(want);
        let fd = source.shared_fd().clone();
        self.inflight = Some(if source.reads_socket() {
            // Wait for readiness first unless the kernel said the last
            // receive left bytes behind (a bulk stream): then a try at once
            // succeeds, and a poll first would only add a trip.
            let recv = if self.sock_nonempty {
                op::Recv::new(fd, tail)
            } else {
                op::Recv::poll_first(fd, tail)
            };
            ReadOp::Recv(Op::submit_in(recv, &mut self.spare.1))
        } else {
            let pos = source.read_pos().map_or(CURRENT_POS, Cell::get);
            let read = op::Read::new(fd, tail, pos);
            ReadOp::Read(Op::submit_in(read, &mut self.spare.0))
        });
    }

    /// While the caller works on filled bytes: collects a finished read
    /// and, unless the stream `stopped`, starts the next one into the spare
    /// part if there is room worth reading into (read-ahead).
    pub(super) fn read_ahead(
        &mut self,
        cx: &mut Context<'_>,
        source: &impl ReadSource,
        stopped: bool,
    ) -> Option<Stop> {
        if let Poll::Ready(Some(stop)) = self.poll_inflight(cx, source) {
            return Some(stop);
        }
        let idle = self.inflight.is_none() && !stopped;
        if idle && self.buf.spare() >= self.buf.capacity() / 2 {
            self.start_read(source, 1);
        }
        None
    }
}

/// Whether a reader may read cached file bytes without the ring: not
/// under a fault plan (tests only), which must see every read.
fn cached_reads_allowed() -> bool {
    #[cfg(feature = "fault-injection")]
    if crate::driver::current().is_ok_and(|d| d.faulted()) {
        return false;
    }
    true
}
