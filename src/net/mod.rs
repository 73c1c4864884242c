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

/// `AsRawFd` and `AsFd` for a socket type holding its fd in a field `fd`
/// (a [`SharedFd`](crate::driver::SharedFd)).
macro_rules! impl_as_fd {
    ($($t:ty),*) => {$(
        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.fd.raw()
            }
        }

        impl std::os::fd::AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                // SAFETY: the fd stays open while `self` (holding it) is borrowed.
                unsafe { std::os::fd::BorrowedFd::borrow_raw(self.fd.raw()) }
            }
        }
    )*};
}

/// A connected stream socket as a source and a sink of the buffered layer.
macro_rules! impl_stream_source {
    ($t:ty) => {
        impl crate::source::sealed::Fd for $t {
            fn shared_fd(&self) -> &crate::driver::SharedFd {
                &self.fd
            }
        }
        impl crate::source::sealed::Read for $t {
            fn reads_socket(&self) -> bool {
                true
            }
        }
        impl crate::source::sealed::Write for $t {
            fn is_socket(&self) -> bool {
                true
            }
        }
        impl crate::source::ReadSource for $t {}
        impl crate::source::WriteSink for $t {}
    };
}

mod accept;
mod addr;
pub mod half;
mod socket;
pub mod tcp;
pub mod unix;

pub use tcp::{TcpListener, TcpStream};
pub use unix::{UnixListener, UnixStream};
