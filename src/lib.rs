//! Buffered streaming IO on Linux io_uring, safe to cancel at any await.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, missing_debug_implementations)]

#[cfg(not(target_os = "linux"))]
compile_error!("uring-bufio runs on Linux only: it is built on io_uring");

mod buf;
mod driver;
mod op;
mod rt;

pub mod fs;
pub mod io;
pub mod net;
mod source;
pub mod stdio;

pub use driver::Probe;
pub use rt::time;
pub use rt::{spawn, Builder, JoinError, JoinHandle, Runtime};
pub use source::{ReadSource, WriteSink};
