//! A RESP2 server (the Redis protocol) for a useful subset: PING, ECHO,
//! SET, GET, DEL, INCR, MGET, EXISTS, CONFIG GET (an empty list), inline
//! commands and pipelining. Requests are parsed in place from the reader's
//! buffer; see `docs/protocol-servers.md`.
//!
//! ```text
//! cargo run --release --example resp -- --runtime uring --port 7379
//! redis-benchmark -p 7379 -t ping,set,get -P 16 -c 50 -q
//! ```
//!
//! `--runtime uring|epoll|pooled|tokio|hosted`: our runtime on io_uring, on
//! epoll, on io_uring with pooled readers, the tokio twin (the same
//! parser on a current-thread tokio runtime), or our streams hosted in a
//! tokio current-thread runtime (needs `--features hosted`). `--tls` serves TLS with a
//! fresh self-signed certificate whose PEM is written to `--cert-out`
//! (default `resp-cert.pem` in the temp directory).

#[path = "proto.rs"]
mod proto;
#[path = "server.rs"]
mod server;
#[path = "../support/tls.rs"]
mod tls;

use std::io;
use std::path::PathBuf;

use tokio_rustls::TlsAcceptor;
use uring_bufio::net::TcpListener;
use uring_bufio::{DriverKind, Runtime};

/// Which server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Our runtime on io_uring, ordinary readers.
    Uring,
    /// Our runtime on epoll.
    Epoll,
    /// Our runtime on io_uring, pooled readers.
    Pooled,
    /// The tokio twin.
    Tokio,
    /// Our streams inside a tokio current-thread runtime (feature `hosted`).
    Hosted,
}

/// The command line.
#[derive(Debug)]
struct Options {
    /// Which server runs.
    mode: Mode,
    /// Address to listen on.
    addr: String,
    /// Serve TLS.
    tls: bool,
    /// Where the TLS certificate's PEM is written.
    cert_out: PathBuf,
}

/// Parses `--runtime`, `--port`, `--addr`, `--tls`, `--cert-out`.
fn options() -> io::Result<Options> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    let mut opts = Options {
        mode: Mode::Uring,
        addr: "127.0.0.1:7379".to_string(),
        tls: false,
        cert_out: std::env::temp_dir().join("resp-cert.pem"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| bad(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--runtime" => {
                opts.mode = match value()?.as_str() {
                    "uring" => Mode::Uring,
                    "epoll" => Mode::Epoll,
                    "pooled" => Mode::Pooled,
                    "tokio" => Mode::Tokio,
                    "hosted" => Mode::Hosted,
                    other => return Err(bad(format!("unknown runtime {other:?}"))),
                }
            }
            "--port" => opts.addr = format!("127.0.0.1:{}", value()?),
            "--addr" => opts.addr = value()?,
            "--tls" => opts.tls = true,
            "--cert-out" => opts.cert_out = value()?.into(),
            other => return Err(bad(format!("unknown flag {other:?}"))),
        }
    }
    Ok(opts)
}

fn main() -> io::Result<()> {
    let opts = options()?;
    let acceptor = if opts.tls {
        let cert = tls::test_cert()?;
        std::fs::write(&opts.cert_out, &cert.pem)?;
        eprintln!("TLS certificate (self-signed): {}", opts.cert_out.display());
        Some(tls::acceptor(&cert)?)
    } else {
        None
    };
    let listener = std::net::TcpListener::bind(&opts.addr)?;
    eprintln!("resp ({:?}) on {}", opts.mode, listener.local_addr()?);
    let driver = match opts.mode {
        Mode::Tokio => return server::run_tokio(listener, acceptor),
        Mode::Hosted => return run_hosted(listener, acceptor),
        Mode::Epoll => DriverKind::Epoll,
        Mode::Uring | Mode::Pooled => DriverKind::IoUring,
    };
    let rt = Runtime::builder().driver(driver).build()?;
    rt.block_on(server::accept_loop(
        TcpListener::from_std(listener),
        opts.mode == Mode::Pooled,
        acceptor,
    ))
}

/// Our streams inside a tokio current-thread runtime (`uring_bufio::hosted`).
#[cfg(feature = "hosted")]
fn run_hosted(listener: std::net::TcpListener, tls: Option<TlsAcceptor>) -> io::Result<()> {
    uring_bufio::hosted::start(async move {
        server::accept_loop(TcpListener::from_std(listener), false, tls).await
    })?
}

/// Without the `hosted` feature there is no hosted mode.
#[cfg(not(feature = "hosted"))]
fn run_hosted(_: std::net::TcpListener, _: Option<TlsAcceptor>) -> io::Result<()> {
    let msg = "--runtime hosted needs the hosted feature (--features hosted)";
    Err(io::Error::new(io::ErrorKind::InvalidInput, msg))
}
