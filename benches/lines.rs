//! Line scanning of a page-cached file: `BufReader::next_line` on io_uring
//! against std's `BufReader::read_until`, same buffer size.
//!
//! `cargo bench --bench lines`
//!
//! For instruction counts (`valgrind --tool=callgrind`), one scan without
//! criterion: `LINES_ONCE=ours|std|hand LINE_LEN=64 target/release/deps/lines-*`
//! (`hand` is the `fill_buf` + `memchr` loop of the comparison harness).

use std::io::BufRead;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use uring_bufio::{Runtime, fs::File, io::BufReader};

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
            |b, path| {
                b.iter(|| {
                    let file = std::fs::File::open(path).expect("open");
                    let mut r = std::io::BufReader::with_capacity(CAPACITY, file);
                    let (mut n, mut line) = (0usize, Vec::new());
                    while r.read_until(b'\n', &mut line).expect("read") > 0 {
                        n += line.len();
                        line.clear();
                    }
                    n
                })
            },
        );
    }
    group.finish();
}

/// One scan of a fresh `LINE_LEN`-byte-line file by `contender`, for
/// callgrind; prints the bytes of lines seen.
fn once(contender: &str) {
    let line_len = std::env::var("LINE_LEN").map_or(64, |v| v.parse().expect("LINE_LEN"));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lines");
    make_file(&path, line_len);
    let n = match contender {
        "ours" => Runtime::new().expect("runtime").block_on(async {
            let file = File::open(&path).await.expect("open");
            let mut r = BufReader::with_capacity(CAPACITY, file);
            let mut n = 0usize;
            while let Some(line) = r.next_line().await.expect("read") {
                n += std::hint::black_box(line).len();
            }
            n
        }),
        "hand" => {
            let file = std::fs::File::open(&path).expect("open");
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
        _ => {
            let file = std::fs::File::open(&path).expect("open");
            let mut r = std::io::BufReader::with_capacity(CAPACITY, file);
            let (mut n, mut line) = (0usize, Vec::new());
            while r.read_until(b'\n', &mut line).expect("read") > 0 {
                n += line.len();
                line.clear();
            }
            n
        }
    };
    println!("{contender}: {n} bytes of lines");
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
