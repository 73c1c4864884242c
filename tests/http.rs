//! The HTTP example's protocol edges, on io_uring and on epoll, over real
//! sockets on 127.0.0.1: pipelined requests cut at every byte, 400 on
//! malformed requests, 431 on oversized heads, a client closing
//! mid-request, and the hyper mode answering hyper's own client.

mod support;
mod wire;

#[path = "../examples/http/proto.rs"]
mod proto;
#[path = "../examples/http/server.rs"]
mod server;
#[path = "../examples/support/tls.rs"]
mod tls;

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use proto::{MAX_BODY, MAX_HEAD, MAX_HEADERS, Session};
use rustls::pki_types::{CertificateDer, ServerName};
use support::hyper_client;
use uring_bufio::JoinHandle;
use uring_bufio::io::BufStream;
use uring_bufio::net::{TcpListener, TcpStream};
use wire::{exchange, on_both, show, until_closed};

/// Pipelined requests: a body holding `\r\n`, `HEAD`, a 404, an empty
/// body, and a last request asking to close.
const SCRIPT: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\
POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello\r\nbody\
HEAD / HTTP/1.1\r\n\r\n\
GET /missing HTTP/1.1\r\ncontent-length: 0\r\n\r\n\
POST /echo HTTP/1.1\r\ncontent-length: 0\r\n\r\n\
GET / HTTP/1.1\r\nConnection: close\r\n\r\n";

/// One response as the in-place server writes it.
fn response(status: &str, body: &str, content_length: usize, close: bool) -> String {
    let connection = if close { "connection: close\r\n" } else { "" };
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {content_length}\r\n{connection}\r\n{body}"
    )
}

/// What the server answers to [`SCRIPT`].
fn answers() -> String {
    [
        response("200 OK", "Hello, World!", 13, false),
        response("200 OK", "hello\r\nbody", 11, false),
        response("200 OK", "", 13, false),
        response("404 Not Found", "not found", 9, false),
        response("200 OK", "", 0, false),
        response("200 OK", "Hello, World!", 13, true),
    ]
    .concat()
}

/// A connection to the example's in-place loop on this runtime.
async fn connect(pooled: bool) -> (TcpStream, JoinHandle<io::Result<()>>) {
    let (client, socket) = support::tcp_pair().await;
    (client, uring_bufio::spawn(server::serve(socket, pooled)))
}

/// Pure parser check: the script in two pieces cut at every byte gives
/// the same responses.
#[test]
fn session_answers_the_same_at_every_cut() {
    for cut in 0..=SCRIPT.len() {
        let mut session = Session::default();
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        let mut closed = false;
        for piece in [&SCRIPT[..cut], &SCRIPT[cut..]] {
            buf.extend_from_slice(piece);
            let step = session.handle(&buf);
            out.extend_from_slice(session.replies());
            session.clear_replies();
            buf.drain(..step.consumed);
            closed = step.close;
            if closed {
                break;
            }
            assert!(step.need > buf.len(), "cut {cut}: asks too little");
        }
        assert!(
            closed && buf.is_empty(),
            "cut {cut}: not closed after the last request"
        );
        assert_eq!(show(&out), show(answers().as_bytes()), "cut {cut}");
    }
}

#[test]
fn pipelined_requests_cut_at_every_byte() {
    on_both(|_| async {
        for pooled in [false, true] {
            for cut in 0..=SCRIPT.len() {
                let (client, served) = connect(pooled).await;
                let parts = [&SCRIPT[..cut], &SCRIPT[cut..]];
                let out = exchange(&client, &parts, Duration::from_millis(1)).await?;
                assert_eq!(show(&out), show(answers().as_bytes()), "cut {cut}");
                served.await??;
            }
        }
        Ok(())
    });
}

/// Sends `request` whole (the server reads all of it before answering, so
/// its close is a FIN), expects `status` with `connection: close`, then
/// the close.
async fn refused(request: &[u8], status: &str) -> io::Result<()> {
    let (client, served) = connect(false).await;
    let out = until_closed(&client, request).await?;
    let want = response(status, status, status.len(), true);
    assert_eq!(
        show(&out),
        show(want.as_bytes()),
        "for {:.60}",
        show(request)
    );
    served.await?
}

