//! `copy_file`: a file's bytes to a writer's sink through a pipe, with
//! `splice`, never through user space.

use std::cell::Cell;
use std::io;
use std::ops::{Bound, RangeBounds};

use super::BufWriter;
use super::poison::Guard;
use crate::driver::SharedFd;
use crate::fs::File;
use crate::op::splice::{Pipe, Splice};
use crate::op::{CURRENT_POS, Op};
use crate::source::{WriteSink, advance, sealed::Fd};

/// Sends `range` of `file` to `writer`'s sink without copying the bytes
/// through user space: the writer's buffered bytes are flushed first (so
/// they arrive before the file's), then the file's pages move
/// file → pipe → sink with `splice` (`IORING_OP_SPLICE` on io_uring,
/// `splice(2)` driven by readiness on epoll), short splices resumed.
/// Returns the number of bytes sent.
///
/// `range` is in file offsets; an open end means "to the end of the
/// file". The file's own position is neither used nor moved. A range that
/// ends past the end of the file is an `UnexpectedEof` error once the
/// bytes up to the end were sent. The sink may be a socket, a pipe, or a
/// file opened without `O_APPEND` (its position advances).
///
/// Cost: one pipe (two fds) per call, and two splices per pipe-full
/// (64 KiB by default); on io_uring each splice runs in the kernel's
/// worker threads. Worth it for large bodies; a few KiB are cheaper through
/// [`BufWriter::write_all`].
///
/// # Dropping the future, and errors part way
///
/// Until the first splice into the sink is submitted (while flushing, or
/// reading the first pipe-full), dropping the future or an error leaves
/// the writer as it was: none of the file reached the sink. After that,
/// the sink holds an unknown prefix of the range (bytes still in the pipe
/// are discarded with it), so the writer is **poisoned**: every later
/// `write`, `flush` and `shutdown` fails with an error saying so, and the
/// stream must be closed, never continued short. The pipe is closed once
/// no splice in flight holds it; nothing leaks.
///
/// ```
/// use uring_bufio::{fs::File, io::{copy_file, BufWriter}, net::UnixStream};
/// # let path = std::env::temp_dir().join(format!("uring-bufio-doc-copy-{}", std::process::id()));
/// # std::fs::write(&path, b"0123456789")?;
/// uring_bufio::Runtime::new()?.block_on(async {
///     let (a, b) = UnixStream::pair()?;
///     let file = File::open(&path).await?;
///     let mut out = BufWriter::new(a);
///     out.write_all(b"head:").await?;
///     assert_eq!(copy_file(&file, &mut out, 2..5).await?, 3);
///     out.shutdown().await?;
///     let (n, buf) = b.read(bytes::BytesMut::with_capacity(64)).await;
///     assert_eq!(&buf[..n?], b"head:234");
///     Ok::<_, std::io::Error>(())
/// })?;
/// # std::fs::remove_file(&path)?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub async fn copy_file<S: WriteSink>(
    file: &File,
    writer: &mut BufWriter<S>,
    range: impl RangeBounds<u64>,
) -> io::Result<u64> {
    let (start, end) = bounds(&range)?;
    writer.flush().await?;
    let pipe = Pipe::new()?;
    let mut copy = Copy {
        guard: Guard::new(writer, "copy_file"),
        start,
        end,
    };
    let res = copy.run(file.shared_fd(), &pipe).await;
    copy.guard.done = res.is_ok();
    res
}

/// The first offset and the end (exclusive; `None`: the end of the file).
fn bounds(range: &impl RangeBounds<u64>) -> io::Result<(u64, Option<u64>)> {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.checked_add(1).ok_or_else(bad_range)?,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => Some(e.checked_add(1).ok_or_else(bad_range)?),
        Bound::Excluded(&e) => Some(e),
        Bound::Unbounded => None,
    };
    if end.is_some_and(|e| e < start) || start >= CURRENT_POS >> 1 {
        return Err(bad_range());
    }
    Ok((start, end))
}

/// The error of a range that ends before it starts, or lies past what
/// the kernel takes as an offset.
fn bad_range() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "copy_file: invalid range")
}

/// A copy in progress; its guard poisons the writer if it stops after
/// touching the sink (see [`copy_file`]).
struct Copy<'a, S: WriteSink> {
    /// The writer, and what was sent.
    guard: Guard<'a, S>,
    /// The next file offset to read.
    start: u64,
    /// Where to stop (`None`: the end of the file).
    end: Option<u64>,
}

impl<S: WriteSink> Copy<'_, S> {
    /// Splices the range through `pipe`, one pipe-full at a time.
    async fn run(&mut self, file: &SharedFd, pipe: &Pipe) -> io::Result<u64> {
        loop {
            let want = self.end.map_or(u64::MAX, |e| e - self.start);
            if want == 0 {
                return Ok(self.guard.sent);
            }
            let ask = want.min(u64::from(pipe.size())) as u32;
            let n =
                retrying(|| Splice::to_pipe(file.clone(), self.start, pipe.clone(), ask)).await?;
            if n == 0 {
                return match self.end {
                    None => Ok(self.guard.sent),
                    Some(end) => Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("copy_file: the file ends at {} before {end}", self.start),
                    )),
                };
            }
            self.start += n as u64;
            self.drain(pipe, n).await?;
        }
    }

    /// Splices the `n` bytes the pipe holds into the sink.
    async fn drain(&mut self, pipe: &Pipe, mut n: usize) -> io::Result<()> {
        let sink = self.guard.writer.get_ref();
        let (fd, pos) = (sink.shared_fd().clone(), sink.write_pos());
        while n > 0 {
            let off = pos.map_or(CURRENT_POS, Cell::get);
            self.guard.touched = true;
            let len = n as u32;
            let m = retrying(|| Splice::from_pipe(pipe.clone(), fd.clone(), off, len)).await?;
            if m == 0 {
                return Err(crate::error::write_zero(0, n));
            }
            advance(pos, m);
            self.guard.sent += m as u64;
            n -= m;
        }
        Ok(())
    }
}

/// Submits the splice `make` builds until it does not fail with a retry
/// error (`EINTR`, `EAGAIN`).
async fn retrying(mut make: impl FnMut() -> Splice) -> io::Result<usize> {
    loop {
        match Op::submit(make()).await {
            Err(e) if crate::error::is_retry(&e) => continue,
            res => return res,
        }
    }
}
