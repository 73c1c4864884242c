//! Fault injection: short reads and writes at every byte boundary, EINTR and
//! EAGAIN resumed without surfacing, fatal errors surfacing with the right
//! kind, refused submissions, tiny rings; and the quarantine check that no
//! released kernel-facing buffer is written after release.
//!
//! Faults are injected by the driver (feature `fault-injection`, which the
//! test suite turns on); every test runs on the backend CI selects.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use uring_bufio::faults::{FaultPlan, FaultStats, quarantine_report};
use uring_bufio::io::{BufReader, BufWriter};
use uring_bufio::net::UnixStream;
use uring_bufio::time::{sleep, timeout};
use uring_bufio::{PoolConfig, Runtime};

/// Faults injected across this file, printed for the README's figures.
static INJECTED: AtomicU64 = AtomicU64::new(0);

/// Adds a runtime's fault counts to the file total (printed, for the
/// README's figures: `cargo test --test faults -- --nocapture`).
fn count(stats: FaultStats) -> u64 {
    let n = stats.short + stats.errors + stats.submit_errors;
    let total = INJECTED.fetch_add(n, Ordering::Relaxed) + n;
    eprintln!("faults injected: {n} (file total so far {total})");
    n
}

/// Payload number `n`: `n` bytes that differ from payload to payload.
fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + n * 7) as u8).collect()
}

/// A runtime injecting `plan`, with a deliberately small ring.
fn runtime(plan: FaultPlan) -> Runtime {
    Runtime::builder()
        .entries(8)
        .faults(plan)
        .build()
        .expect("runtime")
}

/// Sends payloads 0..=`max` back to back through a BufWriter and reads each
/// back with `read_exact` through a BufReader of `capacity`; returns the
/// faults injected. Every byte must match.
fn transfer_all(plan: FaultPlan, max: usize, capacity: usize) -> u64 {
    transfer_all_on(runtime(plan), max, capacity, false)
}

/// [`transfer_all`] on `rt`; with `pooled` the reader is
/// `BufReader::pooled` (and every pool buffer must be back at the end).
fn transfer_all_on(rt: Runtime, max: usize, capacity: usize, pooled: bool) -> u64 {
    rt.block_on(async {
        let (a, b) = UnixStream::pair().expect("socketpair");
        let writer = uring_bufio::spawn(async move {
            let mut w = BufWriter::with_capacity(capacity, a);
            for n in 0..=max {
                w.write_all(&payload(n)).await?;
                if n % 7 == 0 {
                    w.flush().await?;
                }
            }
            w.shutdown().await
        });
        let mut r = if pooled {
            BufReader::pooled(b)
        } else {
            BufReader::with_capacity(capacity, b)
        };
        for n in 0..=max {
            let mut got = vec![0; n];
            r.read_exact(&mut got).await.expect("read_exact");
            assert_eq!(got, payload(n), "payload {n} (capacity {capacity})");
        }
        assert!(r.fill_buf().await.expect("eof").is_empty(), "extra bytes");
        assert_eq!(r.is_pooled(), pooled);
        writer.await.expect("writer task").expect("writer");
    });
    if pooled {
        let stats = rt.pool_stats().expect("pool");
        assert!(stats.out == 0 && stats.free == stats.buffers, "{stats:?}");
    }
    count(rt.fault_stats())
}

