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

/// The methods `TcpStream` and `UnixStream` share: addresses, splitting and
/// owned-buffer IO on the socket in field `fd`.
macro_rules! impl_stream_io {
    ($t:ident) => {
        impl $t {
            /// The remote address.
            pub fn peer_addr(&self) -> std::io::Result<<$t as half::Family>::Addr> {
                half::peer_addr::<$t>(&self.fd)
            }

            /// The local address.
            pub fn local_addr(&self) -> std::io::Result<<$t as half::Family>::Addr> {
                half::local_addr::<$t>(&self.fd)
            }

            /// Splits into a read half and a write half, which may live in
            /// different tasks. The socket closes when both are dropped.
            pub fn into_split(self) -> (half::OwnedReadHalf<$t>, half::OwnedWriteHalf<$t>) {
                half::split(self.fd)
            }

            /// Receives into `buf`'s spare capacity and appends; returns how
            /// many bytes arrived, `0` at end of stream (or if `buf` has no
            /// spare capacity), and the buffer.
            pub async fn read(
                &self,
                buf: bytes::BytesMut,
            ) -> (std::io::Result<usize>, bytes::BytesMut) {
                socket::read(&self.fd, buf).await
            }

            /// Sends a prefix of `buf`; returns its length and the buffer.
            pub async fn write(
                &self,
                buf: impl Into<bytes::Bytes>,
            ) -> (std::io::Result<usize>, bytes::Bytes) {
                socket::write(&self.fd, buf.into()).await
            }

            /// Sends all of `buf`, resuming short sends; returns the buffer.
            /// A send that accepts nothing is a `WriteZero` error.
            pub async fn write_all(
                &self,
                buf: impl Into<bytes::Bytes>,
            ) -> (std::io::Result<()>, bytes::Bytes) {
                socket::write_all(&self.fd, buf.into()).await
            }

            /// Shuts down the read, write or both directions. After
            /// `Shutdown::Write` the peer reads end of stream.
            pub async fn shutdown(&self, how: std::net::Shutdown) -> std::io::Result<()> {
                socket::shutdown(&self.fd, how).await
            }

            /// Closes the connection once no operation is in flight on it,
            /// and reports errors dropping would ignore.
            pub async fn close(self) -> std::io::Result<()> {
                crate::source::close(self.fd).await
            }
        }
    };
}

mod accept;
mod addr;
mod close;
pub mod half;
mod socket;
pub mod tcp;
pub mod unix;

pub use tcp::{TcpListener, TcpStream};
pub use unix::{UnixListener, UnixStream};
