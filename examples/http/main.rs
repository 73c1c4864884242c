//! An HTTP/1.1 server: keep-alive, pipelining, `Content-Length` bodies, a
//! header size limit (431), 400 on malformed requests. `GET /` answers
//! "Hello, World!", `POST /echo` sends the body back. Heads are parsed in
//! place with `httparse`; `--hyper` serves the same through hyper 1.x over
//! our `BufStream`. See `docs/protocol-servers.md`.
//!
//! ```text
//! cargo run --release --example http -- --runtime uring --port 7380
//! wrk -t1 -c50 -d5s http://127.0.0.1:7380/
//! ```
//!
//! `--runtime uring|epoll|pooled|tokio|hosted` as in the `resp` example.

#[path = "proto.rs"]
mod proto;
#[path = "server.rs"]
mod server;

use std::io;

use uring_bufio::net::TcpListener;
use uring_bufio::{DriverKind, Runtime};

/// The command line.
#[derive(Debug)]
struct Options {
    /// `uring`, `epoll`, `pooled` or `tokio`.
    runtime: String,
    /// Address to listen on.
    addr: String,
    /// Serve with hyper instead of the in-place parser.
    hyper: bool,
}

/// Parses `--runtime`, `--port`, `--addr`, `--hyper`.
fn options() -> io::Result<Options> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    let mut opts = Options {
        runtime: "uring".to_string(),
        addr: "127.0.0.1:7380".to_string(),
        hyper: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| bad(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--runtime" => opts.runtime = value()?,
            "--port" => opts.addr = format!("127.0.0.1:{}", value()?),
            "--addr" => opts.addr = value()?,
            "--hyper" => opts.hyper = true,
            other => return Err(bad(format!("unknown flag {other:?}"))),
        }
    }
    Ok(opts)
}

fn main() -> io::Result<()> {
    let opts = options()?;
    let listener = std::net::TcpListener::bind(&opts.addr)?;
    let how = if opts.hyper { "hyper" } else { "httparse" };
    eprintln!(
        "http ({how} on {}) on {}",
        opts.runtime,
        listener.local_addr()?
    );
    let (driver, pooled) = match opts.runtime.as_str() {
        "tokio" => return server::run_tokio(listener, opts.hyper),
        "hosted" => return run_hosted(listener, opts.hyper),
        "uring" => (DriverKind::IoUring, false),
        "pooled" => (DriverKind::IoUring, true),
        "epoll" => (DriverKind::Epoll, false),
        other => {
            let msg = format!("unknown runtime {other:?}: uring, epoll, pooled, tokio or hosted");
            return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        }
    };
    let rt = Runtime::builder().driver(driver).build()?;
    rt.block_on(server::accept_loop(
        TcpListener::from_std(listener),
        pooled,
        opts.hyper,
    ))
}

/// Our streams inside a tokio current-thread runtime (`uring_bufio::hosted`).
#[cfg(feature = "hosted")]
fn run_hosted(listener: std::net::TcpListener, hyper: bool) -> io::Result<()> {
    uring_bufio::hosted::start(async move {
        server::accept_loop(TcpListener::from_std(listener), false, hyper).await
    })?
}

/// Without the `hosted` feature there is no hosted mode.
#[cfg(not(feature = "hosted"))]
fn run_hosted(_: std::net::TcpListener, _: bool) -> io::Result<()> {
    let msg = "--runtime hosted needs the hosted feature (--features hosted)";
    Err(io::Error::new(io::ErrorKind::InvalidInput, msg))
}
