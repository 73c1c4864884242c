//! [`File`]: a file whose reads and writes are io_uring operations at an
//! offset the file keeps itself.

use std::cell::Cell;
use std::io::{self, SeekFrom};
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use bytes::{Bytes, BytesMut};

use super::OpenOptions;
use crate::driver::SharedFd;
use crate::op::{self, CURRENT_POS, Op};
use crate::source::{self, ReadSource, WriteSink, sealed};

/// Largest offset the kernel accepts (`loff_t` is signed); anything above
/// would also collide with [`CURRENT_POS`].
const MAX_OFFSET: u64 = i64::MAX as u64;

/// An open file.
///
/// The file keeps the offset of the next sequential read or write itself
/// ([`position`](File::position)) and passes it with every operation, so the
/// kernel's file offset is never used, and [`seek`](File::seek) is a plain
/// assignment. [`read_at`](File::read_at) and [`write_at`](File::write_at)
/// neither use nor move it.
///
/// **Append mode** ([`OpenOptions::append`]): writes go to the end of the
/// file, whatever the kept position, and do not move it; reads and seeks use
/// it as usual (it starts at 0, as with `std`).
///
/// The raw methods take and give back owned buffers: the kernel works on the
/// buffer while the call is in flight. If such a future is dropped, the
/// operation still completes (the driver owns the buffer until then) but its
/// result is lost and the kept position does not move; the buffered
/// [`ReadSource`]/[`WriteSink`] layer is the one that loses nothing.
///
/// ```
/// use uring_bufio::fs::File;
///
/// let path = std::env::temp_dir().join(format!("uring-bufio-doc-file-{}", std::process::id()));
/// uring_bufio::Runtime::new()?.block_on(async {
///     let file = File::create(&path).await?;
///     file.write_all("hello, world").await.0?;
///     file.close().await?;
///
///     let file = File::open(&path).await?;
///     let (n, buf) = file.read(bytes::BytesMut::with_capacity(64)).await;
///     assert_eq!(n?, 12);
///     assert_eq!(&buf[..], b"hello, world");
///     assert_eq!(file.position(), 12);
///     file.close().await
/// })?;
/// std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct File {
    /// The fd, shared with every operation in flight on it.
    fd: SharedFd,
    /// Offset of the next sequential read or write; always `<= MAX_OFFSET`.
    pos: Cell<u64>,
    /// Opened with `O_APPEND`: writes go to the end and leave `pos` alone.
    append: bool,
}

impl File {
    /// Opens `path` for reading.
    ///
    /// ```
    /// # uring_bufio::Runtime::new()?.block_on(async {
    /// let err = uring_bufio::fs::File::open("/no/such/file").await.unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// # });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Opens `path` for writing, creating it (mode `0o666` before the umask)
    /// or truncating it.
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    /// A blank [`OpenOptions`].
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Takes over a `std` file. The kept position starts at the std file's
    /// current offset (0 if it has none, as with pipes, where the kernel
    /// ignores it); append mode is taken from the fd's flags.
    pub fn from_std(file: std::fs::File) -> File {
        let fd = OwnedFd::from(file);
        let append = has_append_flag(fd.as_raw_fd());
        let pos = current_offset(fd.as_raw_fd());
        let file = File::from_fd(fd, append);
        file.pos.set(pos);
        file
    }

    /// A file at position 0 owning `fd`.
    pub(super) fn from_fd(fd: OwnedFd, append: bool) -> File {
        File {
            fd: SharedFd::new(fd),
            pos: Cell::new(0),
            append,
        }
    }

    /// Reads at the kept position into the spare capacity of `buf`
    /// (appending after `buf.len()`), and moves the position by the count.
    /// `Ok(0)` means end of file, or that `buf` had no spare capacity.
    pub async fn read(&self, buf: BytesMut) -> (io::Result<usize>, BytesMut) {
        let (res, buf) = self.read_at(buf, self.pos.get()).await;
        if let Ok(n) = res {
            source::advance(Some(&self.pos), n);
        }
        (res, buf)
    }

    /// Reads at `offset` into the spare capacity of `buf`; the kept position
    /// does not move. An offset above `i64::MAX` is `InvalidInput`.
    pub async fn read_at(&self, buf: BytesMut, offset: u64) -> (io::Result<usize>, BytesMut) {
        if let Err(e) = check_offset(offset) {
            return (Err(e), buf);
        }
        if buf.capacity() == buf.len() {
            return (Ok(0), buf);
        }
        Op::submit(op::Read::new(self.fd.clone(), buf, offset)).await
    }

    /// Writes `buf` at the kept position (at the end in append mode) and
    /// moves the position by the count written, which may be short.
    pub async fn write(&self, buf: impl Into<Bytes>) -> (io::Result<usize>, Bytes) {
        let buf = buf.into();
        if self.append {
            return Op::submit(op::Write::new(self.fd.clone(), buf, CURRENT_POS)).await;
        }
        let (res, buf) = self.write_at(buf, self.pos.get()).await;
        if let Ok(n) = res {
            source::advance(Some(&self.pos), n);
        }
        (res, buf)
    }

