//! The cost per record without IO: cutting lines (`next_line`) and frames
//! (`frames(LengthDelimitedCodec)`) out of a reader whose whole input is
//! already buffered, against the same work on a plain slice.
//!
//! `cargo bench --bench records`
//!
//! Each iteration's untimed setup opens a page-cached file and calls
//! `fill_at_least(len)`, so the timed part touches no kernel interface.

use std::hint::black_box;
use std::io::BufRead;
use std::path::Path;

use bytes::{BufMut, BytesMut};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::StreamExt;
use tokio_util::codec::{Decoder, LengthDelimitedCodec};
use uring_bufio::{Runtime, fs::File, io::BufReader};

/// Bytes of input per iteration.
const INPUT: usize = 1 << 20;

/// `INPUT` bytes of `len`-byte lines, newline included.
fn lines(len: usize) -> Vec<u8> {
    let mut line = vec![b'x'; len - 1];
    line.push(b'\n');
    line.iter()
        .copied()
        .cycle()
        .take(INPUT / len * len)
        .collect()
}

/// Frames of a `payload`-byte body behind a 4-byte big-endian length, as
/// many as fit in `INPUT` bytes.
fn frames(payload: usize) -> Vec<u8> {
    let mut out = BytesMut::new();
    while out.len() + 4 + payload <= INPUT {
        out.put_u32(payload as u32);
        out.put_bytes(b'y', payload);
    }
    out.to_vec()
}

/// A reader over `path` with all of it buffered.
fn filled(rt: &Runtime, path: &Path) -> BufReader<File> {
    rt.block_on(async {
        let len = std::fs::metadata(path).expect("stat").len() as usize;
        let mut r = BufReader::with_capacity(len, File::open(path).await.expect("open"));
        r.fill_at_least(len).await.expect("fill");
        r
    })
}

fn next_line(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = Runtime::new().expect("runtime");
    let mut group = c.benchmark_group("next_line_buffered");
    for len in [64usize, 1024] {
        let data = lines(len);
        let count = data.len() / len;
        let path = dir.path().join(format!("lines-{len}"));
        std::fs::write(&path, &data).expect("write");
        group.throughput(Throughput::Elements(count as u64));
        group.bench_function(BenchmarkId::new("uring_bufio_next_line", len), |b| {
            b.iter_batched(
                || filled(&rt, &path),
                |mut r| {
                    rt.block_on(async {
                        let mut n = 0;
                        for _ in 0..count {
                            n += r.next_line().await.expect("read").expect("line").len();
                        }
                        black_box(n);
                    });
                    r
                },
                BatchSize::PerIteration,
            )
        });
        group.bench_function(BenchmarkId::new("slice_memchr", len), |b| {
            b.iter(|| {
                let (mut rest, mut n) = (&data[..], 0);
                while let Some(i) = memchr::memchr(b'\n', rest) {
                    n += black_box(&rest[..i]).len();
                    rest = &rest[i + 1..];
                }
                n
            })
        });
        group.bench_function(BenchmarkId::new("std_read_until_slice", len), |b| {
            let mut line = Vec::with_capacity(len);
            b.iter(|| {
                let (mut r, mut n) = (&data[..], 0);
                while r.read_until(b'\n', &mut line).expect("read") > 0 {
                    n += black_box(&line).len();
                    line.clear();
                }
                n
            })
        });
    }
    group.finish();
}

fn length_delimited(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = Runtime::new().expect("runtime");
    let mut group = c.benchmark_group("frames_buffered");
    for payload in [60usize, 1020] {
        let data = frames(payload);
        let count = data.len() / (payload + 4);
        let path = dir.path().join(format!("frames-{payload}"));
        std::fs::write(&path, &data).expect("write");
        group.throughput(Throughput::Elements(count as u64));
        group.bench_function(BenchmarkId::new("uring_bufio_frames", payload), |b| {
            b.iter_batched(
                || filled(&rt, &path),
                |r| {
                    let mut frames = r.frames(LengthDelimitedCodec::new());
                    rt.block_on(async {
                        for _ in 0..count {
                            let f = frames.next().await.expect("frame").expect("decode");
                            black_box(f);
                        }
                    });
                    frames
                },
                BatchSize::PerIteration,
            )
        });
        group.bench_function(BenchmarkId::new("codec_on_bytesmut", payload), |b| {
            b.iter_batched(
                || BytesMut::from(&data[..]),
                |mut buf| {
                    let mut codec = LengthDelimitedCodec::new();
                    while let Some(f) = codec.decode(&mut buf).expect("decode") {
                        black_box(f);
                    }
                    buf
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, next_line, length_delimited);
criterion_main!(benches);
