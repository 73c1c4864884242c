//! Files.
//!
//! [`File`] reads and writes with io_uring operations at an offset it keeps
//! itself; [`OpenOptions`] opens one with an io_uring `openat`, validating
//! the options as `std::fs::OpenOptions` does. A `File` is a
//! [`ReadSource`](crate::ReadSource) and a [`WriteSink`](crate::WriteSink)
//! for the buffered layer, and has raw owned-buffer methods of its own.

mod file;
mod open_options;

pub use file::File;
pub use open_options::OpenOptions;
