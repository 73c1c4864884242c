//! hyper 1.x over our `BufStream` on our runtime, loaded by `wrk`: every
//! connection `wrk` opened ends without "error shutting down connection"
//! (`wrk` ends its connections with the last answer unread, so the kernel
//! resets them; before the fix nearly every one of them ended with that
//! error). On io_uring (ordinary and pooled readers) and on epoll.
//!
//! Needs `wrk` on `PATH` (`apt-get install -y wrk`); without it the test
//! says so and passes.

mod support;
mod wire;

#[path = "../examples/http/proto.rs"]
mod proto;
#[path = "../examples/http/server.rs"]
mod server;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use uring_bufio::io::BufStream;
use uring_bufio::net::TcpListener;
use uring_bufio::{DriverKind, Runtime};

/// How the connections `wrk` opened ended.
#[derive(Debug, Default)]
struct Tally {
    /// Connections served.
    conns: usize,
    /// Connections whose hyper future ended with a shutdown error.
    shutdown_errors: usize,
    /// Every error, as text.
    errors: Vec<String>,
}

impl Tally {
    /// Books how one connection ended.
    fn add(&mut self, served: io::Result<()>) {
        self.conns += 1;
        let Err(e) = served else { return };
        let hyper = e.get_ref().and_then(|e| e.downcast_ref::<hyper::Error>());
        if hyper.is_some_and(hyper::Error::is_shutdown) {
            self.shutdown_errors += 1;
        }
        self.errors.push(format!("{e} ({e:?})"));
    }
}

/// `name` on `PATH`, if it is there.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Serves every connection with hyper over our `BufStream` until a
/// connection arrives after `stop` was set; then waits for every
/// connection to end and tallies how.
fn serve(
    kind: DriverKind,
    pooled: bool,
    listener: std::net::TcpListener,
    stop: Arc<AtomicBool>,
) -> Tally {
    let rt = Runtime::builder().driver(kind).build().expect("runtime");
    support::run_on(&rt, support::TEST_LIMIT, async move {
        let listener = TcpListener::from_std(listener);
        let mut conns = Vec::new();
        loop {
            let (socket, _) = listener.accept().await?;
            if stop.load(Ordering::SeqCst) {
                break;
            }
            socket.set_nodelay(true)?;
            let stream = if pooled {
                BufStream::pooled(socket)
            } else {
                BufStream::new(socket)
            };
            conns.push(uring_bufio::spawn(server::serve_hyper(stream)));
        }
        let mut tally = Tally::default();
        for conn in conns {
            tally.add(conn.await.map_err(|e| io::Error::other(e.to_string()))?);
        }
        Ok(tally)
    })
}

/// Runs `wrk` against `addr`; returns the requests it completed.
fn run_wrk(wrk: &PathBuf, addr: SocketAddr) -> io::Result<u64> {
    let out = Command::new(wrk)
        .args(["-t1", "-c64", "-d1s", &format!("http://{addr}/")])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(io::Error::other(format!("wrk failed: {text}{err}")));
    }
    eprint!("{text}");
    // "  12345 requests in 1.00s, 1.35MB read"
    text.lines()
        .find_map(|l| l.trim().strip_suffix("read")?.split_once(" requests in"))
        .and_then(|(n, _)| n.trim().parse().ok())
        .ok_or_else(|| io::Error::other(format!("no request count in: {text}")))
}

#[test]
fn hyper_under_wrk_logs_no_shutdown_error() {
    let Some(wrk) = on_path("wrk") else {
        eprintln!("skipped: `wrk` is not on PATH (apt-get install -y wrk)");
        return;
    };
    for (kind, pooled) in [
        (DriverKind::IoUring, false),
        (DriverKind::IoUring, true),
        (DriverKind::Epoll, false),
    ] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let server = {
            let stop = stop.clone();
            std::thread::spawn(move || serve(kind, pooled, listener, stop))
        };
        let requests = run_wrk(&wrk, addr);
        // Wakes the accept loop, which sees `stop` and ends.
        stop.store(true, Ordering::SeqCst);
        drop(std::net::TcpStream::connect(addr).unwrap());
        let tally = server.join().expect("server thread");
        let requests = requests.unwrap();
        eprintln!("{kind:?}, pooled {pooled}: {requests} requests, {tally:?}");
        assert!(requests > 0 && tally.conns > 0, "{kind:?}: nothing served");
        assert_eq!(
            tally.shutdown_errors, 0,
            "{kind:?}, pooled {pooled}: shutdown errors in {:#?}",
            tally.errors
        );
    }
}
