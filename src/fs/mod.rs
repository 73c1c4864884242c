//! Files.
//!
//! [`File`] reads and writes with io_uring operations at an offset it keeps
//! itself; [`OpenOptions`] opens one with an io_uring `openat`, validating
//! the options as `std::fs::OpenOptions` does. A `File` is a
//! [`ReadSource`](crate::ReadSource) and a [`WriteSink`](crate::WriteSink)
//! for the buffered layer, and has raw owned-buffer methods of its own.

mod file;
mod open_options;

use std::future::Future;
use std::io;

use bytes::{Buf, Bytes};

pub use file::File;
pub use open_options::OpenOptions;

/// Writes all of `buf` through `write` (one raw write of the rest at a
/// time), resuming short and interrupted writes; a write of 0 bytes is a
/// `WriteZero` error. Shared by files and the standard streams.
pub(crate) async fn write_all<F, Fut>(buf: &Bytes, mut write: F) -> io::Result<()>
where
    F: FnMut(Bytes) -> Fut,
    Fut: Future<Output = (io::Result<usize>, Bytes)>,
{
    let mut rest = buf.clone();
    while !rest.is_empty() {
        match write(rest.clone()).await.0 {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "write accepted 0 bytes before the buffer was written",
                ));
            }
            Ok(n) => rest.advance(n.min(rest.len())),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