/// Pooled readers under the same faults: EINTR and EAGAIN completing their
/// multishot receive (injected instead of the receive; a multishot receive
/// has no length to shorten, so short transfers apply to the writer only)
/// and refused submissions are resumed, every byte arrives, every pool
/// buffer comes back; and a reset surfaces as `ConnectionReset`.
#[test]
fn pooled_readers_resume_eintr_and_eagain_and_surface_resets() {
    let plan = FaultPlan::new(17)
        .error(libc::EINTR, 0.2)
        .error(libc::EAGAIN, 0.2)
        .short_io(0.3)
        .submit_error(libc::EAGAIN, 0.1);
    let rt = Runtime::builder()
        .entries(8)
        .faults(plan)
        .pool(PoolConfig::new().buffer_size(64).buffers(4).per_reader(2))
        .build()
        .expect("runtime");
    let injected = transfer_all_on(rt, 300, 256, true);
    assert!(injected > 100, "only {injected} faults");
    let rt = Runtime::builder()
        .faults(FaultPlan::new(1).error(libc::ECONNRESET, 1.0))
        .build()
        .expect("runtime");
    let err = rt.block_on(async {
        let (mut a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        std::io::Write::write_all(&mut a, &[1u8; 100]).expect("std write");
        let mut r = BufReader::pooled(UnixStream::from_std(b));
        let mut sink = Vec::new();
        r.read_to_end(&mut sink)
            .await
            .expect_err("an injected error")
    });
    count(rt.fault_stats());
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
}

/// Every read and write limited to k bytes, for k = 1..=32: each payload of
/// 0..=512 bytes is cut at every offset that is a multiple of k (all
/// offsets for k = 1), and arrives byte-identical.
#[test]
fn short_transfers_at_every_byte_boundary() {
    let mut injected = 0;
    for k in 1..=32 {
        injected += transfer_all(FaultPlan::new(k as u64).max_io(k), 512, 4096);
    }
    assert!(injected > 10_000, "only {injected} short transfers");
}

/// Random short transfers with payloads around the buffer capacity
/// (capacity - 2 ..= capacity + 2 at several capacities).
#[test]
fn random_short_transfers_around_the_capacity() {
    for cap in [64usize, 100, 4096] {
        for seed in 0..4 {
            let plan = FaultPlan::new(seed * 977 + cap as u64).short_io(0.7);
            let rt = runtime(plan);
            rt.block_on(async {
                let (a, b) = UnixStream::pair().expect("socketpair");
                let sizes: Vec<usize> = (cap.saturating_sub(2)..=cap + 2).collect();
                let expect: Vec<u8> = sizes.iter().flat_map(|&n| payload(n)).collect();
                let writer = uring_bufio::spawn(async move {
                    let mut w = BufWriter::with_capacity(cap, a);
                    for n in sizes {
                        w.write_all(&payload(n)).await?;
                    }
                    w.shutdown().await
                });
                let mut r = BufReader::with_capacity(cap, b);
                let mut got = Vec::new();
                r.read_to_end(&mut got).await.expect("read_to_end");
                assert_eq!(got, expect, "capacity {cap}, seed {seed}");
                writer.await.expect("task").expect("writer");
            });
            count(rt.fault_stats());
        }
    }
}

/// EINTR and EAGAIN delivered instead of reads and writes are resumed, not
/// surfaced: the stream arrives byte-identical, also with refused
/// submissions (EAGAIN) on top.
#[test]
fn eintr_and_eagain_are_resumed() {
    let plan = FaultPlan::new(7)
        .error(libc::EINTR, 0.2)
        .error(libc::EAGAIN, 0.2)
        .short_io(0.3)
        .submit_error(libc::EAGAIN, 0.1);
    let injected = transfer_all(plan, 300, 256);
    assert!(injected > 100, "only {injected} faults");
}

/// Runs a reader against a writer that sends 100 bytes, with `plan`
/// injected, and returns the reader's first error.
fn first_read_error(plan: FaultPlan) -> io::Error {
    let rt = runtime(plan);
    let err = rt.block_on(async {
        // The peer writes with std: the plan applies to this runtime only.
        let (mut a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        std::io::Write::write_all(&mut a, &[1u8; 100]).expect("std write");
        let mut r = BufReader::new(UnixStream::from_std(b));
        let mut sink = Vec::new();
        r.read_to_end(&mut sink)
            .await
            .expect_err("an injected error")
    });
    count(rt.fault_stats());
    err
}

/// Fatal read errors surface with their kind (or errno where std has no kind).
#[test]
fn fatal_read_errors_surface_with_their_kind() {
    let reset = first_read_error(FaultPlan::new(1).error(libc::ECONNRESET, 1.0));
    assert_eq!(reset.kind(), io::ErrorKind::ConnectionReset, "{reset}");
    for errno in [libc::ECANCELED, libc::ENOBUFS] {
        let e = first_read_error(FaultPlan::new(2).error(errno, 1.0));
        assert_eq!(e.raw_os_error(), Some(errno), "{e}");
    }
    let refused = first_read_error(FaultPlan::new(3).submit_error(libc::ENOMEM, 1.0));
    assert_eq!(refused.kind(), io::ErrorKind::OutOfMemory, "{refused}");
}

/// A write failing with EPIPE surfaces as BrokenPipe from `flush`, and every
/// byte stays with the writer (`into_parts`).
#[test]
fn broken_pipe_on_write_keeps_every_byte() {
    let rt = runtime(FaultPlan::new(4).error(libc::EPIPE, 1.0));
    rt.block_on(async {
        let (a, _b) = UnixStream::pair().expect("socketpair");
        let mut w = BufWriter::with_capacity(64, a);
        w.write_all(&payload(200)).await.expect("copy in");
        let e = w.flush().await.expect_err("EPIPE");
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
        let (_, rest) = w.into_parts();
        assert_eq!(&rest[..], &payload(200)[..]);
    });
    assert!(count(rt.fault_stats()) > 0);
}

/// A ring of 8 entries under short transfers with 64 connections at once:
/// nothing lost (the queue fills and is submitted, completions overflow and
/// are flushed).
#[test]
fn tiny_ring_with_faults_and_many_connections() {
    let rt = runtime(FaultPlan::new(9).short_io(0.5).error(libc::EINTR, 0.1));
    rt.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..64usize {
            let (a, b) = UnixStream::pair().expect("socketpair");
            let data = payload(2000 + c);
            let expect = data.clone();
            let w = uring_bufio::spawn(async move {
                let mut w = BufWriter::with_capacity(128, a);
                w.write_all(&data).await?;
                w.shutdown().await
            });
            let r = uring_bufio::spawn(async move {
                let mut r = BufReader::with_capacity(128, b);
                let mut got = Vec::new();
                r.read_to_end(&mut got).await.map(|_| got)
            });
            tasks.push((w, r, expect));
        }
        for (w, r, expect) in tasks {
            w.await.expect("task").expect("writer");
            assert_eq!(r.await.expect("task").expect("reader"), expect);
        }
    });
    assert!(count(rt.fault_stats()) > 0);
}

