//! Drop safety of `BufReader`'s reading calls: every future of
//! `BufReader` (and of the `Lines`, `Split` and `Frames` streams) may be
//! dropped after any number of polls without losing, duplicating or
//! corrupting a byte, and without a panic afterwards, with the reader's own
//! buffer and with pooled readers (`BufReader::pooled`, small pool buffers
//! of the runtime; every pool buffer back at the end). On io_uring and,
//! with `URING_BUFIO_DRIVER=epoll`, on epoll.
//!
//! Each test trickles a known payload through a unix or TCP socket and, for
//! `k` cycling through `1..=K_MAX`, alternates one call given `k` polls
//! (see `support/dropping.rs`) with one normal call of the same method;
//! whatever came out must rebuild the payload exactly. Each test ends by
//! checking that its runtime still works. Whole readers dropped are in
//! `tests/drop_reader.rs`, writers in `tests/drop_writer.rs` and
//! `tests/drop_writer_gone.rs`.
//!
//! Counts of dropped futures are printed per test (`--nocapture`).
//! Randomness is a fixed-seed xorshift generator: failures reproduce.

mod support;

use bytes::Bytes;
use support::Rng;
use support::dropping::{Dropper, Peer, Tally, assert_same, run_test_in, trickle};
use support::pool::Mode;
use support::read_calls::{READ_CAPACITIES, READ_RUNS, ReadMethod, read_with};
use uring_bufio::net::{TcpStream, UnixStream};
use uring_bufio::spawn;

/// Ordinary readers.
const PLAIN: Mode = Mode::Plain;

/// One reader test: [`READ_RUNS`] (or more) runs of `method` over socket
/// type `S`, each with its own seed, reader capacity (ordinary readers; a
/// pooled reader receives into the runtime's pool) and trickling peer task.
async fn reader_test<S: Peer>(name: &str, mode: Mode, method: ReadMethod, base_seed: u64) {
    let mut tally = Tally::default();
    for run in 0..3 * READ_RUNS {
        if run >= READ_RUNS && !tally.wants_more() {
            break;
        }
        let seed = base_seed * 1000 + run;
        let mut rng = Rng::new(seed);
        let payload = method.payload(&mut rng);
        let capacity = READ_CAPACITIES[(base_seed + run) as usize % READ_CAPACITIES.len()];
        let (near, far) = S::pair().await;
        let peer = spawn(trickle(far, Bytes::from(payload.clone()), seed ^ 0xA5A5));
        let mut d = Dropper::new(seed ^ 0x5A5A);
        let reader = mode.reader(near, Some(capacity));
        let got = read_with(method, reader, &mut d, &payload).await;
        assert_same(
            &format!("{name} ({mode:?}, seed {seed}, capacity {capacity})"),
            &got,
            &payload,
        );
        peer.await.expect("peer task panicked").expect("peer IO");
        tally.merge(&d.tally);
    }
    tally.report(name);
}

