//! Small end-to-end cases over loopback, client and server as two tasks of
//! one thread: 100 line round trips on one connection, uring-bufio (io_uring
//! and epoll; on io_uring also with `BufReader::pooled` readers) against
//! tokio's current-thread runtime.
//!
//! `cargo bench --bench loopback` (the cross-thread figures, and monoio and
//! std, are in `cargo bench --bench compare`).

use std::net::SocketAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use uring_bufio::io::{BufReader, BufWriter};
use uring_bufio::net::{TcpListener, TcpStream};
use uring_bufio::{DriverKind, PoolConfig, ReadSource};

/// Round trips per iteration.
const TRIPS: u64 = 100;
/// The request line.
const LINE: &[u8] = b"PING 0123456789 0123456789 0123456789\n";

/// The pool of the pooled variant: the pool's default 16 KiB buffers, a
/// few for the two readers (client and server).
fn pool() -> PoolConfig {
    PoolConfig::new().buffers(8).max_buffers(16).per_reader(4)
}

/// A reader of `source`: pooled, or the ordinary 64 KiB one.
fn reader<S: ReadSource>(pooled: bool, source: S) -> BufReader<S> {
    if pooled {
        BufReader::pooled(source)
    } else {
        BufReader::new(source)
    }
}

/// Connects a client to a line echo server on one runtime thread and runs
/// `TRIPS` round trips per iteration on it; with `pooled`, both readers are
/// `BufReader::pooled` over the runtime's pool.
fn ours(c: &mut Criterion, kind: DriverKind, pooled: bool, name: &str) {
    let rt = uring_bufio::Runtime::builder()
        .driver(kind)
        .pool(pool())
        .build()
        .expect("runtime");
    let (mut r, mut w) = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        uring_bufio::spawn(async move {
            let (s, _) = listener.accept().await.expect("accept");
            s.set_nodelay(true).expect("nodelay");
            let (r, w) = s.into_split();
            let (mut r, mut w) = (reader(pooled, r), BufWriter::new(w));
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
        (reader(pooled, r), BufWriter::new(w))
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
    // Outside the timed loop: the echo is right, and a pooled reader did
    // not fall back to ordinary reads (it would where the kernel lacks
    // provided buffer rings, measuring the plain reader under this name).
    rt.block_on(async {
        w.write_all(LINE).await.expect("write");
        w.flush().await.expect("flush");
        let line = r.next_line().await.expect("read").expect("line");
        assert_eq!(line, &LINE[..LINE.len() - 1], "{name}: wrong echo");
    });
    assert_eq!(r.is_pooled(), pooled, "{name}: pooled mode not as asked");
}

fn uring(c: &mut Criterion) {
    ours(c, DriverKind::IoUring, false, "uring_bufio_io_uring");
}

fn uring_pooled(c: &mut Criterion) {
    ours(c, DriverKind::IoUring, true, "uring_bufio_io_uring_pooled");
}

fn epoll(c: &mut Criterion) {
    ours(c, DriverKind::Epoll, false, "uring_bufio_epoll");
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

criterion_group!(benches, uring, uring_pooled, epoll, tokio_current_thread);
criterion_main!(benches);