    /// Writes `buf` at `offset` (which may be short); the kept position does
    /// not move. In append mode the kernel appends whatever the offset, as
    /// `pwrite(2)` does on Linux. An offset above `i64::MAX` is `InvalidInput`.
    pub async fn write_at(&self, buf: impl Into<Bytes>, offset: u64) -> (io::Result<usize>, Bytes) {
        let buf = buf.into();
        if let Err(e) = check_offset(offset) {
            return (Err(e), buf);
        }
        Op::submit(op::Write::new(self.fd.clone(), buf, offset)).await
    }

    /// Writes all of `buf` at the kept position, resuming short and
    /// interrupted writes; a write of 0 bytes is a `WriteZero` error. Gives
    /// back all of `buf`. On error the position has moved by what was written.
    pub async fn write_all(&self, buf: impl Into<Bytes>) -> (io::Result<()>, Bytes) {
        let buf = buf.into();
        let res = crate::io::write_all(&buf, |chunk| self.write(chunk)).await;
        (res, buf)
    }

    /// Flushes data and metadata to the device (`fsync(2)`).
    pub async fn sync_all(&self) -> io::Result<()> {
        Op::submit(op::Fsync::new(self.fd.clone(), false)).await
    }

    /// Flushes data, and only the metadata needed to read it, to the device
    /// (`fdatasync(2)`).
    pub async fn sync_data(&self) -> io::Result<()> {
        Op::submit(op::Fsync::new(self.fd.clone(), true)).await
    }

    /// Moves the kept position and returns it; `End` asks the kernel for the
    /// file size. A position below 0 or above `i64::MAX` is `InvalidInput`.
    ///
    /// ```
    /// # use std::io::SeekFrom;
    /// # let path = std::env::temp_dir().join(format!("uring-bufio-doc-seek-{}", std::process::id()));
    /// # std::fs::write(&path, b"0123456789")?;
    /// # uring_bufio::Runtime::new()?.block_on(async {
    /// let file = uring_bufio::fs::File::open(&path).await?;
    /// assert_eq!(file.seek(SeekFrom::End(-4))?, 6);
    /// assert_eq!(file.seek(SeekFrom::Current(1))?, 7);
    /// assert!(file.seek(SeekFrom::Current(-8)).is_err());
    /// # file.close().await
    /// # })?;
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn seek(&self, pos: SeekFrom) -> io::Result<u64> {
        let (base, delta) = match pos {
            SeekFrom::Start(n) => (n, 0),
            SeekFrom::Current(d) => (self.pos.get(), d),
            SeekFrom::End(d) => (self.metadata()?.len(), d),
        };
        let target = i128::from(base) + i128::from(delta);
        if target < 0 {
            return Err(invalid("seek to a negative position"));
        }
        let target = u64::try_from(target).map_err(|_| invalid("seek position too large"))?;
        self.pos.set(check_offset(target)?);
        Ok(target)
    }

    /// The kept position: where the next [`read`](File::read) or
    /// [`write`](File::write) goes.
    pub fn position(&self) -> u64 {
        self.pos.get()
    }

    /// The file's metadata (`fstat(2)`, synchronous).
    pub fn metadata(&self) -> io::Result<std::fs::Metadata> {
        // SAFETY: the fd is open for as long as `self` lives (held by
        // `self.fd`); `ManuallyDrop` keeps the borrowed `std` file from
        // closing it.
        let std = ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(self.fd.raw()) });
        std.metadata()
    }

    /// Closes the file once no operation uses it any more, and reports the
    /// kernel's result (dropping the file closes it too, silently).
    pub async fn close(self) -> io::Result<()> {
        source::close(self.fd).await
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd stays open for as long as `self` (which holds it)
        // lives, and the borrow cannot outlive `self`.
        unsafe { BorrowedFd::borrow_raw(self.fd.raw()) }
    }
}

impl sealed::Fd for File {
    fn shared_fd(&self) -> &SharedFd {
        &self.fd
    }
}

impl sealed::Read for File {
    fn read_pos(&self) -> Option<&Cell<u64>> {
        Some(&self.pos)
    }
}

impl sealed::Write for File {
    fn write_pos(&self) -> Option<&Cell<u64>> {
        if self.append { None } else { Some(&self.pos) }
    }

    fn is_socket(&self) -> bool {
        false
    }
}

impl ReadSource for File {}

impl WriteSink for File {}

/// `offset`, or `InvalidInput` if the kernel cannot take it.
fn check_offset(offset: u64) -> io::Result<u64> {
    if offset > MAX_OFFSET {
        return Err(invalid("file offset above i64::MAX"));
    }
    Ok(offset)
}

/// The fd's file offset, or 0 for fds without one (pipes, sockets).
fn current_offset(fd: RawFd) -> u64 {
    // SAFETY: `lseek` on an fd the caller owns only reads its offset.
    let off = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
    u64::try_from(off).unwrap_or(0)
}

/// The fd was opened with `O_APPEND`.
fn has_append_flag(fd: RawFd) -> bool {
    // SAFETY: `F_GETFL` on an fd the caller owns only reads its flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    flags >= 0 && flags & libc::O_APPEND != 0
}

/// An `InvalidInput` error with `msg`.
fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl From<std::fs::File> for File {
    fn from(file: std::fs::File) -> File {
        File::from_std(file)
    }
}
