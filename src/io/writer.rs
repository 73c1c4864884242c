//! `BufWriter`: copies in at once, the kernel drains behind.

mod state;

use std::cell::Cell;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::mem::ManuallyDrop;

use bytes::BytesMut;

pub(crate) use state::WriteState;

use crate::driver::SharedFd;
use crate::source::{WriteSink, sealed};

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
    /// reads end of stream). For files and pipes it only flushes. A
    /// connection already gone (`ENOTCONN`: the peer reset it) counts as
    /// shut, as with tokio's `TcpStream`; errors of the flush are returned.
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

    /// The state.
    pub(crate) fn state(&self) -> &WriteState {
        &self.state
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
        let rest = this.state.take_all();
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
