//! TCP and Unix stream sockets.
//!
//! Sources for the buffered layer, with owned-buffer IO of their own:
//!
//! * [`TcpListener`] / [`TcpStream`], and the stream's halves in [`tcp`];
//! * [`UnixListener`] / [`UnixStream`], and the stream's halves in [`unix`];
//! * both streams' halves are one generic pair, in [`half`].
//!
//! Binding is synchronous (as in std); accepting, connecting, reading,
//! writing, shutting down and closing go through io_uring. Every future is
//! safe to drop: buffers and sockets in flight stay with the kernel
//! operation until it completes.
//!
//! ```
//! use bytes::BytesMut;
//! use uring_bufio::net::{TcpListener, TcpStream};
//! # uring_bufio::Runtime::new().unwrap().block_on(async {
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! let server = uring_bufio::spawn(async move {
//!     let (stream, _) = listener.accept().await?;
//!     let (n, buf) = stream.read(BytesMut::with_capacity(64)).await;
//!     n?;
//!     stream.write_all(buf.freeze()).await.0
//! });
//! let client = TcpStream::connect(addr).await?;
//! client.write_all("echo").await.0?;
//! let (n, buf) = client.read(BytesMut::with_capacity(64)).await;
//! assert_eq!(&buf[..n?], b"echo");
//! server.await.unwrap()?;
//! # Ok::<(), std::io::Error>(())
//! # }).unwrap();
//! ```

mod accept;
mod addr;
pub mod half;
mod socket;
pub mod tcp;
pub mod unix;

pub use tcp::{TcpListener, TcpStream};
pub use unix::{UnixListener, UnixStream};
