//! TCP: [`TcpListener`], [`TcpStream`] and the stream's owned halves
//! [`OwnedReadHalf`] / [`OwnedWriteHalf`].

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::OwnedFd;

use super::{accept, addr, half, socket};
use crate::driver::SharedFd;
use crate::source;

/// A TCP socket listening for connections.
///
/// ```
/// use uring_bufio::net::{TcpListener, TcpStream};
/// # uring_bufio::Runtime::new().unwrap().block_on(async {
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let client = TcpStream::connect(listener.local_addr()?).await?;
/// let (server, peer) = listener.accept().await?;
/// assert_eq!(peer, client.local_addr()?);
/// assert_eq!(server.peer_addr()?, client.local_addr()?);
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct TcpListener {
    /// The listening socket (blocking mode; io_uring waits for connections).
    fd: SharedFd,
    /// The multishot accept serving every `accept` call, where the kernel
    /// has it.
    accepts: accept::Accepts,
}

impl TcpListener {
    /// Binds a listener to the first of `addr`'s addresses that works (as
    /// [`std::net::TcpListener::bind`]; name resolution blocks), with a
    /// listen backlog of 1024 (std uses 128).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let listener = std::net::TcpListener::bind(addr)?;
        socket::listen(&listener)?;
        Ok(TcpListener::from_std(listener))
    }

    /// Takes over a std listener.
    pub fn from_std(listener: std::net::TcpListener) -> TcpListener {
        TcpListener {
            fd: SharedFd::new(OwnedFd::from(listener)),
            accepts: accept::Accepts::default(),
        }
    }

    /// Waits for a connection; returns it and the peer's address. The new
    /// socket is close-on-exec.
    ///
    /// Where the kernel has multishot accept (io_uring on Linux 5.19 and
    /// later), one multishot accept, armed by the first call, serves every
    /// call on this listener, also many at once from several tasks: the
    /// kernel accepts connections as they come and queues them for the next
    /// calls, up to 64; at that cap it stops (the rest wait in the listen
    /// backlog) and starts again at the next call. The peer's address then
    /// comes from `getpeername`; a connection the peer already reset has
    /// none and is closed and skipped. Elsewhere (the epoll backend, older
    /// kernels) each call is one single-shot accept; the result is the same.
    ///
    /// Cancel safe: if the future is dropped after the kernel accepted a
    /// connection for it, that connection is closed, never leaked. With
    /// multishot accept, dropping the last waiting `accept` future cancels
    /// the multishot accept and closes the connections it had accepted for
    /// the waiters; so does dropping or closing the listener.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        loop {
            let (fd, raw) = accept::accept(&self.fd, &self.accepts).await?;
            let stream = TcpStream {
                fd: SharedFd::new(fd),
            };
            let peer = match raw {
                Some((storage, len)) => addr::socket_addr_from_raw(&storage, len),
                None => stream.peer_addr(),
            };
            match peer {
                Ok(peer) => return Ok((stream, peer)),
                // Reset before we asked: no address, and nothing to serve.
                Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The address the listener is bound to (with the port the kernel chose
    /// for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        socket::with_std(&self.fd, std::net::TcpListener::local_addr)
    }

    /// Closes the listener once no accept is in flight (a multishot accept
    /// is cancelled first), and reports errors dropping would ignore.
    pub async fn close(self) -> io::Result<()> {
        let TcpListener { fd, accepts } = self;
        drop(accepts);
        source::close(fd).await
    }
}

/// A TCP connection.
///
/// Read and write with owned buffers ([`read`](TcpStream::read),
/// [`write_all`](TcpStream::write_all)), or hand it to the buffered layer.
/// [`into_split`](TcpStream::into_split) gives halves that two tasks can use
/// at once.
///
/// ```
/// use bytes::BytesMut;
/// use uring_bufio::net::{TcpListener, TcpStream};
/// # uring_bufio::Runtime::new().unwrap().block_on(async {
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let client = TcpStream::connect(listener.local_addr()?).await?;
/// let (server, _) = listener.accept().await?;
/// client.write_all("ping").await.0?;
/// let (n, buf) = server.read(BytesMut::with_capacity(64)).await;
/// assert_eq!(&buf[..n?], b"ping");
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct TcpStream {
    /// The connected socket (blocking mode; io_uring waits for readiness).
    fd: SharedFd,
}

impl TcpStream {
    /// Connects to `addr`, trying each resolved address in turn; fails with
    /// the last address's error. Name resolution blocks the thread.
    ///
    /// Cancel safe: a dropped connect closes its socket once the kernel is
    /// done with it.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last = None;
        for addr in addr.to_socket_addrs()? {
            match connect_one(&addr).await {
                Ok(fd) => return Ok(TcpStream { fd }),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "address resolved to no addresses",
            )
        }))
    }

    /// Takes over a connected std stream.
    pub fn from_std(stream: std::net::TcpStream) -> TcpStream {
        TcpStream {
            fd: SharedFd::new(OwnedFd::from(stream)),
        }
    }

    /// Gives the socket back as a std stream, to hand it to another thread
    /// (a stream with operations in flight belongs to its runtime and must
    /// not move). A stream just accepted or connected has none.
    ///
    /// # Errors
    /// `WouldBlock` while an operation is still in flight on the socket
    /// (a dropped read the kernel has not returned yet); the stream is then
    /// dropped, and its socket closes once the kernel is done with it.
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        let raw = self.fd.into_raw().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                "an operation is still in flight on this stream",
            )
        })?;
        // SAFETY: `into_raw` gave up the fd: nothing else owns or closes it.
        Ok(unsafe { <std::net::TcpStream as std::os::fd::FromRawFd>::from_raw_fd(raw) })
    }

    /// Sets `TCP_NODELAY` (send small segments at once, no Nagle delay).
    ///
    /// ```
    /// # use uring_bufio::net::{TcpListener, TcpStream};
    /// # uring_bufio::Runtime::new().unwrap().block_on(async {
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// stream.set_nodelay(true)?;
    /// assert!(stream.nodelay()?);
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        socket::with_std(&self.fd, |s: &std::net::TcpStream| s.set_nodelay(nodelay))
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        socket::with_std(&self.fd, std::net::TcpStream::nodelay)
    }
}

/// A new socket of `addr`'s family, connected to it.
async fn connect_one(addr: &SocketAddr) -> io::Result<SharedFd> {
    let domain = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    socket::connect(domain, addr::socket_addr_to_raw(addr)).await
}

impl_stream_io!(TcpStream);

/// The reading half of a [`TcpStream`], from [`TcpStream::into_split`].
pub type OwnedReadHalf = half::OwnedReadHalf<TcpStream>;

/// The writing half of a [`TcpStream`], from [`TcpStream::into_split`]; see
/// [`half::OwnedWriteHalf`] on shutting down.
pub type OwnedWriteHalf = half::OwnedWriteHalf<TcpStream>;

impl half::Family for TcpStream {
    type Addr = SocketAddr;
    type Std = std::net::TcpStream;
    fn peer_addr(s: &std::net::TcpStream) -> io::Result<SocketAddr> {
        s.peer_addr()
    }
    fn local_addr(s: &std::net::TcpStream) -> io::Result<SocketAddr> {
        s.local_addr()
    }
}

impl_as_fd!(TcpListener, TcpStream);
impl_stream_source!(TcpStream);
