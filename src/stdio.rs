//! Standard input, output and error.
//!
//! [`stdin`], [`stdout`] and [`stderr`] each hold a private duplicate of fd
//! 0, 1 or 2 (close-on-exec, numbered 3 or above), so dropping them never
//! closes the process's real streams. The duplicate shares the stream's
//! open file description: its offset, when the stream is a regular file, and
//! its flags. Reads and writes go at the current position, so they also
//! work when a stream is redirected to a file.
//!
//! If the stream cannot be duplicated (say fd 0 is closed), [`stdin`] and
//! friends still return a value whose reads and writes all fail with
//! `EBADF`, just as using the closed fd would; [`try_stdin`] and friends
//! report the error at once instead.
//!
//! ```no_run
//! # uring_bufio::Runtime::new()?.block_on(async {
//! // Copy stdin to stdout.
//! let (stdin, stdout) = (uring_bufio::stdio::stdin(), uring_bufio::stdio::stdout());
//! loop {
//!     let (n, buf) = stdin.read(bytes::BytesMut::with_capacity(64 * 1024)).await;
//!     if n? == 0 {
//!         break;
//!     }
//!     stdout.write_all(buf).await.0?;
//! }
//! # Ok::<(), std::io::Error>(())
//! # })?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;

use bytes::{Bytes, BytesMut};

use crate::driver::SharedFd;
use crate::op::{self, CURRENT_POS, Op};
use crate::source::{ReadSource, WriteSink, sealed};

/// Lowest fd number a duplicate may take: never the slot of a closed
/// standard stream, which a later `open` would otherwise fill.
const FIRST_FREE_FD: RawFd = 3;

/// The process's standard input (a duplicate of fd 0).
#[derive(Debug)]
pub struct Stdin {
    /// The duplicate of fd 0 (or a placeholder that fails every read).
    fd: SharedFd,
}

/// The process's standard output (a duplicate of fd 1).
#[derive(Debug)]
pub struct Stdout {
    /// The duplicate of fd 1.
    out: Output,
}

/// The process's standard error (a duplicate of fd 2).
#[derive(Debug)]
pub struct Stderr {
    /// The duplicate of fd 2.
    out: Output,
}

/// The writing side shared by [`Stdout`] and [`Stderr`].
#[derive(Debug)]
struct Output {
    /// The duplicate (or a placeholder that fails every write).
    fd: SharedFd,
    /// `fstat` found a socket: writes use `send` with `MSG_NOSIGNAL`, so a
    /// closed peer is an `EPIPE` error rather than a `SIGPIPE`.
    socket: bool,
}

/// Standard input. If fd 0 cannot be duplicated, every read fails with
/// `EBADF`.
///
/// # Panics
///
/// If the process has no fd left even for the placeholder (`EMFILE`); use
/// [`try_stdin`] to get that as an error.
pub fn stdin() -> Stdin {
    Stdin {
        fd: SharedFd::new(dup_or_placeholder(0, "stdin")),
    }
}

/// Standard output. If fd 1 cannot be duplicated, every write fails with
/// `EBADF`.
///
/// ```
/// # uring_bufio::Runtime::new()?.block_on(async {
/// uring_bufio::stdio::stdout().write_all("hello\n").await.0?;
/// # Ok::<(), std::io::Error>(())
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Panics
///
/// If the process has no fd left even for the placeholder (`EMFILE`); use
/// [`try_stdout`] to get that as an error.
pub fn stdout() -> Stdout {
    Stdout {
        out: Output::new(dup_or_placeholder(1, "stdout")),
    }
}

/// Standard error. If fd 2 cannot be duplicated, every write fails with
/// `EBADF`.
///
/// # Panics
///
/// If the process has no fd left even for the placeholder (`EMFILE`); use
/// [`try_stderr`] to get that as an error.
pub fn stderr() -> Stderr {
    Stderr {
        out: Output::new(dup_or_placeholder(2, "stderr")),
    }
}

/// Standard input, or the error duplicating fd 0 (`EBADF` when it is closed).
pub fn try_stdin() -> io::Result<Stdin> {
    Ok(Stdin {
        fd: SharedFd::new(dup_stream(0, "stdin")?),
    })
}

/// Standard output, or the error duplicating fd 1.
pub fn try_stdout() -> io::Result<Stdout> {
    Ok(Stdout {
        out: Output::new(dup_stream(1, "stdout")?),
    })
}

/// Standard error, or the error duplicating fd 2.
pub fn try_stderr() -> io::Result<Stderr> {
    Ok(Stderr {
        out: Output::new(dup_stream(2, "stderr")?),
    })
}

