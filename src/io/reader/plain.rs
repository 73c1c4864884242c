//! The plain mode of [`BufReader`](super::BufReader): reads land in the
//! spare part of the reader's own buffer.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::fill::Stop;
use crate::buf::ReadBuffer;
use crate::error::is_retry;
use crate::op::{self, CURRENT_POS, Op, Spare};
use crate::source::{ReadSource, advance};

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
            self.start_read(source, n.saturating_sub(have));
        }
        self.poll_inflight(cx, source)
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
