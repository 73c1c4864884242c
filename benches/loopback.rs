//! Small end-to-end cases over loopback, client and server as two tasks of
//! one thread: 100 line round trips on one connection, uring-bufio (io_uring
//! and epoll) against tokio's current-thread runtime.
//!
//! `cargo bench --bench loopback` (the cross-thread figures, and monoio and
//! std, are in `cargo bench --bench compare`).

use std::net::SocketAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use uring_bufio::DriverKind;
use uring_bufio::io::{BufReader, BufWriter};
use uring_bufio::net::{TcpListener, TcpStream};

/// Round trips per iteration.
const TRIPS: u64 = 100;
/// The request line.
const LINE: &[u8] = b"PING 0123456789 0123456789 0123456789\n";

/// Connects a client to a line echo server on one runtime thread and runs
/// `TRIPS` round trips per iteration on it.
fn ours(c: &mut Criterion, kind: DriverKind, name: &str) {
    let rt = uring_bufio::Runtime::builder()
        .driver(kind)
        .build()
        .expect("runtime");
    let (mut r, mut w) = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        uring_bufio::spawn(async move {
            let (s, _) = listener.accept().await.expect("accept");
            s.set_nodelay(true).expect("nodelay");
            let (r, w) = s.into_split();
            let (mut r, mut w) = (BufReader::new(r), BufWriter::new(w));
            while let Some(line) = r.next_line().await.expect("read") {
                w.write_all(line).await.expect("write");
                w.write_all(b"\n").await.expect("write");
                if r.buffer().is_empty() {
                    w.flush().await.expect("flush");
                }
            }
        });
        let s = TcpStream::connect(addr).await.expect("connect");
        s.set_nodelay(true).expect("nodelay");
        let (r, w) = s.into_split();
        (BufReader::new(r), BufWriter::new(w))
    });
    c.benchmark_group("loopback_round_trips")
        .throughput(Throughput::Elements(TRIPS))
        .bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    for _ in 0..TRIPS {
                        w.write_all(LINE).await.expect("write");
                        w.flush().await.expect("flush");
                        r.next_line().await.expect("read").expect("line");
                    }
                })
            })
        });
}

fn uring(c: &mut Criterion) {
    ours(c, DriverKind::IoUring, "uring_bufio_io_uring");
}

fn epoll(c: &mut Criterion) {
    ours(c, DriverKind::Epoll, "uring_bufio_epoll");
}

fn tokio_current_thread(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime");
    let (mut r, mut w) = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (s, _) = listener.accept().await.expect("accept");
            s.set_nodelay(true).expect("nodelay");
            let (r, w) = s.into_split();
            let mut r = tokio::io::BufReader::with_capacity(64 << 10, r);
            let mut w = tokio::io::BufWriter::with_capacity(64 << 10, w);
            let mut line = Vec::new();
            while r.read_until(b'\n', &mut line).await.expect("read") > 0 {
                w.write_all(&line).await.expect("write");
                line.clear();
                if r.buffer().is_empty() {
                    w.flush().await.expect("flush");
                }
            }
        });
        let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.set_nodelay(true).expect("nodelay");
        let (r, w) = s.into_split();
        (
            tokio::io::BufReader::with_capacity(64 << 10, r),
            tokio::io::BufWriter::with_capacity(64 << 10, w),
        )
    });
    let mut line = Vec::new();
    c.benchmark_group("loopback_round_trips")
        .throughput(Throughput::Elements(TRIPS))
        .bench_function("tokio_current_thread", |b| {
            b.iter(|| {
                rt.block_on(async {
                    for _ in 0..TRIPS {
                        w.write_all(LINE).await.expect("write");
                        w.flush().await.expect("flush");
                        line.clear();
                        r.read_until(b'\n', &mut line).await.expect("read");
                    }
                })
            })
        });
}

criterion_group!(benches, uring, epoll, tokio_current_thread);
criterion_main!(benches);