#[test]
fn malformed_requests_are_400_and_close() {
    let bad: [&[u8]; 6] = [
        b"GE(T / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/7.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ];
    on_both(|_| async {
        for request in bad {
            refused(request, "400 Bad Request").await?;
        }
        Ok(())
    });
}

#[test]
fn oversized_heads_are_431_and_close() {
    let mut long = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
    long.resize(MAX_HEAD, b'a');
    let mut many = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..=MAX_HEADERS {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    on_both(|_| async {
        refused(&long, "431 Request Header Fields Too Large").await?;
        refused(&many, "431 Request Header Fields Too Large").await
    });
}

#[test]
fn bodies_past_the_bound_and_chunked_bodies_are_refused() {
    let big = format!(
        "POST /echo HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY + 1
    );
    let chunked = b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    on_both(|_| async {
        refused(big.as_bytes(), "413 Payload Too Large").await?;
        refused(chunked, "501 Not Implemented").await
    });
}

#[test]
fn http10_and_connection_close_end_the_connection() {
    on_both(|_| async {
        let (client, served) = connect(false).await;
        let out = until_closed(&client, b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.1\r\n\r\n").await?;
        assert_eq!(
            show(&out),
            show(response("200 OK", "Hello, World!", 13, true).as_bytes())
        );
        served.await??;
        let (client, served) = connect(false).await;
        let request = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n";
        let out = until_closed(&client, request).await?;
        let want = response("200 OK", "Hello, World!", 13, false)
            + &response("200 OK", "Hello, World!", 13, true);
        assert_eq!(show(&out), show(want.as_bytes()));
        served.await?
    });
}

#[test]
fn client_closing_mid_request_ends_the_connection_quietly() {
    let cuts: [&[u8]; 3] = [
        b"GET / HTTP/1.1\r\nHost: a\r\n",
        b"POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nhalf",
        b"GE",
    ];
    on_both(|_| async {
        for pooled in [false, true] {
            for cut in cuts {
                let (client, served) = connect(pooled).await;
                let request = [b"GET / HTTP/1.1\r\n\r\n", cut].concat();
                let out = exchange(&client, &[&request], Duration::ZERO).await?;
                let want = response("200 OK", "Hello, World!", 13, false);
                assert_eq!(show(&out), show(want.as_bytes()), "after {:?}", show(cut));
                served.await??;
                let (client, served) = connect(pooled).await;
                let (res, _) = client.write_all(Bytes::copy_from_slice(cut)).await;
                res?;
                client.close().await?;
                served.await??;
            }
        }
        Ok(())
    });
}

/// hyper's client on a tokio runtime of its own thread: each request on
/// one keep-alive connection, answered `(status, body)`.
fn hyper_client(addr: std::net::SocketAddr) -> io::Result<Vec<(u16, Bytes)>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let requests = [
            ("GET", "/", Bytes::new()),
            ("POST", "/echo", Bytes::from_static(b"ping\r\n")),
            ("GET", "/x", Bytes::new()),
        ];
        hyper_client::send_all(tcp, &requests).await
    })
}

#[test]
fn hyper_mode_answers_a_hyper_client() {
    on_both(|_| async {
        for pooled in [false, true] {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            let client = std::thread::spawn(move || hyper_client(addr));
            let (socket, _) = support::bounded("accept", listener.accept()).await?;
            let stream = if pooled {
                BufStream::pooled(socket)
            } else {
                BufStream::new(socket)
            };
            let served = server::serve_hyper(stream).await;
            let answers = client.join().expect("client thread");
            let answers = answers.map_err(|e| io::Error::other(format!("client: {e}")))?;
            served.map_err(|e| io::Error::other(format!("server: {e}")))?;
            let want = [
                (200, "Hello, World!"),
                (200, "ping\r\n"),
                (404, "not found"),
            ];
            let got: Vec<(u16, &str)> = answers
                .iter()
                .map(|(s, b)| (*s, std::str::from_utf8(b).unwrap_or("?")))
                .collect();
            assert_eq!(got, want, "pooled {pooled}");
        }
        Ok(())
    });
}

/// hyper over our `BufStream` sends its own 400 and 431.
#[test]
fn hyper_mode_refuses_malformed_and_oversized_heads() {
    let mut long = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
    long.resize(MAX_HEAD, b'a');
    on_both(|_| async {
        for (request, status) in [(&b"GE(T / HTTP/1.1\r\n\r\n"[..], "400"), (&long[..], "431")] {
            let (client, socket) = support::tcp_pair().await;
            let served = uring_bufio::spawn(server::serve_hyper(BufStream::new(socket)));
            let out = until_closed(&client, request).await?;
            let want = format!("HTTP/1.1 {status} ");
            assert!(out.starts_with(want.as_bytes()), "got {:?}", show(&out));
            assert!(served.await?.is_err(), "hyper reports the parse error");
        }
        Ok(())
    });
}

/// hyper's client over rustls, on a tokio socket: one request.
fn hyper_tls_client(addr: SocketAddr, cert: CertificateDer<'static>) -> io::Result<(u16, Bytes)> {
    let connector = tls::connector(cert)?;
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?
        .block_on(async move {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
            let stream = connector.connect(name, tcp).await?;
            let request = [("POST", "/echo", Bytes::from_static(b"over tls"))];
            let mut answers = hyper_client::send_all(stream, &request).await?;
            Ok(answers.remove(0))
        })
}

#[test]
fn hyper_over_tls_round_trip() {
    let cert = Rc::new(tls::test_cert().expect("certificate"));
    on_both(|_| {
        let cert = cert.clone();
        async move {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            let client_cert = cert.der.clone();
            let client = std::thread::spawn(move || hyper_tls_client(addr, client_cert));
            let (socket, _) = support::bounded("accept", listener.accept()).await?;
            let stream = tls::acceptor(&cert)?.accept(BufStream::new(socket)).await?;
            server::serve_hyper(stream).await?;
            let (status, body) = client.join().expect("client thread")?;
            assert_eq!((status, &body[..]), (200, &b"over tls"[..]));
            Ok(())
        }
    });
}
