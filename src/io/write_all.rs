//! The one `write_all` over raw owned-buffer writes (files, sockets, the
//! standard streams).

use std::future::Future;
use std::io;

use bytes::{Buf, Bytes};

use crate::error::{is_retry, write_zero};

/// Writes all of `buf` through `write` (one raw write of the rest at a
/// time), resuming short and interrupted writes; a write of 0 bytes is a
/// `WriteZero` error. On error an unknown prefix of `buf` was written.
pub(crate) async fn write_all<F, Fut>(buf: &Bytes, mut write: F) -> io::Result<()>
where
    F: FnMut(Bytes) -> Fut,
    Fut: Future<Output = (io::Result<usize>, Bytes)>,
{
    let mut rest = buf.clone();
    while !rest.is_empty() {
        match write(rest.clone()).await.0 {
            Ok(0) => return Err(write_zero(buf.len() - rest.len(), buf.len())),
            Ok(n) => rest.advance(n.min(rest.len())),
            Err(e) if is_retry(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
