//! The RESP example's connection loops: on our runtime (the parser reads
//! the `BufReader`'s own buffer), and the tokio way (a `BytesMut` filled by
//! `read_buf`, as mini-redis does) for tokio's `TcpStream` and for TLS
//! streams. Included by the tests with `#[path]`, next to `proto.rs`.
#![allow(dead_code)] // each includer uses its own part

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use uring_bufio::io::{BufReader, BufStream, BufWriter};
use uring_bufio::net::{TcpListener, TcpStream};

use super::proto::{Db, Session, Step};

/// A store the connections of one server share.
pub trait SharedDb: Clone {
    /// Runs `f` on the store.
    fn with<R>(&self, f: impl FnOnce(&mut Db) -> R) -> R;
}

/// On our single-threaded runtime.
impl SharedDb for Rc<RefCell<Db>> {
    fn with<R>(&self, f: impl FnOnce(&mut Db) -> R) -> R {
        f(&mut self.borrow_mut())
    }
}

/// On tokio, whose `spawn` wants `Send` tasks (mini-redis does the same).
impl SharedDb for Arc<Mutex<Db>> {
    fn with<R>(&self, f: impl FnOnce(&mut Db) -> R) -> R {
        f(&mut self.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Serves one connection on our runtime: requests are parsed where they
/// lie in the reader's buffer; the replies to everything that arrived
/// together are flushed at once. A client closing mid-request ends the
/// connection quietly.
pub async fn serve(socket: TcpStream, db: Rc<RefCell<Db>>, pooled: bool) -> io::Result<()> {
    socket.set_nodelay(true)?;
    let (r, w) = socket.into_split();
    let mut r = if pooled {
        BufReader::pooled(r)
    } else {
        BufReader::new(r)
    };
    let mut w = BufWriter::new(w);
    let mut session = Session::default();
    let mut need = 1;
    loop {
        let buf = match r.fill_at_least(need).await {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let step = db.with(|db| session.handle(buf, db));
        r.consume(step.consumed);
        w.write_all(session.replies()).await?;
        session.clear_replies();
        if step.close {
            return w.shutdown().await;
        }
        // Nothing whole is left in the buffer: answer what was asked.
        w.flush().await?;
        need = step.need;
    }
}

/// Serves one connection the tokio way: `read_buf` into a `BytesMut`, the
/// same parser on its bytes, `write_all` of each batch of replies. Used by
/// the tokio twin and for TLS (where rustls hands out plaintext through
/// `AsyncRead`).
pub async fn serve_async<S, D>(mut stream: S, db: D) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    D: SharedDb,
{
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut session = Session::default();
    let mut need = 1;
    loop {
        while buf.len() < need {
            buf.reserve((need - buf.len()).max(4096));
            if stream.read_buf(&mut buf).await? == 0 {
                // Over TLS this sends close_notify; the peer may be gone.
                let _ = stream.shutdown().await;
                return Ok(());
            }
        }
        let step: Step = db.with(|db| session.handle(&buf, db));
        buf.advance(step.consumed);
        if !session.replies().is_empty() {
            stream.write_all(session.replies()).await?;
            session.clear_replies();
            // A no-op on a `TcpStream`; TLS over a buffered stream needs it.
            stream.flush().await?;
        }
        if step.close {
            return stream.shutdown().await;
        }
        need = step.need;
    }
}

/// Accepts connections on our runtime until the listener fails; with `tls`
/// each connection is a TLS server over a `BufStream` of the socket.
pub async fn accept_loop(
    listener: TcpListener,
    pooled: bool,
    tls: Option<TlsAcceptor>,
) -> io::Result<()> {
    let db = Rc::new(RefCell::new(Db::default()));
    loop {
        let (socket, peer) = listener.accept().await?;
        let db = db.clone();
        let tls = tls.clone();
        uring_bufio::spawn(async move {
            let served = match tls {
                None => serve(socket, db, pooled).await,
                Some(acceptor) => serve_tls(acceptor, socket, db).await,
            };
            if let Err(e) = served {
                eprintln!("{peer}: {e}");
            }
        });
    }
}

/// TLS on our runtime: rustls reads the ciphertext out of the `BufStream`'s
/// reader through tokio's `AsyncRead`, and the parser reads the plaintext
/// out of `serve_async`'s `BytesMut`.
pub async fn serve_tls(
    acceptor: TlsAcceptor,
    socket: TcpStream,
    db: Rc<RefCell<Db>>,
) -> io::Result<()> {
    socket.set_nodelay(true)?;
    let tls = acceptor.accept(BufStream::new(socket)).await?;
    serve_async(tls, db).await
}

/// The tokio twin: a current-thread tokio runtime, `tokio::spawn` per
/// connection, the same parser and store.
pub fn run_tokio(listener: std::net::TcpListener, tls: Option<TlsAcceptor>) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let db = Arc::new(Mutex::new(Db::default()));
        loop {
            let (socket, peer) = listener.accept().await?;
            socket.set_nodelay(true)?;
            let db = db.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let served = match tls {
                    None => serve_async(socket, db).await,
                    Some(acceptor) => match acceptor.accept(socket).await {
                        Ok(tls) => serve_async(tls, db).await,
                        Err(e) => Err(e),
                    },
                };
                if let Err(e) = served {
                    eprintln!("{peer}: {e}");
                }
            });
        }
    })
}
