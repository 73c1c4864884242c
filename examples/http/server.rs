//! The HTTP example's connection loops: `httparse` on our reader's buffer,
//! hyper 1.x over our `BufStream`, and the tokio twin (the same parser on
//! a `BytesMut` filled by `read_buf`). Included by the tests with `#[path]`,
//! next to `proto.rs`.
#![allow(dead_code)] // each includer uses its own part

use std::convert::Infallible;
use std::io;

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use uring_bufio::io::{BufReader, BufStream, BufWriter};
use uring_bufio::net::{TcpListener, TcpStream};

use super::proto::{MAX_BODY, MAX_HEAD, MAX_HEADERS, Session, Status, route};

/// Serves one connection on our runtime: heads are parsed where they lie
/// in the reader's buffer, and the responses to everything that arrived
/// together are flushed at once.
pub async fn serve(socket: TcpStream, pooled: bool) -> io::Result<()> {
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
        let step = session.handle(buf);
        r.consume(step.consumed);
        w.write_all(session.replies()).await?;
        session.clear_replies();
        if step.close {
            return w.shutdown().await;
        }
        w.flush().await?;
        need = step.need;
    }
}

/// Serves one connection the tokio way: `read_buf` into a `BytesMut`, the
/// same parser on its bytes, `write_all` of each batch of responses.
pub async fn serve_async<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) -> io::Result<()> {
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
        let step = session.handle(&buf);
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

/// The service of [`route`] for hyper.
async fn hyper_service(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let (status, reply) = match Limited::new(body, MAX_BODY).collect().await {
        Ok(body) => {
            let body = body.to_bytes();
            let (status, reply) = route(parts.method.as_str(), parts.uri.path(), &body);
            (status, Bytes::copy_from_slice(reply))
        }
        Err(_) => (Status::PayloadTooLarge, Bytes::from_static(b"too large")),
    };
    let mut response = Response::new(Full::new(reply));
    *response.status_mut() = hyper::StatusCode::from_u16(status.code()).expect("a valid code");
    let text = hyper::header::HeaderValue::from_static("text/plain");
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, text);
    Ok(response)
}

/// Serves one connection with hyper's HTTP/1 server over any tokio stream
/// (our `BufStream`, or tokio's `TcpStream` in the twin). Heads longer than
/// [`MAX_HEAD`] or with more than [`MAX_HEADERS`] headers are answered 431
/// by hyper itself. (Not with `pipeline_flush(true)`: hyper 1.12 then
/// closes on a parse error without sending its 400 or 431.) `half_close`:
/// our writer reports a flush done only when the kernel's send completes,
/// and a client that got its last response may close before that; without
/// it hyper calls that EOF "connection closed before message completed".
pub async fn serve_hyper<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> io::Result<()> {
    http1::Builder::new()
        .max_header_size(MAX_HEAD)
        .max_headers(MAX_HEADERS)
        .half_close(true)
        .serve_connection(TokioIo::new(stream), service_fn(hyper_service))
        .await
        .map_err(io::Error::other)
}

/// Accepts connections on our runtime until the listener fails.
pub async fn accept_loop(listener: TcpListener, pooled: bool, hyper: bool) -> io::Result<()> {
    loop {
        let (socket, peer) = listener.accept().await?;
        uring_bufio::spawn(async move {
            let served = if hyper {
                socket.set_nodelay(true)?;
                let stream = if pooled {
                    BufStream::pooled(socket)
                } else {
                    BufStream::new(socket)
                };
                serve_hyper(stream).await
            } else {
                serve(socket, pooled).await
            };
            if let Err(e) = &served {
                eprintln!("{peer}: {e}");
            }
            served
        });
    }
}

/// The tokio twin: a current-thread tokio runtime, `tokio::spawn` per
/// connection, the same parser (or hyper, with `hyper`).
pub fn run_tokio(listener: std::net::TcpListener, hyper: bool) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        loop {
            let (socket, peer) = listener.accept().await?;
            socket.set_nodelay(true)?;
            tokio::spawn(async move {
                let served = if hyper {
                    serve_hyper(socket).await
                } else {
                    serve_async(socket).await
                };
                if let Err(e) = served {
                    eprintln!("{peer}: {e}");
                }
            });
        }
    })
}
