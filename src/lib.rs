//! Buffered streaming IO on Linux io_uring, safe to cancel at any await.
//!
//! io_uring writes into buffers after the call that submitted the read has
//! returned. If that buffer is borrowed from the caller and the future is
//! dropped, the kernel writes into memory that may already be freed or
//! reused. Here the *stream* owns its buffer: [`BufReader::fill_buf`](io::BufReader::fill_buf)
//! lends `&[u8]` out of the reader's own buffer, [`BufWriter::write`](io::BufWriter::write)
//! copies in at once, and only the stream's buffer ever crosses the kernel
//! boundary. Every future can be dropped at any point: a read that completes
//! afterwards lands in the reader's buffer and is returned by the next call.
//!
//! # The parts
//!
//! * [`Runtime`]: a single-threaded executor that drives one io_uring;
//!   [`spawn`] local tasks, [`time`] for `sleep` and `timeout`.
//! * [`io`]: [`BufReader`](io::BufReader), [`BufWriter`](io::BufWriter),
//!   [`BufStream`](io::BufStream), with borrowed lines and records,
//!   zero-copy frames through any tokio-util `Decoder`, and tokio's
//!   `AsyncRead`/`AsyncBufRead`/`AsyncWrite`.
//! * [`BufReader::pooled`](io::BufReader::pooled): for many mostly idle
//!   connections, receives land in buffers the kernel picks from a pool
//!   the runtime shares ([`PoolConfig`], [`Builder::pool`]) only when data
//!   arrives, so an idle reader holds no buffer memory.
//! * `hosted` (feature `hosted`): the same streams inside a tokio
//!   current-thread runtime and `LocalSet`, driven by tokio's reactor
//!   (`hosted::start`, `hosted::attach`).
//! * Sources: [`fs::File`], [`net`] (TCP and Unix sockets, split halves),
//!   [`stdio`]. Their raw IO passes owned buffers in and out.
//!
//! ```
//! use uring_bufio::io::{BufReader, BufWriter};
//! use uring_bufio::net::{TcpListener, TcpStream};
//!
//! uring_bufio::Runtime::new()?.block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?;
//!     let server = uring_bufio::spawn(async move {
//!         let (socket, _) = listener.accept().await?;
//!         let (r, w) = socket.into_split();
//!         let (mut r, mut w) = (BufReader::new(r), BufWriter::new(w));
//!         while let Some(line) = r.next_line().await? {
//!             w.write_all(&line.to_ascii_uppercase()).await?;
//!             w.write_all(b"\n").await?;
//!         }
//!         w.shutdown().await
//!     });
//!     let (r, w) = TcpStream::connect(addr).await?.into_split();
//!     let (mut r, mut w) = (BufReader::new(r), BufWriter::new(w));
//!     w.write_all(b"hello\nworld\n").await?;
//!     w.shutdown().await?;
//!     assert_eq!(r.next_line().await?, Some(&b"HELLO"[..]));
//!     assert_eq!(r.next_line().await?, Some(&b"WORLD"[..]));
//!     assert_eq!(r.next_line().await?, None);
//!     server.await?
//! })?;
//! # Ok::<_, std::io::Error>(())
//! ```
//!
//! # Cancel safety
//!
//! Each method documents what a dropped call has done; in short, reading
//! methods that return a record (`next_line`, `read_line`, `read_until`,
//! `read_exact`, `fill_at_least`) consume nothing unless they return, and
//! `write`/`write_all` copy in nothing unless they return. Memory the kernel
//! may touch belongs to the runtime's in-flight table until the kernel's
//! completion arrives, also when a stream or the whole runtime is dropped.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, missing_debug_implementations)]

#[cfg(not(target_os = "linux"))]
compile_error!("uring-bufio runs on Linux only: it is built on io_uring");

mod buf;
mod driver;
mod error;
mod op;
mod rt;

pub mod fs;
#[cfg(feature = "hosted")]
pub mod hosted;
pub mod io;
pub mod launch;
pub mod net;
mod source;
pub mod stdio;

pub use driver::{CAPS_OFF_ENV, Cap as Capability, Kind as DriverKind, PoolConfig, PoolStats};
pub use rt::time;
pub use rt::{Builder, DRIVER_ENV, JoinError, JoinHandle, Runtime, spawn};
pub use source::{ReadSource, WriteSink};

/// Test-only fault injection and the quarantine check (feature
/// `fault-injection`: `cargo test --features fault-injection`).
#[cfg(feature = "fault-injection")]
pub mod faults {
    pub use crate::driver::faults::{FaultPlan, FaultStats, quarantine_report};
}
