//! [`OpenOptions`]: how a file is opened, validated like `std::fs::OpenOptions`.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::File;
use crate::op::{self, Op};

/// Options for opening a file, as with [`std::fs::OpenOptions`]; the open
/// itself is an io_uring `openat`.
///
/// ```
/// use uring_bufio::fs::OpenOptions;
///
/// let path = std::env::temp_dir().join(format!("uring-bufio-doc-oo-{}", std::process::id()));
/// uring_bufio::Runtime::new()?.block_on(async {
///     let file = OpenOptions::new().write(true).create_new(true).open(&path).await?;
///     let (res, _) = file.write_all("hello").await;
///     res?;
///     file.close().await
/// })?;
/// assert_eq!(std::fs::read(&path)?, b"hello");
/// std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// Open for reading.
    read: bool,
    /// Open for writing.
    write: bool,
    /// Open for appending: every write goes to the end (implies writing).
    append: bool,
    /// Truncate an existing file to length 0 (needs `write`).
    truncate: bool,
    /// Create the file if it does not exist (needs `write` or `append`).
    create: bool,
    /// Create the file, failing if it exists (overrides `create`, `truncate`).
    create_new: bool,
    /// Permission bits of a created file, before the umask (default `0o666`).
    mode: u32,
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// All options off, mode `0o666`.
    pub fn new() -> OpenOptions {
        OpenOptions {
            read: false,
            write: false,
            append: false,
            truncate: false,
            create: false,
            create_new: false,
            mode: 0o666,
        }
    }

    /// Open for reading.
    pub fn read(&mut self, read: bool) -> &mut OpenOptions {
        self.read = read;
        self
    }

    /// Open for writing.
    pub fn write(&mut self, write: bool) -> &mut OpenOptions {
        self.write = write;
        self
    }

    /// Open for appending (`O_APPEND`): every write goes to the end of the
    /// file, see [`File`] for how this meets the kept position.
    pub fn append(&mut self, append: bool) -> &mut OpenOptions {
        self.append = append;
        self
    }

    /// Truncate an existing file to length 0 (`O_TRUNC`).
    pub fn truncate(&mut self, truncate: bool) -> &mut OpenOptions {
        self.truncate = truncate;
        self
    }

    /// Create the file if it does not exist (`O_CREAT`).
    pub fn create(&mut self, create: bool) -> &mut OpenOptions {
        self.create = create;
        self
    }

    /// Create the file, failing with `AlreadyExists` if it exists
    /// (`O_CREAT | O_EXCL`).
    pub fn create_new(&mut self, create_new: bool) -> &mut OpenOptions {
        self.create_new = create_new;
        self
    }

    /// Permission bits of a created file, before the umask.
    pub fn mode(&mut self, mode: u32) -> &mut OpenOptions {
        self.mode = mode;
        self
    }

    /// Opens `path` with these options.
    ///
    /// Errors: `InvalidInput` for a combination `std` rejects (no access
    /// mode, `truncate`/`create` without write access, `truncate` with
    /// `append`) and for a path containing a NUL byte; otherwise what the
    /// kernel reports (`NotFound`, `AlreadyExists`, `PermissionDenied`, ...).
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let flags = self.access_flags()? | self.creation_flags()?;
        let path = c_path(path.as_ref())?;
        let fd = Op::submit(op::OpenAt::new(path, flags, self.mode)).await?;
        Ok(File::from_fd(fd, self.append))
    }

    /// `O_RDONLY` / `O_WRONLY` / `O_RDWR`, with `O_APPEND`.
    fn access_flags(&self) -> io::Result<i32> {
        match (self.read, self.write, self.append) {
            (true, false, false) => Ok(libc::O_RDONLY),
            (false, true, false) => Ok(libc::O_WRONLY),
            (true, true, false) => Ok(libc::O_RDWR),
            (false, _, true) => Ok(libc::O_WRONLY | libc::O_APPEND),
            (true, _, true) => Ok(libc::O_RDWR | libc::O_APPEND),
            (false, false, false) => Err(invalid(
                "no access mode: set at least one of read, write or append",
            )),
        }
    }

    /// `O_CREAT`, `O_EXCL`, `O_TRUNC`, checked against the access mode.
    fn creation_flags(&self) -> io::Result<i32> {
        if !self.write && !self.append && (self.truncate || self.create || self.create_new) {
            return Err(invalid(
                "create, create_new and truncate need write or append access",
            ));
        }
        if self.append && self.truncate && !self.create_new {
            return Err(invalid("truncate and append cannot be combined"));
        }
        Ok(match (self.create, self.truncate, self.create_new) {
            (_, _, true) => libc::O_CREAT | libc::O_EXCL,
            (true, true, false) => libc::O_CREAT | libc::O_TRUNC,
            (true, false, false) => libc::O_CREAT,
            (false, true, false) => libc::O_TRUNC,
            (false, false, false) => 0,
        })
    }
}

/// `path` as the NUL-terminated string the kernel reads.
fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| invalid("file path contains an interior NUL byte"))
}

/// An `InvalidInput` error with `msg`.
fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}
