//! `BufReader`: the core of reading. Filling, consuming and finding records.
//!
//! How the buffer is filled is the reader's fill mode (`reader/fill.rs`):
//! plain reads into its own buffer (`reader/plain.rs`) or receives into
//! the runtime's pool (`reader/pooled.rs`). The modes only gather bytes
//! and say why they stopped; `BufReader::poll_fill_until` alone decides
//! when an end of stream or an error reaches the caller.

mod fill;
mod plain;
mod pooled;
mod record;

use std::future::poll_fn;
use std::io;
use std::task::{Context, Poll, ready};

use fill::{Fill, Stop};
use plain::PlainFill;
pub(crate) use record::NextRecord;

use super::deadline::Deadline;
use crate::buf::ReadBuffer;
use crate::source::ReadSource;

/// Default size of one read.
pub(crate) const DEFAULT_CAPACITY: usize = 64 * 1024;
/// Default longest line or delimited record.
pub(crate) const DEFAULT_MAX_RECORD: usize = 64 * 1024;

/// Reads a source through a buffer it owns.
///
/// The reader's buffer is the only memory the kernel reads into, and a read
/// in flight owns the part of it the kernel writes. So every future of this
/// type can be dropped at any await: a read that completes afterwards lands
/// in the buffer and is returned by the next call. While the caller works on
/// filled bytes, a read into the spare part is already in flight
/// (read-ahead).
///
/// Dropping the reader (or [`into_inner`](BufReader::into_inner)) drops its
/// buffered bytes, like `std::io::BufReader`; a read in flight is cancelled
/// and its memory is freed only once the kernel gave it back.
///
/// ```
/// use uring_bufio::{fs::File, io::BufReader};
/// # let path = std::env::temp_dir().join(format!("uring-bufio-doc-reader-{}", std::process::id()));
/// # std::fs::write(&path, "one\r\ntwo\nthree").unwrap();
/// uring_bufio::Runtime::new()?.block_on(async {
///     let mut reader = BufReader::new(File::open(&path).await?);
///     let mut lines = Vec::new();
///     while let Some(line) = reader.next_line().await? {
///         lines.push(String::from_utf8_lossy(line).into_owned());
///     }
///     assert_eq!(lines, ["one", "two", "three"]);
///     Ok::<_, std::io::Error>(())
/// })?;
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<_, std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct BufReader<S> {
    /// The source; its fd stays open while a read holds it.
    source: S,
    /// The fill mode, which owns the buffer and what is in flight.
    fill: Fill,
    /// An end of stream or an error seen and not reported yet: reported
    /// (and cleared) when the caller next needs more bytes than are
    /// buffered. While it is set, no new read is started.
    stop: Option<Stop>,
    /// Longest line or delimited record accepted.
    max_record: usize,
    /// Read deadlines and their one timer (`io/deadline.rs`).
    pub(super) deadline: Deadline,
}

impl<S: ReadSource> BufReader<S> {
    /// A reader with the default capacity (64 KiB per read).
    pub fn new(source: S) -> BufReader<S> {
        BufReader::with_capacity(DEFAULT_CAPACITY, source)
    }

    /// A reader that reads up to `capacity` bytes at a time. Memory is taken
    /// at the first read.
    pub fn with_capacity(capacity: usize, source: S) -> BufReader<S> {
        BufReader::with_fill(
            source,
            Fill::Plain(PlainFill::new(ReadBuffer::new(capacity))),
        )
    }

    /// A reader filled by `fill`.
    fn with_fill(source: S, fill: Fill) -> BufReader<S> {
        BufReader {
            source,
            fill,
            stop: None,
            max_record: DEFAULT_MAX_RECORD,
            deadline: Deadline::default(),
        }
    }

    /// A reader for a socket that holds no buffer while no data waits:
    /// receives land in buffers the kernel picks from the runtime's shared
    /// pool (sized by [`Builder::pool`](crate::Builder::pool)) at the moment
    /// data arrives, so 100,000 idle connections cost no buffer memory.
    ///
    /// On io_uring this is one multishot receive over a provided buffer ring
    /// (Linux 6.0), with incrementally consumed buffers (6.12) or receive
    /// bundles (6.10) where the kernel has them
    /// ([`PoolConfig::incremental`](crate::PoolConfig::incremental)); on
    /// epoll a receive takes a pool buffer only once the socket is readable.
    /// Every method works as in the ordinary mode, with the same cancel
    /// safety:
    ///
    /// * `fill_buf` lends the received bytes where they lie in the pool
    ///   buffer, and a frame cut from it ([`frames`](BufReader::frames))
    ///   leaves without a copy;
    /// * a buffer the caller consumed entirely goes back to the pool at
    ///   once (its memory stays with a frame that still refers to it, and
    ///   the pool takes a fresh one);
    /// * a record spanning buffers is joined in memory of the reader's own
    ///   holding only that record (the next buffer's bytes through the
    ///   delimiter, or as many as asked for; the rest of that buffer stays
    ///   in the pool and is lent without a copy), freed once consumed;
    /// * a reader holds at most [`PoolConfig::per_reader`](crate::PoolConfig::per_reader)
    ///   completions received and not consumed (each one buffer, or a few
    ///   with bundles), besides the buffer it lends from: past it the
    ///   receive is paused and the bytes wait in the socket until the caller
    ///   reads on;
    /// * when the pool runs dry it grows (up to its maximum) or the reader
    ///   waits for a buffer to come back; the connection stays up and no
    ///   byte is lost.
    ///
    /// For a source that is not a socket, or where io_uring lacks
    /// provided buffer rings or multishot receive, the reader reads the
    /// ordinary way with the default capacity.
    pub fn pooled(source: S) -> BufReader<S> {
        let buf = ReadBuffer::new(DEFAULT_CAPACITY);
        BufReader::with_fill(source, Fill::Unresolved(buf))
    }

