//! Drop safety of `BufWriter`'s writing calls: `write`, `write_all`,
//! `write_vectored`, `flush` and `shutdown` dropped after any number of
//! polls against a peer that drains slowly through small socket buffers
//! (so writes really wait); the peer must receive exactly the intended
//! stream. On io_uring and, with `URING_BUFIO_DRIVER=epoll`, on epoll.
//! Writers dropped whole, and writers whose peer is gone, are in
//! `tests/drop_writer_gone.rs`; the tool is in `support/dropping.rs`.

mod support;

use std::io::IoSlice;
use std::os::fd::AsRawFd;

use support::Rng;
use support::dropping::{
    Dropper, Tally, assert_same, binary_payload, drain_slowly, run_test, small_socket_buffers,
};
use uring_bufio::WriteSink;
use uring_bufio::io::BufWriter;
use uring_bufio::net::UnixStream;
use uring_bufio::spawn;

/// The writing calls under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteMethod {
    /// `write`: a dropped call took nothing, a finished one its count.
    Write,
    /// `write_all`: all or nothing; a dropped chunk is sent again.
    WriteAll,
    /// `write_vectored` of up to three slices, as `write`.
    WriteVectored,
    /// `flush` dropped between normal `write_all`s.
    Flush,
}

/// Capacities the writers are built with, one run each: from one byte
/// (every byte waits for the kernel) to more than the socket buffer.
const WRITE_CAPACITIES: &[usize] = &[1, 16, 64, 256, 1024, 8192];

/// Writes `payload` with `method` through `w`. Most calls are given `k`
/// polls; one in twenty is a normal call. (Strict alternation would not do: the
/// normal call would absorb every wait for the peer, leaving the cut-short
/// call a buffer with room, which never waits.) The stream intended is
/// exactly `payload`.
async fn write_with<S: WriteSink>(
    method: WriteMethod,
    w: &mut BufWriter<S>,
    d: &mut Dropper,
    payload: &[u8],
) {
    let mut pos = 0;
    // `write_all`: the length of a chunk whose call was dropped, sent again.
    let mut again = None;
    while pos < payload.len() {
        let normal = d.rng.one_in(20);
        let n = again
            .take()
            .unwrap_or_else(|| chunk_len(&mut d.rng, w.capacity()))
            .min(payload.len() - pos);
        let chunk = &payload[pos..pos + n];
        match method {
            WriteMethod::Write => {
                let res = if normal {
                    Some(w.write(chunk).await)
                } else {
                    d.attempt(w.write(chunk)).await
                };
                if let Some(res) = res {
                    pos += took(res.expect("write"), n);
                }
            }
            WriteMethod::WriteVectored => {
                let slices = split3(&mut d.rng, chunk);
                let res = if normal {
                    Some(w.write_vectored(&slices).await)
                } else {
                    d.attempt(w.write_vectored(&slices)).await
                };
                if let Some(res) = res {
                    pos += took(res.expect("write_vectored"), n);
                }
            }
            WriteMethod::WriteAll => {
                let res = if normal {
                    Some(w.write_all(chunk).await)
                } else {
                    d.attempt(w.write_all(chunk)).await
                };
                match res {
                    Some(res) => {
                        res.expect("write_all");
                        pos += n;
                    }
                    None => again = Some(n),
                }
            }
            WriteMethod::Flush => {
                // Enough bytes between flushes that the socket fills up.
                w.write_all(chunk).await.expect("write_all");
                pos += n;
                if d.rng.one_in(3) {
                    continue;
                }
                if normal {
                    w.flush().await.expect("flush");
                } else if let Some(res) = d.attempt(w.flush()).await {
                    res.expect("flush");
                }
            }
        }
    }
}

/// A chunk size: mostly small, sometimes past the writer's capacity (up to
/// 2 KiB, so that large writers still see many calls).
fn chunk_len(rng: &mut Rng, capacity: usize) -> usize {
    if rng.one_in(8) {
        rng.range(1, (3 * capacity).clamp(100, 2048))
    } else {
        rng.range(1, 300)
    }
}

/// Checks a `write`'s count: at least one byte, at most what was offered.
fn took(n: usize, offered: usize) -> usize {
    assert!(
        (1..=offered).contains(&n),
        "write took {n} of {offered} bytes"
    );
    n
}

/// `chunk` cut into three slices (some maybe empty), in order.
fn split3<'a>(rng: &mut Rng, chunk: &'a [u8]) -> [IoSlice<'a>; 3] {
    let a = rng.range(0, chunk.len());
    let b = rng.range(a, chunk.len());
    [
        IoSlice::new(&chunk[..a]),
        IoSlice::new(&chunk[a..b]),
        IoSlice::new(&chunk[b..]),
    ]
}

/// One writer test: a run of `method` per capacity (a second round while
/// some `k` has dropped fewer than [`MIN_DROPS`]), over a unix socket pair
/// with 4 KiB socket buffers and a peer that drains slowly; then shutdowns
/// dropped after k polls and a real one. The peer must receive exactly the
/// payload.
async fn writer_test(name: &str, method: WriteMethod, base_seed: u64) {
    let mut tally = Tally::default();
    let runs = WRITE_CAPACITIES.iter().chain(WRITE_CAPACITIES);
    for (run, &capacity) in runs.enumerate() {
        if run >= WRITE_CAPACITIES.len() && !tally.wants_more() {
            break;
        }
        let seed = base_seed * 1000 + run as u64;
        let mut rng = Rng::new(seed);
        let len = if capacity < 16 { 4 * 1024 } else { 64 * 1024 };
        let payload = binary_payload(&mut rng, len);
        let (near, far) = UnixStream::pair().expect("socketpair");
        small_socket_buffers(near.as_raw_fd());
        small_socket_buffers(far.as_raw_fd());
        let peer = spawn(drain_slowly(far, seed ^ 0xA5A5));
        let mut d = Dropper::new(seed ^ 0x5A5A);
        let mut w = BufWriter::with_capacity(capacity, near);
        write_with(method, &mut w, &mut d, &payload).await;
        // The last bytes may still be buffered: shutdown flushes them first,
        // so dropping it cuts short a flush or the shutdown itself.
        for _ in 0..3 {
            if let Some(res) = d.attempt(w.shutdown()).await {
                res.expect("shutdown");
            }
        }
        w.shutdown().await.expect("shutdown");
        assert!(w.buffer().is_empty(), "bytes left after shutdown");
        drop(w);
        let got = peer.await.expect("peer task panicked").expect("peer IO");
        assert_same(
            &format!("{name} (seed {seed}, capacity {capacity})"),
            &got,
            &payload,
        );
        tally.merge(&d.tally);
    }
    tally.report(name);
}

/// Declares one `#[test]` per writing method.
macro_rules! writer_tests {
    ($($(#[$doc:meta])* $name:ident: $method:ident, seed $seed:literal;)*) => {$(
        $(#[$doc])*
        #[test]
        fn $name() {
            run_test(
                stringify!($name),
                writer_test(stringify!($name), WriteMethod::$method, $seed),
            );
        }
    )*};
}

writer_tests! {
    /// `write` dropped after k polls took nothing; the peer receives the
    /// stream exactly once.
    write_dropped: Write, seed 31;
    /// `write_all` dropped after k polls took nothing (all or nothing): the
    /// chunk sent again arrives exactly once.
    write_all_dropped: WriteAll, seed 32;
    /// `write_vectored` dropped after k polls took nothing.
    write_vectored_dropped: WriteVectored, seed 33;
    /// `flush` dropped after k polls loses nothing; the next flush goes on.
    flush_dropped: Flush, seed 34;
}
