//! A writer's buffer and its operations in flight, apart from the sink
//! (so a writer dropped with bytes left can keep draining them from the
//! background).

use std::cell::Cell;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};

use crate::buf::WriteBuffer;
use crate::io::deadline::Deadline;
use crate::op::{self, CURRENT_POS, Op, Spare};
use crate::source::{advance, sealed};

/// The buffer and the operations in flight, apart from the sink.
#[derive(Debug)]
pub(crate) struct WriteState {
    /// Bytes accepted and not yet written.
    buf: WriteBuffer,
    /// The vectored write in flight; it owns its segments.
    inflight: Option<WriteOp>,
    /// A shutdown of the write direction in flight.
    shutdown: Option<Op<op::Shutdown>>,
    /// Why the sink's stream is broken (a `copy_file` stopped part way,
    /// `io/copy_file.rs`): every later write, flush and shutdown fails.
    poisoned: Option<String>,
    /// The memory of the last finished write, which carries the next.
    spare: (Spare<op::SendMsg>, Spare<op::Writev>),
    /// Whether a flush first sends straight from the buffer; decided at the
    /// first flush ([`WriteState::sends_directly`]).
    direct: Option<bool>,
    /// Write deadlines and their one timer (`io/deadline.rs`): bound every
    /// wait for room, for a flush and for a shutdown.
    pub(in crate::io) deadline: Deadline,
}

/// A vectored write: `writev` for files and pipes, `sendmsg` (no SIGPIPE)
/// for sockets.
#[derive(Debug)]
enum WriteOp {
    /// Files, pipes, terminals.
    Writev(Op<op::Writev>),
    /// Sockets.
    SendMsg(Op<op::SendMsg>),
}

impl Future for WriteOp {
    type Output = (io::Result<usize>, Vec<Bytes>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            WriteOp::Writev(op) => Pin::new(op).poll(cx),
            WriteOp::SendMsg(op) => Pin::new(op).poll(cx),
        }
    }
}

impl WriteState {
    /// An empty state accepting `capacity` bytes.
    pub(crate) fn new(capacity: usize) -> WriteState {
        WriteState {
            buf: WriteBuffer::new(capacity),
            inflight: None,
            shutdown: None,
            poisoned: None,
            spare: (Spare::new(), Spare::new()),
            direct: None,
            deadline: Deadline::default(),
        }
    }

    /// Refuses every later write, flush and shutdown with `why`.
    pub(crate) fn poison(&mut self, why: String) {
        self.poisoned = Some(why);
    }

    /// The poison, as the error each refused call returns.
    fn check_poison(&self) -> io::Result<()> {
        self.poisoned
            .as_ref()
            .map_or(Ok(()), |why| Err(io::Error::other(why.clone())))
    }

    /// Nothing is buffered or in flight.
    pub(super) fn is_idle(&self) -> bool {
        self.buf.is_empty() && self.inflight.is_none()
    }

    /// Hands everything buffered to the kernel, if no write is in flight.
    fn start_write(&mut self, sink: &impl sealed::Write) {
        if self.inflight.is_some() || self.buf.is_empty() {
            return;
        }
        let segs = self.buf.take_segments(op::MAX_SEGMENTS);
        let fd = sink.shared_fd().clone();
        self.inflight = Some(if sink.is_socket() {
            WriteOp::SendMsg(Op::submit_in(op::SendMsg::new(fd, segs), &mut self.spare.0))
        } else {
            let pos = sink.write_pos().map_or(CURRENT_POS, Cell::get);
            WriteOp::Writev(Op::submit_in(
                op::Writev::new(fd, segs, pos),
                &mut self.spare.1,
            ))
        });
    }

