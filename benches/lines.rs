//! Line scanning of a page-cached file: `BufReader::next_line` on io_uring
//! against std's `BufReader::read_until`, same buffer size.
//!
//! `cargo bench --bench lines`

use std::io::BufRead;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use uring_bufio::{Runtime, fs::File, io::BufReader};

/// Size of the scanned file.
const FILE_BYTES: usize = 16 << 20;
/// Buffer size for both contenders.
const CAPACITY: usize = 64 << 10;

/// Writes a file of `line_len`-byte lines (newline included).
fn make_file(path: &Path, line_len: usize) {
    let mut line = vec![b'x'; line_len - 1];
    line.push(b'\n');
    let data: Vec<u8> = line.iter().copied().cycle().take(FILE_BYTES).collect();
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

criterion_group!(benches, scan);
criterion_main!(benches);