/// Declares one `#[test]` per (method, transport, mode).
macro_rules! reader_tests {
    ($($(#[$doc:meta])* $name:ident: $method:ident over $sock:ty, $mode:expr, seed $seed:literal;)*) => {$(
        $(#[$doc])*
        #[test]
        fn $name() {
            run_test_in(
                $mode,
                stringify!($name),
                reader_test::<$sock>(stringify!($name), $mode, ReadMethod::$method, $seed),
            );
        }
    )*};
}

reader_tests! {
    /// `fill_buf` dropped after k polls consumed nothing (unix socket).
    fill_buf_dropped_unix: FillBuf over UnixStream, PLAIN, seed 1;
    /// `fill_buf` dropped after k polls consumed nothing (TCP).
    fill_buf_dropped_tcp: FillBuf over TcpStream, PLAIN, seed 2;
    /// `read` dropped after k polls copied and consumed nothing (unix).
    read_dropped_unix: Read over UnixStream, PLAIN, seed 3;
    /// `read` dropped after k polls copied and consumed nothing (TCP).
    read_dropped_tcp: Read over TcpStream, PLAIN, seed 4;
    /// `read_exact` dropped after k polls consumed nothing (unix).
    read_exact_dropped_unix: ReadExact over UnixStream, PLAIN, seed 5;
    /// `read_exact` dropped after k polls consumed nothing (TCP).
    read_exact_dropped_tcp: ReadExact over TcpStream, PLAIN, seed 6;
    /// `fill_at_least` dropped after k polls consumed nothing (unix).
    fill_at_least_dropped_unix: FillAtLeast over UnixStream, PLAIN, seed 7;
    /// `fill_at_least` dropped after k polls consumed nothing (TCP).
    fill_at_least_dropped_tcp: FillAtLeast over TcpStream, PLAIN, seed 8;
    /// `next_line` dropped after k polls consumed nothing (unix).
    next_line_dropped_unix: NextLine over UnixStream, PLAIN, seed 9;
    /// `next_line` dropped after k polls consumed nothing (TCP).
    next_line_dropped_tcp: NextLine over TcpStream, PLAIN, seed 10;
    /// `read_line` dropped after k polls appended and consumed nothing (unix).
    read_line_dropped_unix: ReadLine over UnixStream, PLAIN, seed 11;
    /// `read_line` dropped after k polls appended and consumed nothing (TCP).
    read_line_dropped_tcp: ReadLine over TcpStream, PLAIN, seed 12;
    /// `next_until` dropped after k polls consumed nothing (unix).
    next_until_dropped_unix: NextUntil over UnixStream, PLAIN, seed 13;
    /// `next_until` dropped after k polls consumed nothing (TCP).
    next_until_dropped_tcp: NextUntil over TcpStream, PLAIN, seed 14;
    /// `read_until` dropped after k polls appended and consumed nothing (unix).
    read_until_dropped_unix: ReadUntil over UnixStream, PLAIN, seed 15;
    /// `read_until` dropped after k polls appended and consumed nothing (TCP).
    read_until_dropped_tcp: ReadUntil over TcpStream, PLAIN, seed 16;
    /// A `lines()` `next()` dropped after k polls consumed nothing (unix).
    lines_next_dropped_unix: Lines over UnixStream, PLAIN, seed 17;
    /// A `lines()` `next()` dropped after k polls consumed nothing (TCP).
    lines_next_dropped_tcp: Lines over TcpStream, PLAIN, seed 18;
    /// A `frames()` `next()` dropped after k polls consumed nothing, even
    /// with the decoder halfway through a frame (unix).
    frames_next_dropped_unix: Frames over UnixStream, PLAIN, seed 19;
    /// A `frames()` `next()` dropped after k polls consumed nothing, even
    /// with the decoder halfway through a frame (TCP).
    frames_next_dropped_tcp: Frames over TcpStream, PLAIN, seed 20;
    /// A `split()` `next()` dropped after k polls consumed nothing (unix).
    split_next_dropped_unix: Split over UnixStream, PLAIN, seed 21;
    /// A `split()` `next()` dropped after k polls consumed nothing (TCP).
    split_next_dropped_tcp: Split over TcpStream, PLAIN, seed 22;
    /// `read_to_end` dropped after k polls kept everything it consumed in
    /// the caller's `Vec` (unix).
    read_to_end_dropped_unix: ReadToEnd over UnixStream, PLAIN, seed 23;
    /// `read_to_end` dropped after k polls kept everything it consumed in
    /// the caller's `Vec` (TCP).
    read_to_end_dropped_tcp: ReadToEnd over TcpStream, PLAIN, seed 24;
    /// `read_to_string` dropped after k polls kept every whole character it
    /// consumed, and no partial one (unix).
    read_to_string_dropped_unix: ReadToString over UnixStream, PLAIN, seed 25;
    /// `read_to_string` dropped after k polls kept every whole character it
    /// consumed, and no partial one (TCP).
    read_to_string_dropped_tcp: ReadToString over TcpStream, PLAIN, seed 26;
}

reader_tests! {
    /// Pooled `fill_buf` dropped after k polls consumed nothing and left
    /// every pool buffer to come back (unix, 64-byte pool buffers).
    fill_buf_dropped_pooled_unix: FillBuf over UnixStream, Mode::Pooled(64), seed 101;
    /// Pooled `fill_buf` (TCP, 4 KiB pool buffers taken whole).
    fill_buf_dropped_pooled_tcp: FillBuf over TcpStream, Mode::PooledWhole(4096), seed 102;
    /// Pooled `read` (unix, 256-byte pool buffers).
    read_dropped_pooled_unix: Read over UnixStream, Mode::Pooled(256), seed 103;
    /// Pooled `read` (TCP, 64-byte pool buffers taken whole).
    read_dropped_pooled_tcp: Read over TcpStream, Mode::PooledWhole(64), seed 104;
    /// Pooled `read_exact`: its bytes span pool buffers (unix, 64 bytes).
    read_exact_dropped_pooled_unix: ReadExact over UnixStream, Mode::Pooled(64), seed 105;
    /// Pooled `read_exact` (TCP, 1 KiB pool buffers).
    read_exact_dropped_pooled_tcp: ReadExact over TcpStream, Mode::Pooled(1024), seed 106;
    /// Pooled `fill_at_least` (unix, 64-byte pool buffers taken whole).
    fill_at_least_dropped_pooled_unix: FillAtLeast over UnixStream, Mode::PooledWhole(64), seed 107;
    /// Pooled `fill_at_least` (TCP, 256-byte pool buffers).
    fill_at_least_dropped_pooled_tcp: FillAtLeast over TcpStream, Mode::Pooled(256), seed 108;
    /// Pooled `next_line`: lines joined across pool buffers in the spill
    /// buffer (unix, 64 bytes).
    next_line_dropped_pooled_unix: NextLine over UnixStream, Mode::Pooled(64), seed 109;
    /// Pooled `next_line` (TCP, 4 KiB pool buffers).
    next_line_dropped_pooled_tcp: NextLine over TcpStream, Mode::Pooled(4096), seed 110;
    /// Pooled `read_line` (unix, 256-byte pool buffers taken whole).
    read_line_dropped_pooled_unix: ReadLine over UnixStream, Mode::PooledWhole(256), seed 111;
    /// Pooled `read_line` (TCP, 64-byte pool buffers).
    read_line_dropped_pooled_tcp: ReadLine over TcpStream, Mode::Pooled(64), seed 112;
    /// Pooled `next_until` (unix, 1 KiB pool buffers).
    next_until_dropped_pooled_unix: NextUntil over UnixStream, Mode::Pooled(1024), seed 113;
    /// Pooled `next_until` (TCP, 64-byte pool buffers taken whole).
    next_until_dropped_pooled_tcp: NextUntil over TcpStream, Mode::PooledWhole(64), seed 114;
    /// Pooled `read_until` (unix, 64-byte pool buffers).
    read_until_dropped_pooled_unix: ReadUntil over UnixStream, Mode::Pooled(64), seed 115;
    /// Pooled `read_until` (TCP, 256-byte pool buffers).
    read_until_dropped_pooled_tcp: ReadUntil over TcpStream, Mode::Pooled(256), seed 116;
    /// Pooled `lines()` (unix, 256-byte pool buffers).
    lines_next_dropped_pooled_unix: Lines over UnixStream, Mode::Pooled(256), seed 117;
    /// Pooled `lines()` (TCP, 64-byte pool buffers taken whole).
    lines_next_dropped_pooled_tcp: Lines over TcpStream, Mode::PooledWhole(64), seed 118;
    /// Pooled `frames()`, the decoder halfway through a frame that spans
    /// pool buffers (unix, 64 bytes).
    frames_next_dropped_pooled_unix: Frames over UnixStream, Mode::Pooled(64), seed 119;
    /// Pooled `frames()`: frames cut from the pool buffer (TCP, 4 KiB
    /// taken whole).
    frames_next_dropped_pooled_tcp: Frames over TcpStream, Mode::PooledWhole(4096), seed 120;
    /// Pooled `split()` (unix, 64-byte pool buffers).
    split_next_dropped_pooled_unix: Split over UnixStream, Mode::Pooled(64), seed 121;
    /// Pooled `split()` (TCP, 1 KiB pool buffers).
    split_next_dropped_pooled_tcp: Split over TcpStream, Mode::Pooled(1024), seed 122;
    /// Pooled `read_to_end` (unix, 256-byte pool buffers taken whole).
    read_to_end_dropped_pooled_unix: ReadToEnd over UnixStream, Mode::PooledWhole(256), seed 123;
    /// Pooled `read_to_end` (TCP, 64-byte pool buffers).
    read_to_end_dropped_pooled_tcp: ReadToEnd over TcpStream, Mode::Pooled(64), seed 124;
    /// Pooled `read_to_string`: characters split across pool buffers
    /// (unix, 64 bytes).
    read_to_string_dropped_pooled_unix: ReadToString over UnixStream, Mode::Pooled(64), seed 125;
    /// Pooled `read_to_string` (TCP, 256-byte pool buffers).
    read_to_string_dropped_pooled_tcp: ReadToString over TcpStream, Mode::Pooled(256), seed 126;
}
