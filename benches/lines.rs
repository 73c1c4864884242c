//! Line scanning of a page-cached file: `BufReader::next_line` on io_uring
//! against std's `BufReader::read_until`, same buffer size.
//!
//! `cargo bench --bench lines`
//!
//! For instruction counts (`valgrind --tool=callgrind`), one scan without
//! criterion: `LINES_ONCE=ours|std|hand LINE_LEN=64 target/release/deps/lines-*`
//! (`hand` is the `fill_buf` + `memchr` loop of the comparison harness).
//! `LINES_ONCE=pingpong` (our runtime; `URING_BUFIO_DRIVER` picks the
//! backend) and `LINES_ONCE=pingpong-tokio` serve `ROUNDS` (default
//! 20000) one-connection 100-byte echo round trips to a blocking client
//! thread, the harness's pingpong case, for per-request instruction and
//! system call counts (`strace -c -f`; under `valgrind --tool=callgrind`
//! with `PORT=n` and the client in another process, see
//! docs/performance.md).

use std::io::BufRead;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use uring_bufio::io::{BufReader, BufWriter};
use uring_bufio::{Runtime, fs::File, net::TcpListener};

/// Size of the scanned file.
const FILE_BYTES: usize = 16 << 20;
/// Buffer size for both contenders.
const CAPACITY: usize = 64 << 10;

/// Writes a file of `line_len`-byte lines (newline included).
fn make_file(path: &Path, line_len: usize) {
    let mut line = vec![b'x'; line_len - 1];
    line.push(b'\n');
    let data = line.repeat(FILE_BYTES / line_len);
    std::fs::write(path, data).expect("write bench file");
}