impl Stdin {
    /// Reads into the spare capacity of `buf` (appending after `buf.len()`)
    /// at the stream's current position. `Ok(0)` means end of input, or that
    /// `buf` had no spare capacity.
    ///
    /// If the future is dropped, the read still completes (the driver owns
    /// `buf` until then) and its bytes are lost; a
    /// [`BufReader`](crate::io::BufReader) keeps them.
    pub async fn read(&self, buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        if buf.capacity() == buf.len() {
            return (Ok(0), buf);
        }
        Op::submit(op::Read::new(self.fd.clone(), buf, CURRENT_POS)).await
    }
}

impl Stdout {
    /// Writes `buf` (the count may be short).
    pub async fn write(&self, buf: impl Into<Bytes>) -> (io::Result<usize>, Bytes) {
        self.out.write(buf.into()).await
    }

    /// Writes all of `buf`, resuming short and interrupted writes; a write
    /// of 0 bytes is a `WriteZero` error. Gives back all of `buf`.
    pub async fn write_all(&self, buf: impl Into<Bytes>) -> (io::Result<()>, Bytes) {
        self.out.write_all(buf.into()).await
    }
}

impl Stderr {
    /// Writes `buf` (the count may be short).
    pub async fn write(&self, buf: impl Into<Bytes>) -> (io::Result<usize>, Bytes) {
        self.out.write(buf.into()).await
    }

    /// Writes all of `buf`, resuming short and interrupted writes; a write
    /// of 0 bytes is a `WriteZero` error. Gives back all of `buf`.
    pub async fn write_all(&self, buf: impl Into<Bytes>) -> (io::Result<()>, Bytes) {
        self.out.write_all(buf.into()).await
    }
}

impl Output {
    /// Wraps `fd`, asking `fstat` whether it is a socket (not, if it fails).
    fn new(fd: OwnedFd) -> Output {
        let file = std::fs::File::from(fd);
        let socket = file.metadata().is_ok_and(|m| m.file_type().is_socket());
        Output {
            fd: SharedFd::new(OwnedFd::from(file)),
            socket,
        }
    }

    /// One write (a send on sockets) at the current position.
    async fn write(&self, buf: Bytes) -> (io::Result<usize>, Bytes) {
        if self.socket {
            Op::submit(op::Send::new(self.fd.clone(), buf)).await
        } else {
            Op::submit(op::Write::new(self.fd.clone(), buf, CURRENT_POS)).await
        }
    }

    /// Writes all of `buf`.
    async fn write_all(&self, buf: Bytes) -> (io::Result<()>, Bytes) {
        let res = crate::io::write_all(&buf, |chunk| self.write(chunk)).await;
        (res, buf)
    }
}

/// A duplicate of standard stream `fd`, or the placeholder if that fails.
fn dup_or_placeholder(fd: RawFd, name: &str) -> OwnedFd {
    match dup_stream(fd, name).or_else(|_| placeholder()) {
        Ok(fd) => fd,
        Err(e) => panic!("uring-bufio: cannot duplicate {name}, nor open a placeholder: {e}"),
    }
}

/// A duplicate of standard stream `fd`, with the stream named in the error.
fn dup_stream(fd: RawFd, name: &str) -> io::Result<OwnedFd> {
    dup_high(fd)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot duplicate {name} (fd {fd}): {e}")))
}

/// A close-on-exec duplicate of `fd`, numbered [`FIRST_FREE_FD`] or above.
fn dup_high(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: `F_DUPFD_CLOEXEC` only creates a new fd; an fd that is not open
    // is reported as `EBADF`, nothing else is touched.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, FIRST_FREE_FD) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh fd that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// An `O_PATH` fd on `/`: the kernel fails every read and write on it with
/// `EBADF`. Moved to [`FIRST_FREE_FD`] or above if it landed in the slot of
/// a closed standard stream.
fn placeholder() -> io::Result<OwnedFd> {
    // SAFETY: the path is a NUL-terminated literal; `open` only creates an fd.
    let raw = unsafe { libc::open(c"/".as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh fd that nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    if fd.as_raw_fd() >= FIRST_FREE_FD {
        Ok(fd)
    } else {
        dup_high(fd.as_raw_fd())
    }
}

impl sealed::Fd for Stdin {
    fn shared_fd(&self) -> &SharedFd {
        &self.fd
    }
}

impl sealed::Read for Stdin {}

impl ReadSource for Stdin {}

impl sealed::Fd for Stdout {
    fn shared_fd(&self) -> &SharedFd {
        &self.out.fd
    }
}

impl sealed::Write for Stdout {
    fn is_socket(&self) -> bool {
        self.out.socket
    }
}

impl WriteSink for Stdout {}

impl sealed::Fd for Stderr {
    fn shared_fd(&self) -> &SharedFd {
        &self.out.fd
    }
}

impl sealed::Write for Stderr {
    fn is_socket(&self) -> bool {
        self.out.socket
    }
}

impl WriteSink for Stderr {}
