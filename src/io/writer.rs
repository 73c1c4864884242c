//! `BufWriter`: copies in at once, the kernel drains behind.

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::io::{self, IoSlice};
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};

use crate::buf::WriteBuffer;
use crate::driver::SharedFd;
use crate::op::{self, CURRENT_POS, Op};
use crate::source::{WriteSink, advance, sealed};

/// Default bytes a writer accepts before `write` waits.
pub(crate) const DEFAULT_CAPACITY: usize = 64 * 1024;

/// Writes to a sink through a buffer it owns.
///
/// [`write`](BufWriter::write) copies the caller's bytes in and returns at
/// once while there is room; the kernel drains the buffer behind it
/// (write-behind): once the capacity is filled, the filled part goes to the
/// kernel as one segment while new bytes are copied into the next, and
/// everything queued goes out in one vectored operation. Short writes are
/// resumed. The writer holds at most about twice its capacity: one segment
/// in flight, one being filled.
///
/// Every future can be dropped at any await without losing or duplicating
/// bytes: memory the kernel reads is owned by the operation in flight.
///
/// Dropped with bytes not yet written, the writer finishes writing them in
/// the background (errors are ignored, as `std::io::BufWriter`'s drop does);
/// [`Runtime::block_on`](crate::Runtime::block_on) waits for such flushes
/// before it returns (see [`Builder::linger`](crate::Builder::linger)).
/// Outside a runtime they are dropped. Call [`flush`](BufWriter::flush) to
/// see errors.
///
/// ```
/// use uring_bufio::{fs::File, io::BufWriter};
/// # let path = std::env::temp_dir().join(format!("uring-bufio-doc-writer-{}", std::process::id()));
/// uring_bufio::Runtime::new()?.block_on(async {
///     let mut out = BufWriter::new(File::create(&path).await?);
///     for i in 0..3 {
///         out.write_all(format!("line {i}\n").as_bytes()).await?;
///     }
///     out.flush().await?;
///     Ok::<_, std::io::Error>(())
/// })?;
/// assert_eq!(std::fs::read_to_string(&path)?, "line 0\nline 1\nline 2\n");
/// # std::fs::remove_file(&path)?;
/// # Ok::<_, std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct BufWriter<S: WriteSink> {
    /// The sink.
    sink: S,
    /// Buffered bytes and the write in flight.
    state: WriteState,
}