fn scan(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = Runtime::new().expect("io_uring runtime");
    let mut group = c.benchmark_group("line_scan");
    group.throughput(Throughput::Bytes(FILE_BYTES as u64));
    group.sample_size(20);
    for line_len in [64usize, 1024] {
        let path = dir.path().join(format!("lines-{line_len}"));
        make_file(&path, line_len);
        group.bench_with_input(
            BenchmarkId::new("uring_bufio_next_line", line_len),
            &path,
            |b, path| {
                b.iter(|| {
                    rt.block_on(async {
                        let file = File::open(path).await.expect("open");
                        let mut r = BufReader::with_capacity(CAPACITY, file);
                        let mut n = 0usize;
                        while let Some(line) = r.next_line().await.expect("read") {
                            n += line.len();
                        }
                        n
                    })
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("std_read_until", line_len),
            &path,
            |b, path| b.iter(|| std_read_until(path)),
        );
    }
    group.finish();
}

/// One scan of a fresh `LINE_LEN`-byte-line file by `contender`, for
/// callgrind; prints the bytes of lines seen. `FILE_MB` sets the file's
/// size (default 16) and `REPEAT` the scans (default 1; each one's time
/// goes to stderr, for `perf` or a quick look under the bench lock).
fn once(contender: &str) {
    if contender.starts_with("pingpong") {
        return pingpong(contender == "pingpong-tokio");
    }
    let env = |name: &str, default: usize| {
        std::env::var(name).map_or(default, |v| v.parse().expect(name))
    };
    let (line_len, mb, repeat) = (env("LINE_LEN", 64), env("FILE_MB", 16), env("REPEAT", 1));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lines");
    make_file_of(&path, line_len, mb << 20);
    for _ in 0..repeat {
        let (start, cpu) = (std::time::Instant::now(), cpu_secs());
        let n = scan_once(contender, &path);
        let (secs, cpu) = (start.elapsed().as_secs_f64(), cpu_secs() - cpu);
        let gb = (mb << 20) as f64 / 1e9;
        eprintln!(
            "{contender}: {:.2} GB/s, {:.2} GB per CPU second",
            gb / secs,
            gb / cpu
        );
        println!("{contender}: {n} bytes of lines");
    }
}

/// User and system CPU seconds of the calling thread so far.
fn cpu_secs() -> f64 {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: `getrusage` fills the `rusage` it is handed.
    let ru = unsafe {
        assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, ru.as_mut_ptr()), 0);
        ru.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// std's `BufReader::read_until` over the file: the bytes of its lines.
fn std_read_until(path: &Path) -> usize {
    let file = std::fs::File::open(path).expect("open");
    let mut r = std::io::BufReader::with_capacity(CAPACITY, file);
    let (mut n, mut line) = (0usize, Vec::new());
    while r.read_until(b'\n', &mut line).expect("read") > 0 {
        n += line.len();
        line.clear();
    }
    n
}

/// Writes a file of `bytes` bytes of `line_len`-byte lines.
fn make_file_of(path: &Path, line_len: usize, bytes: usize) {
    use std::io::Write;
    let mut line = vec![b'x'; line_len - 1];
    line.push(b'\n');
    let block = line.repeat((1 << 20) / line_len);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    for _ in 0..bytes / block.len() {
        out.write_all(&block).expect("write bench file");
    }
    out.flush().expect("write bench file");
}

/// One scan of `path` by `contender`; the bytes of lines seen.
fn scan_once(contender: &str, path: &Path) -> usize {
    match contender {
        "ours" => Runtime::new().expect("runtime").block_on(async {
            let file = File::open(path).await.expect("open");
            let mut r = BufReader::with_capacity(CAPACITY, file);
            let mut n = 0usize;
            while let Some(line) = r.next_line().await.expect("read") {
                n += std::hint::black_box(line).len();
            }
            n
        }),
        "hand" => {
            let file = std::fs::File::open(path).expect("open");
            let mut r = std::io::BufReader::with_capacity(CAPACITY, file);
            let (mut n, mut carry) = (0usize, Vec::new());
            loop {
                let mut buf = r.fill_buf().expect("read");
                let len = buf.len();
                if len == 0 {
                    break n + carry.len();
                }
                while let Some(i) = memchr::memchr(b'\n', buf) {
                    if carry.is_empty() {
                        n += std::hint::black_box(&buf[..i]).len();
                    } else {
                        carry.extend_from_slice(&buf[..i]);
                        n += std::hint::black_box(&carry[..]).len();
                        carry.clear();
                    }
                    buf = &buf[i + 1..];
                }
                carry.extend_from_slice(buf);
                r.consume(len);
            }
        }
        _ => std_read_until(path),
    }
}

/// One connection, 100-byte lines echoed one at a time.
fn pingpong(tokio: bool) {
    let rounds: usize = std::env::var("ROUNDS").map_or(20_000, |v| v.parse().expect("ROUNDS"));
    // PORT=n: serve on that port and leave the client to another process
    // (valgrind runs one thread at a time and does not give up its lock
    // in io_uring_enter, so a client thread here would never run).
    let port: u16 = std::env::var("PORT").map_or(0, |v| v.parse().expect("PORT"));
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let client = std::thread::spawn(move || {
        if port != 0 {
            return;
        }
        use std::io::{Read, Write};
        let mut sock = std::net::TcpStream::connect(addr).expect("connect");
        sock.set_nodelay(true).expect("nodelay");
        let mut line = vec![b'x'; 99];
        line.push(b'\n');
        let mut got = vec![0; line.len()];
        for _ in 0..rounds {
            sock.write_all(&line).expect("send");
            sock.read_exact(&mut got).expect("receive");
        }
    });
    let served = if tokio {
        serve_tokio(listener)
    } else {
        serve_ours(listener)
    };
    client.join().expect("client");
    println!("served {served} round trips");
}

/// The harness's server on our runtime.
fn serve_ours(listener: std::net::TcpListener) -> usize {
    Runtime::new().expect("runtime").block_on(async {
        let (socket, _) = TcpListener::from_std(listener)
            .accept()
            .await
            .expect("accept");
        socket.set_nodelay(true).expect("nodelay");
        let (r, w) = socket.into_split();
        let mut r = BufReader::with_capacity(CAPACITY, r);
        let mut w = BufWriter::with_capacity(CAPACITY, w);
        let mut served = 0;
        while let Some(line) = r.next_line().await.expect("read") {
            w.write_all(line).await.expect("write");
            w.write_all(b"\n").await.expect("write");
            served += 1;
            if r.buffer().is_empty() {
                w.flush().await.expect("flush");
            }
        }
        served
    })
}

/// The harness's tokio twin, on a current-thread runtime.
fn serve_tokio(listener: std::net::TcpListener) -> usize {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    listener.set_nonblocking(true).expect("nonblocking");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("tokio");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        let (socket, _) = listener.accept().await.expect("accept");
        socket.set_nodelay(true).expect("nodelay");
        let (r, w) = socket.into_split();
        let mut r = tokio::io::BufReader::with_capacity(CAPACITY, r);
        let mut w = tokio::io::BufWriter::with_capacity(CAPACITY, w);
        let (mut line, mut served) = (Vec::with_capacity(1024), 0);
        loop {
            line.clear();
            if r.read_until(b'\n', &mut line).await.expect("read") == 0 {
                break served;
            }
            w.write_all(&line).await.expect("write");
            served += 1;
            if r.buffer().is_empty() {
                w.flush().await.expect("flush");
            }
        }
    })
}

criterion_group!(benches, scan);

fn main() {
    match std::env::var("LINES_ONCE") {
        Ok(contender) => once(&contender),
        Err(_) => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}
