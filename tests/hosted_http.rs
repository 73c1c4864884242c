//! hyper 1.x serving HTTP/1.1 over our `BufStream` (through hyper-util's
//! `TokioIo`) in the tokio-hosted mode, answering hyper's own client, which
//! runs on a tokio socket in the same `LocalSet`.

mod hosted_support;
#[path = "support/hyper_client.rs"]
mod hyper_client;

use std::convert::Infallible;
use std::io;

use bytes::Bytes;
use hosted_support::run;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use uring_bufio::io::BufStream;
use uring_bufio::net::TcpListener;

/// Connections the client opens; each sends [`REQUESTS`] requests.
const CONNS: usize = 4;
/// Requests per keep-alive connection.
const REQUESTS: usize = 25;

/// `/echo` returns the request body, anything else `hello` (and 404 for
/// `/missing`).
async fn service(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let body = req.into_body().collect().await.map(|b| b.to_bytes());
    let (status, body) = match (path.as_str(), body) {
        ("/echo", Ok(body)) => (200, body),
        ("/missing", _) => (404, Bytes::new()),
        _ => (200, Bytes::from_static(b"hello")),
    };
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = hyper::StatusCode::from_u16(status).expect("valid status");
    Ok(res)
}

/// One client connection: `REQUESTS` requests on one keep-alive
/// connection, each answer checked.
async fn client(addr: std::net::SocketAddr, conn_no: usize) -> io::Result<usize> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let requests: Vec<_> = (0..REQUESTS)
        .map(|i| match i % 3 {
            0 => ("GET", "/", Bytes::new()),
            1 => {
                let body = format!("conn {conn_no} request {i} {}", "y".repeat(i * 97));
                ("POST", "/echo", Bytes::from(body))
            }
            _ => ("GET", "/missing", Bytes::new()),
        })
        .collect();
    let answers = hyper_client::send_all(tcp, &requests).await?;
    for (i, ((_, _, sent), (status, got))) in requests.iter().zip(&answers).enumerate() {
        let want: (u16, &[u8]) = match i % 3 {
            0 => (200, b"hello"),
            1 => (200, sent),
            _ => (404, b""),
        };
        assert_eq!((*status, &got[..]), want, "request {i} on conn {conn_no}");
    }
    Ok(answers.len())
}

#[test]
fn hyper_over_our_buf_stream_answers_a_hyper_client() {
    run(|| async {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let server = tokio::task::spawn_local(async move {
            let mut conns = Vec::new();
            for _ in 0..CONNS {
                let (socket, _) = listener.accept().await?;
                socket.set_nodelay(true)?;
                conns.push(tokio::task::spawn_local(async move {
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(BufStream::new(socket)), service_fn(service))
                        .await
                        .map_err(io::Error::other)
                }));
            }
            for c in conns {
                c.await.map_err(io::Error::other)??;
            }
            Ok::<_, io::Error>(())
        });
        let clients: Vec<_> = (0..CONNS)
            .map(|n| tokio::task::spawn_local(client(addr, n)))
            .collect();
        let mut answered = 0;
        for c in clients {
            answered += c.await.map_err(io::Error::other)??;
        }
        server.await.map_err(io::Error::other)??;
        assert_eq!(answered, CONNS * REQUESTS);
        Ok(())
    });
}
