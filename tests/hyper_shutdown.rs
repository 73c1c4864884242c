//! hyper 1.x over our `BufStream` ends every connection `Ok` however the
//! client leaves once its answer arrived: hyper's own client hanging up,
//! a plain close, a reset (`SO_LINGER` 0), and a close with the answer
//! still unread (the kernel resets: what `wrk` does with the connections
//! it ends). On both backends, with ordinary and pooled readers, and the
//! same clients against hyper on tokio's `TcpStream` as the reference.
//!
//! The regression: after a reset hyper takes the failed read for end of
//! stream and calls `poll_shutdown`; `shutdown(2)` then fails with
//! `ENOTCONN`, which tokio's `TcpStream` counts as done and ours returned,
//! so hyper ended the connection with "error shutting down connection".
//!
//! The raw clients but one leave only once the server is idle (its answer
//! flushed, its next read pending), seen through [`Watched`]; the one that
//! resets at once checks that a flush is done before the client can have
//! the answer (a reset that arrives while a flush still waits for the
//! send's completion is read by hyper right after that flush and reported
//! as a connection error, see `docs/protocol-servers.md`).

mod support;
mod wire;

#[path = "../examples/http/proto.rs"]
mod proto;
#[path = "../examples/http/server.rs"]
mod server;

use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::mpsc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use support::hyper_client;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use uring_bufio::io::BufStream;
use uring_bufio::net::TcpListener;
use wire::on_both;

/// The request every raw client sends (keep-alive: the server waits for
/// more until the client leaves).
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";

/// The body of the answer to [`REQUEST`].
const BODY: &[u8] = b"Hello, World!";

/// How a client leaves after its answer arrived.
#[derive(Clone, Copy, Debug)]
enum Leave {
    /// hyper's client, on tokio, drops its connection.
    HyperClient,
    /// Reads the answer, then closes (FIN).
    Close,
    /// Reads the answer, then resets (`SO_LINGER` 0: RST).
    Reset,
    /// Reads the answer and resets at once, without waiting for the
    /// server to go idle: hyper's flush must be done before the client can
    /// have the answer, or hyper reads the reset first and reports it. On
    /// io_uring that holds because a flush whose send would go to the
    /// kernel alone sends directly (`sendmsg`); before, the flush waited
    /// for the send's completion and this case failed every time.
    ResetAtOnce,
    /// Waits for the answer without reading it, then closes: unread data,
    /// so the kernel resets the connection (as `wrk` ends its connections).
    CloseUnread,
}

const LEAVES: [Leave; 5] = [
    Leave::HyperClient,
    Leave::Close,
    Leave::Reset,
    Leave::ResetAtOnce,
    Leave::CloseUnread,
];

/// A stream passed through unchanged, which tells `idle` (once) when the
/// server is idle: something was written and flushed, and a read after
/// that is pending.
struct Watched<S> {
    /// The server's stream.
    inner: S,
    /// Bytes were written since the start.
    written: bool,
    /// A flush completed after bytes were written.
    flushed: bool,
    /// Told once, then `None`.
    idle: Option<mpsc::Sender<()>>,
}

impl<S> Watched<S> {
    /// Watches `inner`.
    fn new(inner: S, idle: mpsc::Sender<()>) -> Watched<S> {
        Watched {
            inner,
            written: false,
            flushed: false,
            idle: Some(idle),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if res.is_pending()
            && self.flushed
            && let Some(idle) = self.idle.take()
        {
            let _ = idle.send(());
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        src: &[u8],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, src);
        self.written |= matches!(res, Poll::Ready(Ok(n)) if n > 0);
        res
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.written |= matches!(res, Poll::Ready(Ok(n)) if n > 0);
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let res = Pin::new(&mut self.inner).poll_flush(cx);
        self.flushed |= self.written && matches!(res, Poll::Ready(Ok(())));
        res
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Runs one client against `addr`; a raw client waits for its answer and
/// for `idle`, then leaves as `leave` says.
fn client(addr: SocketAddr, leave: Leave, idle: mpsc::Receiver<()>) -> io::Result<()> {
    if let Leave::HyperClient = leave {
        return hyper_client(addr);
    }
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(support::OP_LIMIT))?;
    stream.write_all(REQUEST)?;
    let mut answer = Vec::new();
    let mut buf = [0; 1024];
    while !answer.ends_with(BODY) {
        let n = match leave {
            // Look without taking: the bytes stay unread in the socket.
            Leave::CloseUnread => {
                let n = stream.peek(&mut buf)?;
                answer = buf[..n].to_vec();
                n
            }
            _ => {
                let n = stream.read(&mut buf)?;
                answer.extend_from_slice(&buf[..n]);
                n
            }
        };
        if n == 0 {
            return Err(io::Error::other("server closed before answering"));
        }
    }
    assert!(answer.starts_with(b"HTTP/1.1 200 OK\r\n"));
    if !matches!(leave, Leave::ResetAtOnce) {
        idle.recv_timeout(support::OP_LIMIT)
            .map_err(|e| io::Error::other(format!("the server never went idle: {e}")))?;
    }
    if let Leave::Reset | Leave::ResetAtOnce = leave {
        socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO))?;
    }
    Ok(())
}

/// hyper's client on a tokio runtime of its own: one request, then the
/// connection is dropped.
fn hyper_client(addr: SocketAddr) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let answers = hyper_client::send_all(tcp, &[("GET", "/", Bytes::new())]).await?;
        assert_eq!(answers, [(200, Bytes::from_static(BODY))]);
        Ok(())
    })
}

/// What the server's connection future gave, as a message naming the case.
fn served(leave: Leave, what: &str, res: io::Result<()>) -> io::Result<()> {
    res.map_err(|e| io::Error::other(format!("{what}, client {leave:?}: {e} ({e:?})")))
}

/// hyper over our `BufStream` ends `Ok` for every way of leaving.
#[test]
fn hyper_on_our_streams_ends_ok_however_the_client_leaves() {
    on_both(|kind| async move {
        for pooled in [false, true] {
            for leave in LEAVES {
                let listener = TcpListener::bind("127.0.0.1:0")?;
                let addr = listener.local_addr()?;
                let (idle, idle_rx) = mpsc::channel();
                let client = std::thread::spawn(move || client(addr, leave, idle_rx));
                let (socket, _) = support::bounded("accept", listener.accept()).await?;
                let stream = if pooled {
                    BufStream::pooled(socket)
                } else {
                    BufStream::new(socket)
                };
                let stream = Watched::new(stream, idle);
                let res = support::bounded("serve", server::serve_hyper(stream)).await;
                client.join().expect("client thread")?;
                served(leave, &format!("{kind:?}, pooled {pooled}"), res)?;
            }
        }
        Ok(())
    });
}

/// The reference: the same clients against hyper on tokio's `TcpStream`
/// (whose `poll_shutdown` counts `ENOTCONN` as done) end `Ok` too.
#[test]
fn hyper_on_tokio_streams_ends_ok_however_the_client_leaves() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    rt.block_on(async {
        for leave in LEAVES {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let (idle, idle_rx) = mpsc::channel();
            let client = std::thread::spawn(move || client(addr, leave, idle_rx));
            let (socket, _) = listener.accept().await?;
            let res = server::serve_hyper(Watched::new(socket, idle)).await;
            client.join().expect("client thread")?;
            served(leave, "tokio", res)?;
        }
        Ok::<_, io::Error>(())
    })
    .unwrap();
}
