//! TLS end to end on io_uring and on epoll: rustls (tokio-rustls) over our
//! `BufStream` on the server, rustls's client over a tokio socket in
//! another thread, carrying the RESP example (hyper over TLS is in
//! `tests/http.rs`).

mod support;
mod wire;

#[path = "../examples/support/tls.rs"]
mod tls;

#[path = "../examples/resp/proto.rs"]
mod proto;
#[path = "../examples/resp/server.rs"]
mod server;

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use std::net::SocketAddr;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uring_bufio::net::TcpListener;
use wire::{on_both, show};

/// Pipelined RESP requests, one of them larger than a TLS record (16 KiB).
fn script(value: &[u8]) -> Vec<u8> {
    let mut s = b"PING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n".to_vec();
    s.extend_from_slice(format!("${}\r\n", value.len()).as_bytes());
    s.extend_from_slice(value);
    s.extend_from_slice(b"\r\nGET k\r\nINCR n\r\nGET missing\r\n");
    s
}

/// The answers to [`script`].
fn answers(value: &[u8]) -> Vec<u8> {
    let mut a = format!("+PONG\r\n+OK\r\n${}\r\n", value.len()).into_bytes();
    a.extend_from_slice(value);
    a.extend_from_slice(b"\r\n:1\r\n$-1\r\n");
    a
}

/// A tokio runtime on the calling thread, for the client side.
fn client_runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
}

/// The RESP client: sends the script over TLS, reads the answers, closes
/// with close_notify and sees the server's.
fn resp_client(addr: SocketAddr, cert: CertificateDer<'static>, value: Vec<u8>) -> io::Result<()> {
    let connector = tls::connector(cert)?;
    client_runtime()?.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
        let mut stream = connector.connect(name, tcp).await?;
        stream.write_all(&script(&value)).await?;
        let want = answers(&value);
        let mut got = vec![0; want.len()];
        stream.read_exact(&mut got).await?;
        assert!(got == want, "answers differ: {:.200}", show(&got));
        stream.shutdown().await?;
        assert_eq!(stream.read(&mut [0; 16]).await?, 0, "close_notify expected");
        Ok(())
    })
}

#[test]
fn resp_over_tls_round_trip() {
    let cert = Rc::new(tls::test_cert().expect("certificate"));
    let value: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    on_both(|_| {
        let (cert, value) = (cert.clone(), value.clone());
        async move {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            let client_cert = cert.der.clone();
            let client = std::thread::spawn(move || resp_client(addr, client_cert, value));
            let (socket, _) = support::bounded("accept", listener.accept()).await?;
            let db = Rc::new(RefCell::new(proto::Db::default()));
            server::serve_tls(tls::acceptor(&cert)?, socket, db).await?;
            client.join().expect("client thread")
        }
    });
}