    /// Whether the reader receives into the runtime's pool (known after the
    /// first read; see [`pooled`](BufReader::pooled)).
    pub fn is_pooled(&self) -> bool {
        self.fill.is_pooled()
    }

    /// Sets the longest line or delimited record, not counting its
    /// delimiter, that [`next_line`](BufReader::next_line),
    /// [`read_line`](BufReader::read_line) and their kind accept; a longer
    /// one is an `InvalidData` error and its bytes stay buffered. Default
    /// 64 KiB.
    pub fn set_max_record_len(&mut self, max: usize) {
        self.max_record = max.max(1);
    }

    /// The longest record accepted.
    pub fn max_record_len(&self) -> usize {
        self.max_record
    }

    /// Size of one read.
    pub fn capacity(&self) -> usize {
        self.fill.buf().capacity()
    }

    /// The filled, unconsumed bytes (no IO).
    pub fn buffer(&self) -> &[u8] {
        self.fill.buf().filled()
    }

    /// The buffer, for a decoder to work on.
    pub(crate) fn buf_mut(&mut self) -> &mut ReadBuffer {
        self.fill.buf_mut()
    }

    /// The source.
    pub fn get_ref(&self) -> &S {
        &self.source
    }

    /// The source. Reading from it directly skips the buffered bytes.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.source
    }

    /// The source; buffered bytes are dropped and a read in flight is
    /// cancelled. A file's position is set back to the first unconsumed
    /// byte, so reading the file again continues where the caller stopped.
    pub fn into_inner(mut self) -> S {
        let unconsumed = self.fill.buf_mut().discard() as u64;
        if let Some(pos) = self.source.read_pos() {
            pos.set(pos.get().saturating_sub(unconsumed));
        }
        self.source
    }

    /// Returns the filled bytes, reading if there are none; an empty slice
    /// means end of stream. Release bytes with [`consume`](BufReader::consume).
    ///
    /// Cancel safety: safe. A dropped call consumed nothing; a read it
    /// started stays in flight and its bytes are returned by the next call.
    pub async fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.fill_or_end(1).await
    }

    /// Fills at least `n` bytes, or fewer at the end of the stream (which is
    /// then reported: the next call reads again).
    pub(crate) async fn fill_or_end(&mut self, n: usize) -> io::Result<&[u8]> {
        poll_fn(|cx| self.poll_fill(cx, n)).await?;
        Ok(self.buffer())
    }

    /// Poll form of [`fill_buf`](BufReader::fill_buf), for `AsyncBufRead`.
    pub(crate) fn poll_fill_buf(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        ready!(self.poll_fill(cx, 1))?;
        Poll::Ready(Ok(self.buffer()))
    }

    /// Marks `n` bytes of the buffer consumed (at most what is filled).
    pub fn consume(&mut self, n: usize) {
        self.fill.consume(n);
    }

    /// Returns at least `n` contiguous filled bytes, reading as needed, or
    /// an `UnexpectedEof` error if the stream ends first (the bytes stay
    /// buffered). The buffer grows to `n` if it must: `n` is the caller's
    /// choice, not the peer's.
    ///
    /// Cancel safety: safe, as [`fill_buf`](BufReader::fill_buf).
    pub async fn fill_at_least(&mut self, n: usize) -> io::Result<&[u8]> {
        let have = self.fill_or_end(n).await?.len();
        if have < n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("stream ended after {have} of {n} bytes"),
            ));
        }
        Ok(self.buffer())
    }

    /// Polls until at least `n` bytes are filled, the stream ended, or a
    /// read failed. The filled bytes may be fewer than `n` only at the end.
    pub(crate) fn poll_fill(&mut self, cx: &mut Context<'_>, n: usize) -> Poll<io::Result<()>> {
        self.poll_fill_until(cx, n, None)
    }

    /// [`poll_fill`](BufReader::poll_fill) for a record search that looks
    /// for `delim` (the pooled mode joins a record spanning buffers only
    /// through it).
    ///
    /// The one place where an end of stream or an error is reported: only
    /// once the buffered bytes cannot satisfy `n`, and then once (after an
    /// end, the next call reads again).
    fn poll_fill_until(
        &mut self,
        cx: &mut Context<'_>,
        n: usize,
        delim: Option<u8>,
    ) -> Poll<io::Result<()>> {
        self.fill.buf_mut().settle();
        self.fill.resolve(&self.source);
        loop {
            self.fill.gather(n, delim);
            if self.fill.buf().filled().len() >= n {
                let stopped = self.stop.is_some();
                let seen = self.fill.read_ahead(cx, &self.source, stopped);
                self.note(seen);
                return Poll::Ready(Ok(()));
            }
            match self.stop.take() {
                Some(Stop::End) => return Poll::Ready(Ok(())),
                Some(Stop::Failed(e)) => return Poll::Ready(Err(e)),
                None => {}
            }
            let more = self.fill.poll_more(cx, &self.source, n);
            let seen = ready!(self.deadline.poll_wait(cx, more))?;
            self.note(seen);
        }
    }

    /// Holds a stop the fill mode saw until it is reported (an error is
    /// never replaced by an end).
    fn note(&mut self, seen: Option<Stop>) {
        if let Some(stop) = seen
            && !matches!(self.stop, Some(Stop::Failed(_)))
        {
            self.stop = Some(stop);
        }
    }
}
