//! The deadline methods of [`BufReader`], [`BufWriter`] and [`BufStream`].

use std::io;
use std::time::{Duration, Instant};

use crate::io::{BufReader, BufStream, BufWriter};
use crate::source::{ReadSource, WriteSink};

/// Name of the read direction, in errors.
const READ: &str = "read";
/// Name of the write direction, in errors.
const WRITE: &str = "write";

impl<S: ReadSource> BufReader<S> {
    /// Sets the idle limit of every read: a call that waits this long
    /// without a byte arriving fails with `io::ErrorKind::TimedOut` (the
    /// clock starts when a call has to wait and restarts whenever bytes
    /// arrive, as `std::net::TcpStream::set_read_timeout` bounds each
    /// `recv`). `None` (the default) waits for ever; zero is an
    /// `InvalidInput` error.
    ///
    /// Expiry cancels nothing: the receive stays in flight, its bytes are
    /// returned by the next call, and the reader stays usable. One timer
    /// per reader enforces both limits: see
    /// [`set_read_deadline`](BufReader::set_read_deadline) and the
    /// "Deadlines" section of `docs/large-responses.md`.
    ///
    /// A call dropped while it waits (one that lost a `select!`) leaves
    /// the idle clock running until bytes arrive or a call returns, so the
    /// next call that waits may fail sooner than the full limit.
    ///
    /// ```
    /// use std::time::Duration;
    /// use uring_bufio::{io::BufReader, net::{TcpListener, TcpStream}};
    /// uring_bufio::Runtime::new()?.block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let peer = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (socket, _) = listener.accept().await?;
    ///     let mut reader = BufReader::new(socket);
    ///     reader.set_read_timeout(Some(Duration::from_millis(20)))?;
    ///     let err = reader.fill_buf().await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    ///     peer.write_all(&b"late"[..]).await.0?;
    ///     assert_eq!(reader.fill_buf().await?, b"late"); // still usable
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub fn set_read_timeout(&mut self, limit: Option<Duration>) -> io::Result<()> {
        self.deadline.set_timeout(READ, limit)
    }

    /// Sets an absolute deadline for reading, for a whole request: every
    /// call that has to wait after `at` fails with `TimedOut`, however
    /// steadily bytes trickle in (the idle limit alone lets a peer sending
    /// one byte a second hold a connection for ever). Calls that find
    /// their bytes buffered still succeed. `None` removes it; the earlier
    /// of this and the idle limit applies. Move it for the next request.
    pub fn set_read_deadline(&mut self, at: Option<Instant>) {
        self.deadline.set_deadline(READ, at);
    }

    /// The idle limit of reads.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.deadline.timeout()
    }

    /// The absolute read deadline.
    pub fn read_deadline(&self) -> Option<Instant> {
        self.deadline.deadline()
    }
}

impl<S: WriteSink> BufWriter<S> {
    /// Sets the idle limit of every write: a `write`, `write_all`, `flush`
    /// or `shutdown` that waits this long for room in the buffer or for
    /// the kernel (also for write-behind still draining) without a byte
    /// being written fails with `io::ErrorKind::TimedOut`. `None` (the
    /// default) waits for ever; zero is an `InvalidInput` error.
    ///
    /// Expiry cancels nothing: the write in flight keeps draining, no byte
    /// accepted is dropped, and the writer stays usable (a later `flush`
    /// goes on). A writer dropped with bytes left drains them in the
    /// background under the same limits, so a peer that stopped reading
    /// cannot keep it lingering. One timer per writer: see
    /// [`BufReader::set_read_timeout`].
    pub fn set_write_timeout(&mut self, limit: Option<Duration>) -> io::Result<()> {
        self.parts_mut().1.deadline.set_timeout(WRITE, limit)
    }

    /// Sets an absolute deadline for writing: every call that has to wait
    /// after `at` fails with `TimedOut`. `None` removes it.
    pub fn set_write_deadline(&mut self, at: Option<Instant>) {
        self.parts_mut().1.deadline.set_deadline(WRITE, at);
    }

    /// The idle limit of writes.
    pub fn write_timeout(&self) -> Option<Duration> {
        self.state().deadline.timeout()
    }

    /// The absolute write deadline.
    pub fn write_deadline(&self) -> Option<Instant> {
        self.state().deadline.deadline()
    }
}

impl<S: ReadSource + WriteSink> BufStream<S> {
    /// See [`BufReader::set_read_timeout`].
    pub fn set_read_timeout(&mut self, limit: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(limit)
    }

    /// See [`BufReader::set_read_deadline`].
    pub fn set_read_deadline(&mut self, at: Option<Instant>) {
        self.inner.set_read_deadline(at);
    }

    /// See [`BufWriter::set_write_timeout`].
    pub fn set_write_timeout(&mut self, limit: Option<Duration>) -> io::Result<()> {
        self.inner.get_mut().set_write_timeout(limit)
    }

    /// See [`BufWriter::set_write_deadline`].
    pub fn set_write_deadline(&mut self, at: Option<Instant>) {
        self.inner.get_mut().set_write_deadline(at);
    }

    /// The idle limit of reads.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.inner.read_timeout()
    }

    /// The absolute read deadline.
    pub fn read_deadline(&self) -> Option<Instant> {
        self.inner.read_deadline()
    }

    /// The idle limit of writes.
    pub fn write_timeout(&self) -> Option<Duration> {
        self.inner.get_ref().write_timeout()
    }

    /// The absolute write deadline.
    pub fn write_deadline(&self) -> Option<Instant> {
        self.inner.get_ref().write_deadline()
    }
}