/// The buffer and the operations in flight, apart from the sink.
#[derive(Debug)]
pub(crate) struct WriteState {
    /// Bytes accepted and not yet written.
    buf: WriteBuffer,
    /// The vectored write in flight; it owns its segments.
    inflight: Option<WriteOp>,
    /// A shutdown of the write direction in flight.
    shutdown: Option<Op<op::Shutdown>>,
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
        }
    }

    /// Nothing is buffered or in flight.
    fn is_idle(&self) -> bool {
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
            WriteOp::SendMsg(Op::submit(op::SendMsg::new(fd, segs)))
        } else {
            let pos = sink.write_pos().map_or(CURRENT_POS, Cell::get);
            WriteOp::Writev(Op::submit(op::Writev::new(fd, segs, pos)))
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
        self.inflight = None;
        match res {
            Ok(0) if segs.iter().any(|s| !s.is_empty()) => {
                let total = segs.iter().map(|s| s.len()).sum();
                self.buf.restore(segs);
                Poll::Ready(Err(crate::error::write_zero(0, total)))
            }
            Ok(n) => {
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
        while !self.is_idle() {
            self.start_write(sink);
            ready!(self.poll_inflight(cx, sink))?;
        }
        Poll::Ready(Ok(()))
    }

    /// Flushes, then shuts the write direction of a socket.
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
        let res = ready!(Pin::new(op).poll(cx));
        self.shutdown = None;
        Poll::Ready(res)
    }

    /// Bytes accepted and not yet handed to the kernel.
    pub(crate) fn buffer(&self) -> &[u8] {
        self.buf.unsent()
    }

    /// Bytes accepted before `write` waits.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

impl<S: WriteSink> BufWriter<S> {
    /// A writer with the default capacity (64 KiB).
    pub fn new(sink: S) -> BufWriter<S> {
        BufWriter::with_capacity(DEFAULT_CAPACITY, sink)
    }

    /// A writer that accepts `capacity` bytes before `write` waits.
    pub fn with_capacity(capacity: usize, sink: S) -> BufWriter<S> {
        BufWriter {
            sink,
            state: WriteState::new(capacity),
        }
    }

    /// Copies in as much of `src` as fits and returns how much; waits only
    /// while the buffer is full. Returns 0 only for an empty `src`.
    ///
    /// Cancel safety: safe. Bytes are copied in only in the poll that
    /// returns, so a dropped call took nothing.
    pub async fn write(&mut self, src: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.state.poll_write(cx, &self.sink, src)).await
    }

    /// Copies in all of `src` at once, as soon as the buffer has any room
    /// (it may then hold more than its capacity, until the kernel drains
    /// it).
    ///
    /// Cancel safety: safe, and all or nothing: a dropped call copied in
    /// nothing; a call that returned `Ok` took every byte.
    pub async fn write_all(&mut self, src: &[u8]) -> io::Result<()> {
        poll_fn(|cx| self.state.poll_write_all(cx, &self.sink, src)).await
    }

    /// Copies in what fits of `bufs`, in order; returns how many bytes.
    ///
    /// Cancel safety: safe, as [`write`](BufWriter::write).
    pub async fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        poll_fn(|cx| self.state.poll_write_vectored(cx, &self.sink, bufs)).await
    }

    /// Waits until every buffered byte is written.
    ///
    /// Cancel safety: safe. A dropped flush leaves the bytes buffered or in
    /// flight; nothing is lost, and the next flush goes on.
    pub async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.state.poll_flush(cx, &self.sink)).await
    }

    /// Flushes, then shuts down the write direction of a socket (the peer
    /// reads end of stream). For files and pipes it only flushes.
    ///
    /// Cancel safety: safe; calling it again completes it.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.state.poll_shutdown(cx, &self.sink)).await
    }

    /// The bytes accepted since the last hand-over to the kernel, in order:
    /// the part `write` copies into. Bytes already handed to the kernel are
    /// not in it, whether a write is still carrying them or a short write
    /// left them to be sent again first; [`flush`](BufWriter::flush) waits
    /// for all of them. (tokio's `BufWriter::buffer` is its one buffer; ours
    /// is split so the kernel can drain one part while `write` fills the
    /// next.)
    pub fn buffer(&self) -> &[u8] {
        self.state.buffer()
    }

    /// The sink and the state, borrowed apart.
    pub(crate) fn parts_mut(&mut self) -> (&S, &mut WriteState) {
        (&self.sink, &mut self.state)
    }

    /// Bytes accepted before `write` waits.
    pub fn capacity(&self) -> usize {
        self.state.capacity()
    }

    /// The sink.
    pub fn get_ref(&self) -> &S {
        &self.sink
    }

    /// The sink. Writing to it directly bypasses the buffered bytes.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// The sink, after writing everything buffered (like
    /// `std::io::BufWriter::into_inner`, which flushes). On error the bytes
    /// not written are handed back with it: see
    /// [`into_parts`](BufWriter::into_parts).
    pub async fn into_inner(mut self) -> Result<S, (io::Error, S, BytesMut)> {
        match self.flush().await {
            Ok(()) => Ok(self.into_parts().0),
            Err(e) => {
                let (sink, rest) = self.into_parts();
                Err((e, sink, rest))
            }
        }
    }

    /// The sink and every byte not yet written, in order, without writing.
    /// A write in flight is cancelled first; bytes it had not written yet
    /// cannot be known to be unwritten, so call [`flush`](BufWriter::flush)
    /// (or `into_inner`) when the exact rest matters; after an error, with
    /// nothing in flight, the rest is exact.
    pub fn into_parts(self) -> (S, BytesMut) {
        let mut this = ManuallyDrop::new(self);
        this.state.inflight = None;
        this.state.shutdown = None;
        let rest = this.state.buf.take_all();
        // SAFETY: `this` is never dropped (ManuallyDrop) and each field is
        // read out exactly once here, so each is dropped exactly once.
        let (sink, state) = unsafe { (std::ptr::read(&this.sink), std::ptr::read(&this.state)) };
        drop(state);
        (sink, rest)
    }
}

/// Where a writer dropped with bytes left keeps writing from the background.
#[derive(Debug)]
struct Detached {
    /// The sink's fd (a clone: the sink itself is gone).
    fd: SharedFd,
    /// The next offset, for sinks that keep one.
    pos: Option<Cell<u64>>,
    /// Whether it is a socket.
    socket: bool,
}

impl sealed::Fd for Detached {
    fn shared_fd(&self) -> &SharedFd {
        &self.fd
    }
}

impl sealed::Write for Detached {
    fn write_pos(&self) -> Option<&Cell<u64>> {
        self.pos.as_ref()
    }
    fn is_socket(&self) -> bool {
        self.socket
    }
}

impl<S: WriteSink> Drop for BufWriter<S> {
    fn drop(&mut self) {
        if self.state.is_idle() {
            return;
        }
        let target = Detached {
            fd: self.sink.shared_fd().clone(),
            pos: self.sink.write_pos().map(|p| Cell::new(p.get())),
            socket: self.sink.is_socket(),
        };
        let mut state = std::mem::replace(&mut self.state, WriteState::new(1));
        // Without a runtime the bytes are dropped; a write in flight is
        // released to the driver's table either way, never freed early.
        crate::rt::spawn_lingering(async move {
            let _ = poll_fn(|cx| state.poll_flush(cx, &target)).await;
        });
    }
}

// A writer over a readable sink reads through to it, so that
// `BufReader<BufWriter<S>>` is a buffered stream (see `BufStream`).
impl<S: WriteSink + sealed::Read> sealed::Fd for BufWriter<S> {
    fn shared_fd(&self) -> &SharedFd {
        self.sink.shared_fd()
    }
}

impl<S: WriteSink + sealed::Read> sealed::Read for BufWriter<S> {
    fn read_pos(&self) -> Option<&Cell<u64>> {
        self.sink.read_pos()
    }
    fn reads_socket(&self) -> bool {
        self.sink.reads_socket()
    }
}

impl<S: WriteSink + crate::source::ReadSource> crate::source::ReadSource for BufWriter<S> {}