    /// Waits for the write in flight, if any, and books its result.
    fn poll_inflight(
        &mut self,
        cx: &mut Context<'_>,
        sink: &impl sealed::Write,
    ) -> Poll<io::Result<()>> {
        let Some(op) = self.inflight.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let (res, segs) = ready!(Pin::new(op).poll(cx));
        match self.inflight.take() {
            Some(WriteOp::SendMsg(op)) => op.recycle(&mut self.spare.0),
            Some(WriteOp::Writev(op)) => op.recycle(&mut self.spare.1),
            None => {}
        }
        match res {
            Ok(0) if segs.iter().any(|s| !s.is_empty()) => {
                let total = segs.iter().map(|s| s.len()).sum();
                self.buf.restore(segs);
                Poll::Ready(Err(crate::error::write_zero(0, total)))
            }
            Ok(n) => {
                self.deadline.progress();
                advance(sink.write_pos(), n);
                self.buf.written(segs, n);
                Poll::Ready(Ok(()))
            }
            Err(e) => {
                // Nothing of this operation was written: keep it all.
                self.buf.restore(segs);
                if crate::error::is_retry(&e) {
                    Poll::Ready(Ok(()))
                } else {
                    Poll::Ready(Err(e))
                }
            }
        }
    }

    /// Copies in what fits of `src`, waiting only when the buffer is full.
    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        sink: &impl sealed::Write,
        src: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_with(cx, sink, |buf| buf.accept(src))
    }

    /// Copies in what fits of `bufs`, in order.
    pub(crate) fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        sink: &impl sealed::Write,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_with(cx, sink, |buf| {
            let mut n = 0;
            for b in bufs {
                let k = buf.accept(b);
                n += k;
                if k < b.len() {
                    break;
                }
            }
            n
        })
    }

    /// Copies in all of `src` at once as soon as there is any room.
    pub(crate) fn poll_write_all(
        &mut self,
        cx: &mut Context<'_>,
        sink: &impl sealed::Write,
        src: &[u8],
    ) -> Poll<io::Result<()>> {
        ready!(self.poll_write_with(cx, sink, |buf| {
            buf.extend(src);
            src.len()
        }))?;
        Poll::Ready(Ok(()))
    }

    /// Waits until there is room, then runs `copy` (which must not fail)
    /// and starts a write once the capacity is filled.
    fn poll_write_with(
        &mut self,
        cx: &mut Context<'_>,
        sink: &impl sealed::Write,
        copy: impl FnOnce(&mut WriteBuffer) -> usize,
    ) -> Poll<io::Result<usize>> {
        let p = self.poll_room_then(cx, sink, copy);
        self.deadline.poll_wait_io(cx, p)
    }

    /// [`poll_write_with`](WriteState::poll_write_with) without the deadline.
    fn poll_room_then(
        &mut self,
        cx: &mut Context<'_>,
        sink: &impl sealed::Write,
        copy: impl FnOnce(&mut WriteBuffer) -> usize,
    ) -> Poll<io::Result<usize>> {
        self.check_poison()?;
        // Book a finished write without waiting for one.
        if self.inflight.is_some()
            && let Poll::Ready(res) = self.poll_inflight(cx, sink)
        {
            res?;
        }
        while self.buf.room() == 0 {
            self.start_write(sink);
            ready!(self.poll_inflight(cx, sink))?;
        }
        let n = copy(&mut self.buf);
        if self.buf.len() >= self.buf.capacity() {
            self.start_write(sink);
        }
        Poll::Ready(Ok(n))
    }

    /// Writes everything buffered.
    pub(crate) fn poll_flush(
        &mut self,
        cx: &mut Context<'_>,
        sink: &impl sealed::Write,
    ) -> Poll<io::Result<()>> {
        let p = self.poll_drain(cx, sink);
        self.deadline.poll_wait_io(cx, p)
    }

    /// [`poll_flush`](WriteState::poll_flush) without the deadline.
    fn poll_drain(
        &mut self,
        cx: &mut Context<'_>,
        sink: &impl sealed::Write,
    ) -> Poll<io::Result<()>> {
        self.check_poison()?;
        while !self.is_idle() {
            if self.inflight.is_none() && self.sends_directly(sink) {
                self.send_now(sink)?;
                if self.buf.is_empty() {
                    break;
                }
            }
            self.start_write(sink);
            ready!(self.poll_inflight(cx, sink))?;
        }
        Poll::Ready(Ok(()))
    }

    /// The one place that decides whether a flush first sends straight
    /// from the buffer ([`send_now`](WriteState::send_now)): only on a
    /// socket, only on io_uring (on epoll the send operation already is
    /// this system call, made at submission), not under a fault plan (its
    /// short transfers and errors apply to operations) — decided once, at
    /// the first flush — and only when the send would otherwise reach the
    /// kernel alone (the last task of its turn, nothing else queued),
    /// decided per flush: where several tasks flush in one turn, their
    /// sends share one `io_uring_enter` instead of a system call each.
    fn sends_directly(&mut self, sink: &impl sealed::Write) -> bool {
        let eligible = *self.direct.get_or_insert_with(|| {
            sink.is_socket()
                && crate::driver::current().is_ok_and(|d| {
                    #[cfg(feature = "fault-injection")]
                    if d.faulted() {
                        return false;
                    }
                    d.kind() == crate::driver::Kind::IoUring
                })
        });
        eligible && crate::rt::context::submission_alone()
    }

    /// With nothing in flight: a non-blocking `sendmsg` of what waits, from
    /// the buffer itself, consuming what the kernel took. The kernel has
    /// the bytes when the call returns (nothing outlives the borrow), and
    /// with nothing in flight nothing can overtake them. What is left (the
    /// socket was full, or took part) goes through an operation as usual;
    /// a failure other than "try again" is the flush's, bytes kept.
    ///
    /// This saves the send operation per flush (its submission, table
    /// entry, completion, wake-up and the task's second poll); see
    /// `docs/performance.md`, "Per-request path (issue 13)".
    fn send_now(&mut self, sink: &impl sealed::Write) -> io::Result<()> {
        let mut io = [IoSlice::new(&[]); 4];
        let n = self.buf.slices(&mut io);
        let res = op::SendMsg::send_now(sink.shared_fd().raw(), &io[..n]);
        match usize::try_from(res) {
            Ok(n) if n > 0 => {
                self.deadline.progress();
                self.buf.consume(n);
                Ok(())
            }
            // 0 of a non-empty send: the operation reports it.
            Ok(_) => Ok(()),
            Err(_) => {
                let e = io::Error::from_raw_os_error(-res);
                if crate::error::is_retry(&e) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Flushes, then shuts the write direction of a socket.
    ///
    /// `ENOTCONN` from the shutdown itself counts as done, as tokio's
    /// `TcpStream::poll_shutdown` counts it: the kernel returns it when the
    /// connection is already gone (the peer reset it, say after closing
    /// with a reply it never read), so there is no write direction left to
    /// shut and nothing buffered was lost (the flush before it succeeded;
    /// a flush that fails is reported). hyper calls `poll_shutdown` on
    /// every connection it ends, also after a reset it took for end of
    /// stream, and reports this error as "error shutting down connection".
    pub(crate) fn poll_shutdown(
        &mut self,
        cx: &mut Context<'_>,
        sink: &impl sealed::Write,
    ) -> Poll<io::Result<()>> {
        ready!(self.poll_flush(cx, sink))?;
        if !sink.is_socket() {
            return Poll::Ready(Ok(()));
        }
        let op = self.shutdown.get_or_insert_with(|| {
            Op::submit(op::Shutdown::new(sink.shared_fd().clone(), libc::SHUT_WR))
        });
        let polled = Pin::new(op).poll(cx);
        let res = ready!(self.deadline.poll_wait(cx, polled))?;
        self.shutdown = None;
        Poll::Ready(match res {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            res => res,
        })
    }

    /// Bytes accepted and not yet handed to the kernel.
    pub(crate) fn buffer(&self) -> &[u8] {
        self.buf.unsent()
    }

    /// Bytes accepted before `write` waits.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Cancels the operations in flight and takes every byte not known to
    /// be written, in order.
    pub(super) fn take_all(&mut self) -> BytesMut {
        self.inflight = None;
        self.shutdown = None;
        self.buf.take_all()
    }
}
