//! Unix domain stream sockets: [`UnixListener`], [`UnixStream`] and the
//! stream's owned halves [`OwnedReadHalf`] / [`OwnedWriteHalf`].

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::{self as std_unix, SocketAddr};
use std::path::Path;

use super::{accept, addr, half, socket};
use crate::driver::SharedFd;
use crate::source;

/// A Unix domain socket listening for connections.
///
/// ```
/// use uring_bufio::net::{UnixListener, UnixStream};
/// # let dir = tempfile::tempdir()?;
/// # uring_bufio::Runtime::new().unwrap().block_on(async {
/// let path = dir.path().join("sock");
/// let listener = UnixListener::bind(&path)?;
/// let client = UnixStream::connect(&path).await?;
/// let (server, _peer) = listener.accept().await?;
/// assert_eq!(client.peer_addr()?.as_pathname(), Some(path.as_path()));
/// # Ok::<(), std::io::Error>(())
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UnixListener {
    /// The listening socket (blocking mode; io_uring waits for connections).
    fd: SharedFd,
    /// The multishot accept serving every `accept` call, where the kernel
    /// has it.
    accepts: accept::Accepts,
}

impl UnixListener {
    /// Binds a listener to the socket file `path`, which must not exist yet.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let listener = std_unix::UnixListener::bind(path)?;
        socket::listen(&listener)?;
        Ok(UnixListener::from_std(listener))
    }

    /// Takes over a std listener.
    pub fn from_std(listener: std_unix::UnixListener) -> UnixListener {
        UnixListener {
            fd: SharedFd::new(OwnedFd::from(listener)),
            accepts: accept::Accepts::default(),
        }
    }

    /// Waits for a connection; returns it and the peer's address (usually
    /// unnamed: clients rarely bind). The new socket is close-on-exec.
    ///
    /// Where the kernel has multishot accept (io_uring on Linux 5.19 and
    /// later), one multishot accept, armed by the first call, serves every
    /// call on this listener, also many at once from several tasks: the
    /// kernel accepts connections as they come and queues them for the next
    /// calls, up to 64; at that cap it stops (the rest wait in the listen
    /// backlog) and starts again at the next call. Elsewhere (the epoll
    /// backend, older kernels) each call is one single-shot accept; the
    /// result is the same.
    ///
    /// Cancel safe: if the future is dropped after the kernel accepted a
    /// connection for it, that connection is closed, never leaked. With
    /// multishot accept, dropping the last waiting `accept` future cancels
    /// the multishot accept and closes the connections it had accepted for
    /// the waiters; so does dropping or closing the listener.
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (fd, _) = accept::accept(&self.fd, &self.accepts).await?;
        let stream = UnixStream {
            fd: SharedFd::new(fd),
        };
        // std cannot build a unix `SocketAddr` from raw parts; ask the kernel.
        let peer = stream.peer_addr()?;
        Ok((stream, peer))
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        socket::with_std(&self.fd, std_unix::UnixListener::local_addr)
    }

    /// Closes the listener once no accept is in flight (a multishot accept
    /// is cancelled first), and reports errors dropping would ignore. The
    /// socket file stays; remove it yourself.
    pub async fn close(self) -> io::Result<()> {
        let UnixListener { fd, accepts } = self;
        drop(accepts);
        source::close(fd).await
    }
}

/// A Unix domain stream connection.
///
/// ```
/// use bytes::BytesMut;
/// use uring_bufio::net::UnixStream;
/// # uring_bufio::Runtime::new().unwrap().block_on(async {
/// let (a, b) = UnixStream::pair()?;
/// a.write_all("ping").await.0?;
/// let (n, buf) = b.read(BytesMut::with_capacity(64)).await;
/// assert_eq!(&buf[..n?], b"ping");
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct UnixStream {
    /// The connected socket (blocking mode; io_uring waits for readiness).
    fd: SharedFd,
}

impl UnixStream {
    /// Connects to the socket file `path`.
    ///
    /// Cancel safe: a dropped connect closes its socket once the kernel is
    /// done with it.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let raw = addr::unix_path_to_raw(path.as_ref())?;
        let fd = socket::connect(libc::AF_UNIX, raw).await?;
        Ok(UnixStream { fd })
    }

    /// Two streams connected to each other (`socketpair`, close-on-exec).
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std_unix::UnixStream::pair()?;
        Ok((UnixStream::from_std(a), UnixStream::from_std(b)))
    }

    /// Takes over a connected std stream.
    pub fn from_std(stream: std_unix::UnixStream) -> UnixStream {
        UnixStream {
            fd: SharedFd::new(OwnedFd::from(stream)),
        }
    }
}

/// The reading half of a [`UnixStream`], from [`UnixStream::into_split`].
pub type OwnedReadHalf = half::OwnedReadHalf<UnixStream>;

/// The writing half of a [`UnixStream`], from [`UnixStream::into_split`]; see
/// [`half::OwnedWriteHalf`] on shutting down.
pub type OwnedWriteHalf = half::OwnedWriteHalf<UnixStream>;

impl half::Family for UnixStream {
    type Addr = SocketAddr;
    type Std = std_unix::UnixStream;
    fn peer_addr(s: &std_unix::UnixStream) -> io::Result<SocketAddr> {
        s.peer_addr()
    }
    fn local_addr(s: &std_unix::UnixStream) -> io::Result<SocketAddr> {
        s.local_addr()
    }
}

impl_stream_io!(UnixStream);

impl_as_fd!(UnixListener, UnixStream);
impl_stream_source!(UnixStream);
