//! Buffered reading and writing on buffers the streams own.
//!
//! * [`BufReader`]: `fill_buf`/`consume`, borrowed records (`next_line`,
//!   `next_until`, `fill_at_least`), std-style `read_*` methods, `lines()`,
//!   `split()`, zero-copy `frames()` with any tokio-util `Decoder`.
//! * [`BufWriter`]: `write` copies in and returns; the kernel drains behind.
//! * [`BufStream`]: both on one socket.
//!
//! All of them implement tokio's `AsyncRead`/`AsyncBufRead`/`AsyncWrite`.
//! Every future here may be dropped at any await without losing or
//! duplicating a byte; each method's documentation says exactly what a
//! dropped call has done.

mod compat;
mod copy_file;
mod deadline;
mod frames;
mod graceful;
mod lines;
mod poison;
mod read;
mod reader;
mod stream;
mod write_all;
mod write_bytes;
mod writer;

pub(crate) use write_all::write_all;

pub use copy_file::copy_file;
pub use frames::Frames;
pub use lines::{Lines, Split};
pub use reader::BufReader;
pub use stream::BufStream;
pub use write_bytes::{ZeroCopyUsage, zero_copy_usage};
pub use writer::BufWriter;