/// The quarantine: readers dropped with reads in flight leave their buffers
/// to the driver; once the kernel gives them back they are pattern-filled
/// and held, then checked. No byte may change after release.
#[test]
fn quarantine_finds_no_write_after_release() {
    let (bad_before, checked_before) = quarantine_report();
    {
        let rt = Runtime::builder()
            .faults(FaultPlan::new(5))
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut keep = Vec::new();
            for i in 0..200usize {
                let (a, b) = UnixStream::pair().expect("socketpair");
                let mut r = BufReader::with_capacity(512, b);
                // Start a read, then drop the reader while it is in flight;
                // half of the peers write afterwards (into released memory
                // if the driver were wrong).
                let _ = timeout(std::time::Duration::from_millis(1), r.fill_buf()).await;
                drop(r);
                if i % 2 == 0 {
                    // May fail once the dropped reader's fd is closed (epoll
                    // releases it at once); the write only provokes.
                    let _ = a.write_all(vec![0x5Au8; 300]).await;
                }
                keep.push(a);
            }
            sleep(std::time::Duration::from_millis(20)).await;
        });
    }
    let (bad, checked) = quarantine_report();
    assert!(checked > checked_before, "the quarantine checked nothing");
    assert_eq!(bad, bad_before, "bytes written after release");
}
