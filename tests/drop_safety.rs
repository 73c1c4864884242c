//! Drop safety of the buffered layer: every future of `BufReader`,
//! `BufWriter` and `BufStream` (and of the `Lines`, `Split` and `Frames`
//! streams) may be dropped after any number of polls without losing,
//! duplicating or corrupting a byte, and without a panic afterwards.
//!
//! The tool is [`poll_k_then_drop`]: it polls a future at most `k` times,
//! going back to the runtime in between, and drops it if it has not finished
//! (a future that finished within `k` polls is booked as a real call). The
//! reader tests trickle a known payload through a unix or TCP socket and,
//! for `k` cycling through `1..=K_MAX`, alternate one such cut-short call
//! with one normal call of the same method; whatever came out must rebuild
//! the payload exactly. The writer tests make mostly cut-short calls against
//! a peer that drains slowly through small socket buffers, so writes really
//! wait; the peer must receive exactly the intended stream. Further tests
//! drop whole readers and writers with operations in flight, and write to a
//! peer that is gone. Each test ends by checking that its runtime still
//! works.
//!
//! Counts of dropped futures are printed per test (`--nocapture`).
//! Randomness is a fixed-seed xorshift generator: failures reproduce.

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use tokio_util::codec::LengthDelimitedCodec;
use uring_bufio::io::{BufReader, BufStream, BufWriter};
use uring_bufio::net::{TcpListener, TcpStream, UnixStream};
use uring_bufio::time::{sleep, timeout};
use uring_bufio::{ReadSource, Runtime, WriteSink, spawn};

/// Watchdog for each test body: only a hang (a lost wake-up) reaches it.
const LIMIT: Duration = Duration::from_secs(60);

/// `k` cycles through `1..=K_MAX`.
const K_MAX: usize = 10;

/// Every `k` up to this one must have dropped futures in each test.
const K_CHECKED: usize = 8;

/// Tests run more rounds while some `k` up to [`K_CHECKED`] has dropped
/// fewer futures than this.
const MIN_DROPS: u64 = 5;

// ---------------------------------------------------------------------------
// Dropping futures after k polls
// ---------------------------------------------------------------------------

/// Polls `f` at most `k` times and drops it right after the `k`-th poll if it
/// is still pending; returns its output if it finished within `k` polls.
///
/// Between polls the calling task returns `Pending`, so the runtime runs
/// other tasks and goes to the kernel; the next poll comes when `f`'s waker
/// fires (IO progressed).
async fn poll_k_then_drop<F: Future>(f: F, k: usize) -> Option<F::Output> {
    poll_k_then_drop_with(f, k, 0).await
}

/// As [`poll_k_then_drop`]; in addition, after a pending poll `i` (counted
/// from 1) whose bit `i % 64` is set in `spurious`, the task wakes itself, so
/// the next poll comes after one runtime tick whether or not `f` progressed.
/// That drops futures between their operation's submission and completion,
/// not only right after a completion.
async fn poll_k_then_drop_with<F: Future>(f: F, k: usize, spurious: u64) -> Option<F::Output> {
    assert!(k >= 1, "a future must be polled at least once");
    let mut slot = Some(Box::pin(f));
    let mut polls = 0;
    poll_fn(move |cx| {
        let Some(fut) = slot.as_mut() else {
            unreachable!("poll_fn is not polled after it returned")
        };
        polls += 1;
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            slot = None;
            return Poll::Ready(Some(out));
        }
        if polls >= k {
            // Dropped here, inside the k-th poll: nothing else runs between
            // its last poll and its drop.
            slot = None;
            return Poll::Ready(None);
        }
        if (spurious >> (polls % 64)) & 1 == 1 {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    })
    .await
}

/// Futures dropped and futures that finished within their `k` polls, by `k`.
#[derive(Debug, Default, Clone)]
struct Tally {
    /// `dropped[k]`: dropped while pending after `k` polls.
    dropped: [u64; K_MAX + 1],
    /// `finished[k]`: finished within `k` polls (booked as a real call).
    finished: [u64; K_MAX + 1],
}

impl Tally {
    /// All dropped futures.
    fn total_dropped(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// All futures that were given `k` polls.
    fn total(&self) -> u64 {
        self.total_dropped() + self.finished.iter().sum::<u64>()
    }

    /// Adds `other`'s counts.
    fn merge(&mut self, other: &Tally) {
        for k in 0..=K_MAX {
            self.dropped[k] += other.dropped[k];
            self.finished[k] += other.finished[k];
        }
    }

    /// Some `k` up to [`K_CHECKED`] has dropped fewer than [`MIN_DROPS`].
    fn wants_more(&self) -> bool {
        self.dropped[1..=K_CHECKED].iter().any(|&n| n < MIN_DROPS)
    }

    /// Prints the counts and checks that every `k` up to [`K_CHECKED`] really
    /// dropped futures.
    fn report(&self, name: &str) {
        eprintln!(
            "drop_safety {name}: {} futures dropped, {} finished within k polls; \
             dropped by k=1..={K_MAX}: {:?}",
            self.total_dropped(),
            self.total() - self.total_dropped(),
            &self.dropped[1..],
        );
        for k in 1..=K_CHECKED {
            assert!(
                self.dropped[k] > 0,
                "{name}: no future was dropped after {k} polls: {self:?}"
            );
        }
    }
}

/// Gives calls `k` polls with `k` cycling through `1..=K_MAX`, and counts.
struct Dropper {
    /// Chooses sizes, spurious wake-ups and the like.
    rng: Rng,
    /// The `k` of the last call.
    k: usize,
    /// What happened so far.
    tally: Tally,
}

impl Dropper {
    /// A dropper whose choices follow `seed`.
    fn new(seed: u64) -> Dropper {
        Dropper {
            rng: Rng::new(seed),
            k: 0,
            tally: Tally::default(),
        }
    }

    /// Polls `f` at most `k` times (the next `k` of the cycle), waking on IO
    /// only, on every tick, or a random mix, and drops it if still pending.
    async fn attempt<F: Future>(&mut self, f: F) -> Option<F::Output> {
        self.k = self.k % K_MAX + 1;
        let k = self.k;
        let spurious = match self.rng.below(4) {
            0 => 0,
            1 | 2 => u64::MAX,
            _ => self.rng.next_u64(),
        };
        let out = poll_k_then_drop_with(f, k, spurious).await;
        match out {
            Some(_) => self.tally.finished[k] += 1,
            None => self.tally.dropped[k] += 1,
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Small helpers: randomness, payloads, comparisons, sockets, runtime
// ---------------------------------------------------------------------------

/// xorshift64 with a scrambled seed; deterministic and dependency-free.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    /// A generator for `seed` (nearby seeds give unrelated sequences).
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    /// The next 64 random bits.
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True once in `n` times on average.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// One of `items`.
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// FNV-1a, to report a mismatch compactly.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Asserts `got == want` (length, checksum, bytes), naming the first
/// difference rather than printing kilobytes.
fn assert_same(what: &str, got: &[u8], want: &[u8]) {
    let first_diff = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .or((got.len() != want.len()).then_some(got.len().min(want.len())));
    if let Some(at) = first_diff {
        let show = |b: &[u8]| {
            String::from_utf8_lossy(&b[at.min(b.len())..(at + 24).min(b.len())]).into_owned()
        };
        panic!(
            "{what}: got {} bytes (checksum {:#018x}), want {} bytes (checksum {:#018x}); \
             first difference at byte {at}: got {:?}..., want {:?}...",
            got.len(),
            checksum(got),
            want.len(),
            checksum(want),
            show(got),
            show(want),
        );
    }
    assert_eq!(checksum(got), checksum(want), "{what}: checksum");
}

/// `len` random bytes, every value possible.
fn binary_payload(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

/// About `len` bytes of records ended by `delim`: mostly short, some empty,
/// some long; the text holds no `\r`, and the last record may lack its
/// delimiter.
fn text_payload(rng: &mut Rng, len: usize, delim: u8) -> Vec<u8> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789 ,.;\n";
    let mut out = Vec::with_capacity(len + 512);
    while out.len() < len {
        let n = match rng.below(10) {
            0 => 0,
            1 => rng.range(100, 400),
            _ => rng.range(1, 40),
        };
        for _ in 0..n {
            let c = rng.pick(ALPHABET);
            out.push(if c == delim { b'_' } else { c });
        }
        out.push(delim);
    }
    if rng.one_in(2) {
        out.pop();
        out.extend_from_slice(b"tail");
    }
    out
}

/// About `len` bytes of UTF-8 text mixing one- to four-byte characters.
fn utf8_payload(rng: &mut Rng, len: usize) -> Vec<u8> {
    const CHARS: &[char] = &['a', 'z', ' ', '\n', 'é', 'ß', 'ж', '€', '中', '😀', '🦀'];
    let mut out = String::with_capacity(len + 4);
    while out.len() < len {
        out.push(rng.pick(CHARS));
    }
    out.into_bytes()
}

/// About `len` bytes of frames for `LengthDelimitedCodec`: a 4-byte
/// big-endian length, then the body (some empty).
fn frame_payload(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = BytesMut::new();
    while out.len() < len {
        let n = if rng.one_in(8) { 0 } else { rng.range(1, 200) };
        out.put_u32(n as u32);
        out.extend_from_slice(&binary_payload(rng, n));
    }
    out.to_vec()
}

/// Records joined back with their delimiter, as they were sent.
fn join_records(records: &[Vec<u8>], delim: u8, ended_with_delim: bool) -> Vec<u8> {
    let mut out = records.join(&delim);
    if ended_with_delim {
        out.push(delim);
    }
    out
}

/// Sets `SO_SNDBUF` and `SO_RCVBUF` of socket `fd` to 4 KiB, so writers
/// really wait for a slow peer.
fn small_socket_buffers(fd: RawFd) {
    for opt in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
        let size: libc::c_int = 4096;
        // SAFETY: `size` is a live c_int for the duration of the call and the
        // length passed is its size; `fd` is an open socket borrowed from a
        // stream the caller holds.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&raw const size).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "setsockopt: {}", io::Error::last_os_error());
    }
}

/// Runs `body` on a fresh runtime under the [`LIMIT`] watchdog, then checks
/// that the same runtime still does buffered IO, spawns and sleeps.
fn run_test(name: &str, body: impl Future<Output = ()>) {
    let rt = Runtime::new().expect("runtime");
    rt.block_on(async {
        if timeout(LIMIT, body).await.is_err() {
            panic!("{name}: no result within {LIMIT:?} (hang: a lost wake-up?)");
        }
        runtime_still_works(name).await;
    });
}

/// A fresh operation on the runtime works: a buffered round trip on a new
/// socket pair, a spawned task and a sleep.
async fn runtime_still_works(name: &str) {
    let fresh = async {
        let (a, b) = UnixStream::pair().expect("socketpair");
        let mut w = BufWriter::new(a);
        let mut r = BufReader::new(b);
        w.write_all(b"still alive\n").await.expect("write_all");
        w.flush().await.expect("flush");
        assert_eq!(
            r.next_line().await.expect("next_line"),
            Some(&b"still alive"[..])
        );
        assert_eq!(spawn(async { 7 }).await.expect("task"), 7);
        sleep(Duration::from_millis(1)).await;
    };
    if timeout(Duration::from_secs(10), fresh).await.is_err() {
        panic!("{name}: the runtime no longer works after the test");
    }
}

/// The raw, owned-buffer calls of both socket types, for the peers.
trait Peer: ReadSource + WriteSink + AsRawFd + Sized {
    /// A connected pair: (end for the code under test, end for the peer).
    fn pair() -> impl Future<Output = (Self, Self)>;
    /// `write_all` of the socket.
    fn send(&self, buf: Bytes) -> impl Future<Output = (io::Result<()>, Bytes)>;
    /// `read` of the socket.
    fn recv(&self, buf: BytesMut) -> impl Future<Output = (io::Result<usize>, BytesMut)>;
    /// Shuts the write direction: the other end reads end of stream.
    fn shut_write(&self) -> impl Future<Output = io::Result<()>>;
}

impl Peer for UnixStream {
    async fn pair() -> (UnixStream, UnixStream) {
        UnixStream::pair().expect("socketpair")
    }
    fn send(&self, buf: Bytes) -> impl Future<Output = (io::Result<()>, Bytes)> {
        self.write_all(buf)
    }
    fn recv(&self, buf: BytesMut) -> impl Future<Output = (io::Result<usize>, BytesMut)> {
        self.read(buf)
    }
    fn shut_write(&self) -> impl Future<Output = io::Result<()>> {
        self.shutdown(Shutdown::Write)
    }
}

impl Peer for TcpStream {
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let client = TcpStream::connect(addr).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        // Tiny segments must not wait for Nagle and delayed acks.
        client.set_nodelay(true).expect("nodelay");
        server.set_nodelay(true).expect("nodelay");
        (server, client)
    }
    fn send(&self, buf: Bytes) -> impl Future<Output = (io::Result<()>, Bytes)> {
        self.write_all(buf)
    }
    fn recv(&self, buf: BytesMut) -> impl Future<Output = (io::Result<usize>, BytesMut)> {
        self.read(buf)
    }
    fn shut_write(&self) -> impl Future<Output = io::Result<()>> {
        self.shutdown(Shutdown::Write)
    }
}

/// Sends `payload` in 1..=16-byte chunks with 0..1 ms pauses after about a
/// third of them, then shuts the write direction.
async fn trickle<S: Peer>(peer: S, payload: Bytes, seed: u64) -> io::Result<()> {
    let mut rng = Rng::new(seed);
    let mut pos = 0;
    while pos < payload.len() {
        let n = rng.range(1, 16).min(payload.len() - pos);
        peer.send(payload.slice(pos..pos + n)).await.0?;
        pos += n;
        if rng.one_in(3) {
            sleep(Duration::from_micros(rng.below(1000) as u64)).await;
        }
    }
    peer.shut_write().await
}

/// Reads everything in small reads (1..=512 bytes) with 0..1 ms pauses after
/// most of them and 2..6 ms pauses after some: slower than any writer here.
async fn drain_slowly<S: Peer>(peer: S, seed: u64) -> io::Result<Vec<u8>> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    loop {
        let (res, buf) = peer.recv(BytesMut::with_capacity(rng.range(1, 512))).await;
        if res? == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf);
        if rng.one_in(10) {
            sleep(Duration::from_micros(rng.range(2000, 6000) as u64)).await;
        } else if !rng.one_in(4) {
            sleep(Duration::from_micros(rng.below(1000) as u64)).await;
        }
    }
}

// ---------------------------------------------------------------------------
// Readers
// ---------------------------------------------------------------------------

/// The reading calls under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadMethod {
    /// `fill_buf` and `consume` of a random amount.
    FillBuf,
    /// `read` into random-sized buffers.
    Read,
    /// `read_exact` of random sizes.
    ReadExact,
    /// `fill_at_least` of random sizes, then `consume`.
    FillAtLeast,
    /// `next_line`, lines joined back with `\n`.
    NextLine,
    /// `read_line` into one `String`.
    ReadLine,
    /// `next_until(b';')`.
    NextUntil,
    /// `read_until(b';')` into one `Vec`.
    ReadUntil,
    /// The `lines()` stream.
    Lines,
    /// The `frames()` stream with `LengthDelimitedCodec`.
    Frames,
    /// The `split(b';')` stream.
    Split,
    /// `read_to_end` into one `Vec`, cut short again and again.
    ReadToEnd,
    /// `read_to_string` of multi-byte UTF-8 into one `String`, cut short
    /// again and again (characters arrive split across reads).
    ReadToString,
}

/// Capacities the readers are built with: from one byte per read up.
const READ_CAPACITIES: &[usize] = &[1, 3, 16, 64, 4096];

/// Payload size of one reader run.
const READ_PAYLOAD: usize = 6 * 1024;

/// Runs per reader test (each with its own seed, capacity and payload); up
/// to three times as many while some `k` has dropped fewer than
/// [`MIN_DROPS`] futures (interleavings depend on timing).
const READ_RUNS: u64 = 4;

impl ReadMethod {
    /// A payload this method can rebuild exactly.
    fn payload(self, rng: &mut Rng) -> Vec<u8> {
        match self {
            ReadMethod::FillBuf
            | ReadMethod::Read
            | ReadMethod::ReadExact
            | ReadMethod::FillAtLeast => binary_payload(rng, READ_PAYLOAD),
            ReadMethod::NextLine | ReadMethod::ReadLine | ReadMethod::Lines => {
                text_payload(rng, READ_PAYLOAD, b'\n')
            }
            ReadMethod::NextUntil | ReadMethod::ReadUntil => text_payload(rng, READ_PAYLOAD, b';'),
            ReadMethod::Frames => frame_payload(rng, READ_PAYLOAD),
            ReadMethod::Split => text_payload(rng, READ_PAYLOAD, b';'),
            ReadMethod::ReadToEnd => binary_payload(rng, READ_PAYLOAD),
            ReadMethod::ReadToString => utf8_payload(rng, READ_PAYLOAD),
        }
    }
}

/// Reads the whole stream with `method`, alternating a call given `k` polls
/// with a normal call; returns the bytes rebuilt from what was read.
async fn read_with<S: ReadSource>(
    method: ReadMethod,
    reader: BufReader<S>,
    d: &mut Dropper,
    payload: &[u8],
) -> Vec<u8> {
    let mut r = reader;
    match method {
        ReadMethod::FillBuf => read_fill_buf(&mut r, d).await,
        ReadMethod::Read => read_read(&mut r, d).await,
        ReadMethod::ReadExact => read_read_exact(&mut r, d, payload.len()).await,
        ReadMethod::FillAtLeast => read_fill_at_least(&mut r, d, payload.len()).await,
        ReadMethod::NextLine => {
            let lines = read_next_line(&mut r, d).await;
            join_records(&lines, b'\n', payload.ends_with(b"\n"))
        }
        ReadMethod::ReadLine => read_read_line(&mut r, d).await,
        ReadMethod::NextUntil => {
            let records = read_next_until(&mut r, d).await;
            join_records(&records, b';', payload.ends_with(b";"))
        }
        ReadMethod::ReadUntil => read_read_until(&mut r, d).await,
        ReadMethod::Lines => {
            let lines = read_lines(r, d).await;
            join_records(&lines, b'\n', payload.ends_with(b"\n"))
        }
        ReadMethod::Frames => read_frames(r, d).await,
        ReadMethod::Split => {
            let records = read_split(r, d).await;
            join_records(&records, b';', payload.ends_with(b";"))
        }
        ReadMethod::ReadToEnd => read_read_to_end(&mut r, d).await,
        ReadMethod::ReadToString => read_read_to_string(&mut r, d).await,
    }
}

/// `fill_buf` + `consume` of a random amount (0 allowed for the cut-short
/// call, at least 1 for the normal one).
async fn read_fill_buf<S: ReadSource>(r: &mut BufReader<S>, d: &mut Dropper) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        if let Some(res) = d.attempt(r.fill_buf()).await {
            let buf = res.expect("fill_buf");
            if buf.is_empty() {
                break;
            }
            let n = d.rng.range(0, buf.len());
            out.extend_from_slice(&buf[..n]);
            r.consume(n);
        }
        let buf = r.fill_buf().await.expect("fill_buf");
        if buf.is_empty() {
            break;
        }
        let n = d.rng.range(1, buf.len());
        out.extend_from_slice(&buf[..n]);
        r.consume(n);
    }
    assert!(r.fill_buf().await.expect("fill_buf at end").is_empty());
    out
}

/// `read` into buffers of 1..=64 bytes.
async fn read_read<S: ReadSource>(r: &mut BufReader<S>, d: &mut Dropper) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut buf = vec![0; d.rng.range(1, 64)];
        if let Some(res) = d.attempt(r.read(&mut buf)).await {
            let n = res.expect("read");
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        let mut buf = vec![0; d.rng.range(1, 64)];
        let n = r.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert_eq!(r.read(&mut [0; 8]).await.expect("read at end"), 0);
    out
}

/// `read_exact` of 1..=64 bytes (never past the end); then one byte past
/// the end is `UnexpectedEof`.
async fn read_read_exact<S: ReadSource>(
    r: &mut BufReader<S>,
    d: &mut Dropper,
    total: usize,
) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < total {
        let mut buf = vec![0; d.rng.range(1, 64).min(total - out.len())];
        if let Some(res) = d.attempt(r.read_exact(&mut buf)).await {
            res.expect("read_exact");
            out.extend_from_slice(&buf);
            if out.len() == total {
                break;
            }
        }
        let mut buf = vec![0; d.rng.range(1, 64).min(total - out.len())];
        r.read_exact(&mut buf).await.expect("read_exact");
        out.extend_from_slice(&buf);
    }
    let err = r
        .read_exact(&mut [0])
        .await
        .expect_err("read_exact past the end");
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    out
}

/// `fill_at_least(1..=64)` (never past the end), then `consume` of a random
/// amount; at the end `fill_at_least(1)` is `UnexpectedEof`.
async fn read_fill_at_least<S: ReadSource>(
    r: &mut BufReader<S>,
    d: &mut Dropper,
    total: usize,
) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < total {
        let want = d.rng.range(1, 64).min(total - out.len());
        if let Some(res) = d.attempt(r.fill_at_least(want)).await {
            let buf = res.expect("fill_at_least");
            assert!(
                buf.len() >= want,
                "fill_at_least({want}) gave {}",
                buf.len()
            );
            let n = d.rng.range(0, buf.len());
            out.extend_from_slice(&buf[..n]);
            r.consume(n);
            if out.len() == total {
                break;
            }
        }
        let want = d.rng.range(1, 64).min(total - out.len());
        let buf = r.fill_at_least(want).await.expect("fill_at_least");
        assert!(
            buf.len() >= want,
            "fill_at_least({want}) gave {}",
            buf.len()
        );
        let n = d.rng.range(want, buf.len());
        out.extend_from_slice(&buf[..n]);
        r.consume(n);
    }
    let err = r
        .fill_at_least(1)
        .await
        .expect_err("fill_at_least past the end");
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    out
}

/// `next_line`: the lines, without their `\n`.
async fn read_next_line<S: ReadSource>(r: &mut BufReader<S>, d: &mut Dropper) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    loop {
        if let Some(res) = d.attempt(r.next_line()).await {
            match res.expect("next_line") {
                Some(line) => lines.push(line.to_vec()),
                None => break,
            }
        }
        match r.next_line().await.expect("next_line") {
            Some(line) => lines.push(line.to_vec()),
            None => break,
        }
    }
    assert_eq!(r.next_line().await.expect("next_line at end"), None);
    lines
}

/// `read_line` appending to one `String`.
async fn read_read_line<S: ReadSource>(r: &mut BufReader<S>, d: &mut Dropper) -> Vec<u8> {
    let mut text = String::new();
    loop {
        if let Some(res) = d.attempt(r.read_line(&mut text)).await
            && res.expect("read_line") == 0
        {
            break;
        }
        if r.read_line(&mut text).await.expect("read_line") == 0 {
            break;
        }
    }
    assert_eq!(r.read_line(&mut text).await.expect("read_line at end"), 0);
    text.into_bytes()
}

/// `next_until(b';')`: the records, without their `;`.
async fn read_next_until<S: ReadSource>(r: &mut BufReader<S>, d: &mut Dropper) -> Vec<Vec<u8>> {
    let mut records = Vec::new();
    loop {
        if let Some(res) = d.attempt(r.next_until(b';')).await {
            match res.expect("next_until") {
                Some(rec) => records.push(rec.to_vec()),
                None => break,
            }
        }
        match r.next_until(b';').await.expect("next_until") {
            Some(rec) => records.push(rec.to_vec()),
            None => break,
        }
    }
    assert_eq!(r.next_until(b';').await.expect("next_until at end"), None);
    records
}

/// `read_until(b';')` appending to one `Vec`.
async fn read_read_until<S: ReadSource>(r: &mut BufReader<S>, d: &mut Dropper) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        if let Some(res) = d.attempt(r.read_until(b';', &mut out)).await
            && res.expect("read_until") == 0
        {
            break;
        }
        if r.read_until(b';', &mut out).await.expect("read_until") == 0 {
            break;
        }
    }
    assert_eq!(
        r.read_until(b';', &mut out)
            .await
            .expect("read_until at end"),
        0
    );
    out
}

/// The `lines()` stream: the lines, without their `\n`.
async fn read_lines<S: ReadSource>(r: BufReader<S>, d: &mut Dropper) -> Vec<Vec<u8>> {
    let mut stream = r.lines();
    let mut lines = Vec::new();
    loop {
        if let Some(item) = d.attempt(stream.next()).await {
            match item {
                Some(line) => lines.push(line.expect("lines").into_bytes()),
                None => break,
            }
        }
        match stream.next().await {
            Some(line) => lines.push(line.expect("lines").into_bytes()),
            None => break,
        }
    }
    assert!(stream.next().await.is_none(), "lines after the end");
    lines
}

/// The `frames()` stream: the frames encoded back as length + body.
async fn read_frames<S: ReadSource>(r: BufReader<S>, d: &mut Dropper) -> Vec<u8> {
    let mut frames = r.frames(LengthDelimitedCodec::new());
    let mut out = BytesMut::new();
    let mut push = |frame: BytesMut| {
        out.put_u32(frame.len() as u32);
        out.extend_from_slice(&frame);
    };
    loop {
        if let Some(item) = d.attempt(frames.next()).await {
            match item {
                Some(frame) => push(frame.expect("frame")),
                None => break,
            }
        }
        match frames.next().await {
            Some(frame) => push(frame.expect("frame")),
            None => break,
        }
    }
    assert!(frames.next().await.is_none(), "frames after the end");
    out.to_vec()
}

/// The `split(b';')` stream: the records, without their `;`.
async fn read_split<S: ReadSource>(r: BufReader<S>, d: &mut Dropper) -> Vec<Vec<u8>> {
    let mut stream = r.split(b';');
    let mut records = Vec::new();
    loop {
        if let Some(item) = d.attempt(stream.next()).await {
            match item {
                Some(rec) => records.push(rec.expect("split")),
                None => break,
            }
        }
        match stream.next().await {
            Some(rec) => records.push(rec.expect("split")),
            None => break,
        }
    }
    assert!(stream.next().await.is_none(), "records after the end");
    records
}

/// `read_to_end` into one `Vec`: only cut-short calls until one finishes
/// (a normal call would read everything at once). After a dropped call the
/// `Vec` holds everything consumed so far.
async fn read_read_to_end<S: ReadSource>(r: &mut BufReader<S>, d: &mut Dropper) -> Vec<u8> {
    let mut out = Vec::new();
    while d.attempt(r.read_to_end(&mut out)).await.is_none() {}
    assert_eq!(
        r.read_to_end(&mut out).await.expect("read_to_end at end"),
        0
    );
    out
}

/// `read_to_string` into one `String`, as [`read_read_to_end`].
async fn read_read_to_string<S: ReadSource>(r: &mut BufReader<S>, d: &mut Dropper) -> Vec<u8> {
    let mut text = String::new();
    loop {
        match d.attempt(r.read_to_string(&mut text)).await {
            Some(res) => {
                res.expect("read_to_string");
                break;
            }
            None => assert!(text.is_char_boundary(text.len())),
        }
    }
    assert_eq!(
        r.read_to_string(&mut text)
            .await
            .expect("read_to_string at end"),
        0
    );
    text.into_bytes()
}

/// One reader test: [`READ_RUNS`] (or more) runs of `method` over socket type `S`,
/// each with its own seed, reader capacity and trickling peer task.
async fn reader_test<S: Peer>(name: &str, method: ReadMethod, base_seed: u64) {
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
        let reader = BufReader::with_capacity(capacity, near);
        let got = read_with(method, reader, &mut d, &payload).await;
        assert_same(
            &format!("{name} (seed {seed}, capacity {capacity})"),
            &got,
            &payload,
        );
        peer.await.expect("peer task panicked").expect("peer IO");
        tally.merge(&d.tally);
    }
    tally.report(name);
}

/// Declares one `#[test]` per (method, transport).
macro_rules! reader_tests {
    ($($(#[$doc:meta])* $name:ident: $method:ident over $sock:ty, seed $seed:literal;)*) => {$(
        $(#[$doc])*
        #[test]
        fn $name() {
            run_test(
                stringify!($name),
                reader_test::<$sock>(stringify!($name), ReadMethod::$method, $seed),
            );
        }
    )*};
}

reader_tests! {
    /// `fill_buf` dropped after k polls consumed nothing (unix socket).
    fill_buf_dropped_unix: FillBuf over UnixStream, seed 1;
    /// `fill_buf` dropped after k polls consumed nothing (TCP).
    fill_buf_dropped_tcp: FillBuf over TcpStream, seed 2;
    /// `read` dropped after k polls copied and consumed nothing (unix).
    read_dropped_unix: Read over UnixStream, seed 3;
    /// `read` dropped after k polls copied and consumed nothing (TCP).
    read_dropped_tcp: Read over TcpStream, seed 4;
    /// `read_exact` dropped after k polls consumed nothing (unix).
    read_exact_dropped_unix: ReadExact over UnixStream, seed 5;
    /// `read_exact` dropped after k polls consumed nothing (TCP).
    read_exact_dropped_tcp: ReadExact over TcpStream, seed 6;
    /// `fill_at_least` dropped after k polls consumed nothing (unix).
    fill_at_least_dropped_unix: FillAtLeast over UnixStream, seed 7;
    /// `fill_at_least` dropped after k polls consumed nothing (TCP).
    fill_at_least_dropped_tcp: FillAtLeast over TcpStream, seed 8;
    /// `next_line` dropped after k polls consumed nothing (unix).
    next_line_dropped_unix: NextLine over UnixStream, seed 9;
    /// `next_line` dropped after k polls consumed nothing (TCP).
    next_line_dropped_tcp: NextLine over TcpStream, seed 10;
    /// `read_line` dropped after k polls appended and consumed nothing (unix).
    read_line_dropped_unix: ReadLine over UnixStream, seed 11;
    /// `read_line` dropped after k polls appended and consumed nothing (TCP).
    read_line_dropped_tcp: ReadLine over TcpStream, seed 12;
    /// `next_until` dropped after k polls consumed nothing (unix).
    next_until_dropped_unix: NextUntil over UnixStream, seed 13;
    /// `next_until` dropped after k polls consumed nothing (TCP).
    next_until_dropped_tcp: NextUntil over TcpStream, seed 14;
    /// `read_until` dropped after k polls appended and consumed nothing (unix).
    read_until_dropped_unix: ReadUntil over UnixStream, seed 15;
    /// `read_until` dropped after k polls appended and consumed nothing (TCP).
    read_until_dropped_tcp: ReadUntil over TcpStream, seed 16;
    /// A `lines()` `next()` dropped after k polls consumed nothing (unix).
    lines_next_dropped_unix: Lines over UnixStream, seed 17;
    /// A `lines()` `next()` dropped after k polls consumed nothing (TCP).
    lines_next_dropped_tcp: Lines over TcpStream, seed 18;
    /// A `frames()` `next()` dropped after k polls consumed nothing, even
    /// with the decoder halfway through a frame (unix).
    frames_next_dropped_unix: Frames over UnixStream, seed 19;
    /// A `frames()` `next()` dropped after k polls consumed nothing, even
    /// with the decoder halfway through a frame (TCP).
    frames_next_dropped_tcp: Frames over TcpStream, seed 20;
    /// A `split()` `next()` dropped after k polls consumed nothing (unix).
    split_next_dropped_unix: Split over UnixStream, seed 21;
    /// A `split()` `next()` dropped after k polls consumed nothing (TCP).
    split_next_dropped_tcp: Split over TcpStream, seed 22;
    /// `read_to_end` dropped after k polls kept everything it consumed in
    /// the caller's `Vec` (unix).
    read_to_end_dropped_unix: ReadToEnd over UnixStream, seed 23;
    /// `read_to_end` dropped after k polls kept everything it consumed in
    /// the caller's `Vec` (TCP).
    read_to_end_dropped_tcp: ReadToEnd over TcpStream, seed 24;
    /// `read_to_string` dropped after k polls kept every whole character it
    /// consumed, and no partial one (unix).
    read_to_string_dropped_unix: ReadToString over UnixStream, seed 25;
    /// `read_to_string` dropped after k polls kept every whole character it
    /// consumed, and no partial one (TCP).
    read_to_string_dropped_tcp: ReadToString over TcpStream, seed 26;
}

// ---------------------------------------------------------------------------
// Readers: the reader itself dropped, mixed calls
// ---------------------------------------------------------------------------

/// Where the read in flight is when its reader goes away.
#[derive(Debug, Clone, Copy)]
enum ReadStage {
    /// Queued, not yet submitted to the kernel.
    Queued,
    /// Submitted, waiting for data.
    Waiting,
    /// Completed by the kernel, result not yet collected.
    Completed,
}

/// Starts a read in flight on `r` and brings it to `stage` (for `Completed`,
/// `peer` sends `b"lost"` and the completion is left uncollected).
async fn read_in_flight<S: Peer>(r: &mut BufReader<S>, peer: &S, stage: ReadStage) {
    assert!(
        poll_k_then_drop(r.fill_buf(), 1).await.is_none(),
        "nothing was sent, fill_buf cannot finish"
    );
    match stage {
        ReadStage::Queued => {}
        ReadStage::Waiting => sleep(Duration::from_millis(5)).await,
        ReadStage::Completed => {
            peer.send(Bytes::from_static(b"lost"))
                .await
                .0
                .expect("send");
            sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Drops a `BufReader` whose read is queued, waiting in the kernel, or
/// completed but not collected: no panic, the socket is closed exactly once
/// (the peer reads end of stream once the kernel gave the read back), and a
/// new reader on a new socket of the same runtime reads normally.
async fn drop_reader_with_read_in_flight<S: Peer>() {
    for stage in [ReadStage::Queued, ReadStage::Waiting, ReadStage::Completed] {
        let (near, far) = S::pair().await;
        let mut r = BufReader::with_capacity(64, near);
        read_in_flight(&mut r, &far, stage).await;
        drop(r);
        let (res, _) = far.recv(BytesMut::with_capacity(16)).await;
        assert_eq!(res.expect("peer read"), 0, "{stage:?}: peer sees the close");

        let (near, far) = S::pair().await;
        let mut r = BufReader::with_capacity(64, near);
        far.send(Bytes::from_static(b"fresh\n"))
            .await
            .0
            .expect("send");
        assert_eq!(r.next_line().await.expect("next_line"), Some(&b"fresh"[..]));
    }
}

/// `BufReader` dropped with a read in flight, at every stage of that read.
#[test]
fn reader_dropped_with_read_in_flight() {
    run_test("reader_dropped_with_read_in_flight", async {
        drop_reader_with_read_in_flight::<UnixStream>().await;
        drop_reader_with_read_in_flight::<TcpStream>().await;
    });
}

/// `into_inner` with a read in flight cancels it and hands the source back
/// usable: bytes the peer sends afterwards are read by a new reader (the
/// cancelled read did not take them). With the read already completed, its
/// bytes count as buffered and are dropped with the buffer, as documented;
/// what follows still arrives whole.
async fn into_inner_with_read_in_flight<S: Peer>() {
    for stage in [ReadStage::Queued, ReadStage::Waiting, ReadStage::Completed] {
        let (near, far) = S::pair().await;
        let mut r = BufReader::with_capacity(64, near);
        far.send(Bytes::from_static(b"first\n"))
            .await
            .0
            .expect("send");
        assert_eq!(r.next_line().await.expect("next_line"), Some(&b"first"[..]));
        read_in_flight(&mut r, &far, stage).await;
        let near = r.into_inner();
        // Let the cancel reach the kernel before anything else is sent.
        sleep(Duration::from_millis(5)).await;
        far.send(Bytes::from_static(b"second\nthird"))
            .await
            .0
            .expect("send");
        far.shut_write().await.expect("shutdown");
        let mut r = BufReader::with_capacity(64, near);
        assert_eq!(
            r.next_line().await.expect("next_line"),
            Some(&b"second"[..]),
            "{stage:?}"
        );
        assert_eq!(r.next_line().await.expect("next_line"), Some(&b"third"[..]));
        assert_eq!(r.next_line().await.expect("next_line"), None);
    }
}

/// `BufReader::into_inner` while a read is in flight.
#[test]
fn reader_into_inner_with_read_in_flight() {
    run_test("reader_into_inner_with_read_in_flight", async {
        into_inner_with_read_in_flight::<UnixStream>().await;
        into_inner_with_read_in_flight::<TcpStream>().await;
    });
}

/// A dropped `next_until(b'#')` must not change what a following call with
/// another delimiter finds: `next_line` must still see the `\n` among the
/// bytes the dropped call had searched for `#`.
///
/// Poll order: the peer sends `ab\ncd` (all of it buffered first);
/// `next_until(b'#')` is polled once: it searches the five bytes for `#`,
/// finds none, starts a read and is dropped; `next_line` is polled; the peer
/// sends `ef\n`. Expected: `next_line` gives `ab`. Before 95e89d9 the
/// search position of the dropped call (5) was reused for `\n`, and
/// `next_line` gave `ab\ncdef`.
#[test]
fn dropped_next_until_then_next_line_other_delimiter() {
    run_test("dropped_next_until_then_next_line_other_delimiter", async {
        let (near, far) = UnixStream::pair().expect("socketpair");
        let mut r = BufReader::with_capacity(64, near);
        far.write_all("ab\ncd").await.0.expect("send");
        // Fill first so the bytes are surely buffered when `#` is searched.
        r.fill_at_least(5).await.expect("fill");
        assert!(poll_k_then_drop(r.next_until(b'#'), 1).await.is_none());
        let writer = spawn(async move {
            sleep(Duration::from_millis(5)).await;
            far.write_all("ef\n").await.0.expect("send");
            far
        });
        let first = r.next_line().await.expect("next_line").map(<[u8]>::to_vec);
        let _far = writer.await.expect("writer");
        assert_eq!(
            first.as_deref().map(String::from_utf8_lossy),
            Some("ab".into()),
            "next_line after a dropped next_until(b'#')"
        );
    });
}

/// A dropped `read_until(b';')` must not hide a `\n` from a following
/// `read_line`.
///
/// Poll order: the peer sends `one\ntwo` (all of it buffered first);
/// `read_until(b';')` is polled once: it searches the seven bytes for `;`,
/// finds none, starts a read and is dropped; the peer sends `x;\n`;
/// `read_line` is polled to the end. Expected: `one\n` (before 95e89d9:
/// `one\ntwox;\n`).
#[test]
fn dropped_read_until_then_read_line() {
    run_test("dropped_read_until_then_read_line", async {
        let (near, far) = UnixStream::pair().expect("socketpair");
        let mut r = BufReader::with_capacity(64, near);
        far.write_all("one\ntwo").await.0.expect("send");
        r.fill_at_least(7).await.expect("fill");
        let mut out = Vec::new();
        assert!(
            poll_k_then_drop(r.read_until(b';', &mut out), 1)
                .await
                .is_none()
        );
        assert!(out.is_empty(), "a dropped read_until appended");
        far.write_all("x;\n").await.0.expect("send");
        let mut line = String::new();
        r.read_line(&mut line).await.expect("read_line");
        assert_eq!(line, "one\n", "read_line after a dropped read_until(b';')");
    });
}

/// A dropped `next_line` must not hide a `;` from a following
/// `read_until(b';')`.
///
/// Poll order: the peer sends `a;b` (all of it buffered first); `next_line`
/// is polled once: it searches the three bytes for `\n`, finds none, starts
/// a read and is dropped; the peer sends `\n` and shuts its write side;
/// `read_until(b';')` is polled to the end. Expected: `a;` (before 95e89d9:
/// `a;b\n`).
#[test]
fn dropped_next_line_then_read_until() {
    run_test("dropped_next_line_then_read_until", async {
        let (near, far) = UnixStream::pair().expect("socketpair");
        let mut r = BufReader::with_capacity(64, near);
        far.write_all("a;b").await.0.expect("send");
        r.fill_at_least(3).await.expect("fill");
        assert!(poll_k_then_drop(r.next_line(), 1).await.is_none());
        far.write_all("\n").await.0.expect("send");
        far.shutdown(Shutdown::Write).await.expect("shutdown");
        let mut out = Vec::new();
        r.read_until(b';', &mut out).await.expect("read_until");
        assert_eq!(out, b"a;", "read_until(b';') after a dropped next_line");
    });
}

// ---------------------------------------------------------------------------
// Writers
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Writers dropped, writers whose peer is gone
// ---------------------------------------------------------------------------

/// Fills `w` with `payload` so that when it returns part of it is in a write
/// in flight and the rest buffered, with a `write_all` and a `flush` dropped
/// on the way. Returns how much of `payload` went in.
async fn leave_bytes_behind<S: WriteSink>(w: &mut BufWriter<S>, payload: &[u8]) -> usize {
    let (head, tail) = payload.split_at(payload.len() * 3 / 4);
    // More than the capacity at once: the socket buffer fills and the write
    // in flight waits for the peer.
    w.write_all(head).await.expect("write_all");
    let mut pos = head.len();
    for (k, part) in tail.chunks(tail.len().div_ceil(4)).enumerate() {
        match poll_k_then_drop(w.write_all(part), k + 1).await {
            Some(res) => res.expect("write_all"),
            None => w.write_all(part).await.expect("write_all again"),
        }
        pos += part.len();
        if let Some(res) = poll_k_then_drop_with(w.flush(), 2, u64::MAX).await {
            res.expect("flush");
        }
    }
    pos
}

/// A `BufWriter` dropped inside `block_on` with a write in flight and more
/// bytes buffered still delivers every byte: `block_on` finishes the
/// background flush before it returns. The peer is a std thread reading a
/// std socket; it receives the whole stream once, then end of stream.
#[test]
fn dropped_writer_delivers_its_bytes_before_block_on_returns() {
    let (near, far) = std::os::unix::net::UnixStream::pair().expect("socketpair");
    small_socket_buffers(near.as_raw_fd());
    small_socket_buffers(far.as_raw_fd());
    far.set_read_timeout(Some(LIMIT)).expect("read timeout");
    let payload = binary_payload(&mut Rng::new(41), 256 * 1024);
    let received = Arc::new(AtomicUsize::new(0));
    let progress = received.clone();
    let peer = std::thread::spawn(move || {
        use std::io::Read;
        let mut rng = Rng::new(42);
        let mut far = far;
        let mut out = Vec::new();
        let mut buf = [0; 2048];
        // Late to start, so the writer surely still holds bytes when dropped.
        std::thread::sleep(Duration::from_millis(20));
        loop {
            let n = far.read(&mut buf[..rng.range(1, 2048)]).expect("peer read");
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
            progress.store(out.len(), Ordering::Relaxed);
            std::thread::sleep(Duration::from_micros(rng.below(400) as u64));
        }
    });
    let sent = {
        let payload = payload.clone();
        let near = UnixStream::from_std(near);
        let rt = Runtime::new().expect("runtime");
        let start = Instant::now();
        let sent = rt.block_on(async move {
            let mut w = BufWriter::with_capacity(4096, near);
            let sent = leave_bytes_behind(&mut w, &payload).await;
            let at_drop = received.load(Ordering::Relaxed);
            assert!(
                at_drop < sent,
                "the peer has everything already: nothing to test"
            );
            drop(w);
            // The runtime works while the background flush goes on.
            runtime_still_works("dropped_writer").await;
            sent
        });
        eprintln!(
            "drop_safety dropped_writer: block_on returned after {:?}",
            start.elapsed()
        );
        sent
    };
    let got = peer.join().expect("peer thread panicked");
    assert_same("bytes of a dropped writer", &got, &payload[..sent]);
    assert_eq!(sent, payload.len());
}

/// As above over TCP with the peer a task of the same runtime: the writer
/// is dropped mid-stream, the runtime keeps running, and the reader task
/// receives every byte once, then end of stream.
#[test]
fn dropped_writer_delivers_its_bytes_to_a_task() {
    run_test("dropped_writer_delivers_its_bytes_to_a_task", async {
        let payload = binary_payload(&mut Rng::new(43), 128 * 1024);
        let (near, far) = TcpStream::pair().await;
        small_socket_buffers(near.as_raw_fd());
        small_socket_buffers(far.as_raw_fd());
        let reader = spawn(drain_slowly(far, 44));
        let mut w = BufWriter::with_capacity(1024, near);
        let sent = leave_bytes_behind(&mut w, &payload).await;
        drop(w);
        let got = reader
            .await
            .expect("reader task panicked")
            .expect("reader IO");
        assert_same("bytes of a dropped writer", &got, &payload[..sent]);
    });
}

/// A task aborted while its `BufWriter` waits in `write_all` (the task's
/// future, and with it the writer, is dropped by the runtime) still delivers
/// every byte the writer had accepted, and only those.
#[test]
fn writer_in_an_aborted_task_delivers_what_it_accepted() {
    run_test("writer_in_an_aborted_task", async {
        let payload = binary_payload(&mut Rng::new(45), 96 * 1024);
        let (near, far) = UnixStream::pair().expect("socketpair");
        small_socket_buffers(near.as_raw_fd());
        small_socket_buffers(far.as_raw_fd());
        let reader = spawn(drain_slowly(far, 46));
        let accepted = Rc::new(Cell::new(0));
        let progress = accepted.clone();
        let chunks: Vec<Vec<u8>> = payload.chunks(4096).map(<[u8]>::to_vec).collect();
        let writer = spawn(async move {
            let mut w = BufWriter::with_capacity(2048, near);
            for chunk in chunks {
                w.write_all(&chunk).await.expect("write_all");
                progress.set(progress.get() + chunk.len());
            }
            // Never reached before the abort: the peer is far too slow.
            std::future::pending::<()>().await;
        });
        sleep(Duration::from_millis(20)).await;
        writer.abort();
        assert!(writer.await.expect_err("aborted").is_cancelled());
        let sent = accepted.get();
        assert!(
            sent > 0 && sent < payload.len(),
            "abort came mid-stream ({sent} bytes)"
        );
        let got = reader
            .await
            .expect("reader task panicked")
            .expect("reader IO");
        assert_same("bytes of an aborted writer", &got, &payload[..sent]);
    });
}

/// Asserts `err` is what writing to a closed peer gives.
fn assert_peer_gone(err: &io::Error, what: &str) {
    assert!(
        matches!(
            err.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
        ),
        "{what}: expected BrokenPipe or ConnectionReset, got {err:?}"
    );
}

/// A `BufWriter` whose unix peer is gone: `flush` fails with `BrokenPipe`,
/// again on the next call (also after a flush dropped in between), without a
/// panic; `into_parts` hands back exactly the bytes accepted and not written.
#[test]
fn writer_with_closed_unix_peer_errors_and_keeps_its_bytes() {
    run_test("writer_with_closed_unix_peer", async {
        let (near, far) = UnixStream::pair().expect("socketpair");
        drop(far);
        let mut w = BufWriter::with_capacity(1024, near);
        let mut intended = b"hello".to_vec();
        w.write_all(b"hello")
            .await
            .expect("write_all is only a copy");
        let err = w.flush().await.expect_err("flush to a closed peer");
        assert_peer_gone(&err, "flush");

        // A flush dropped while its write is in flight (io_uring; epoll
        // fails the write at once): the write fails later, and whoever
        // collects it sees the error, not a panic.
        if let Some(res) = poll_k_then_drop(w.flush(), 1).await {
            assert_peer_gone(&res.expect_err("flush"), "flush polled once");
        }
        sleep(Duration::from_millis(5)).await;
        match w.write_all(b" world").await {
            Ok(()) => intended.extend_from_slice(b" world"),
            Err(e) => assert_peer_gone(&e, "write_all after a dropped flush"),
        }
        let err = w.flush().await.expect_err("flush again");
        assert_peer_gone(&err, "second flush");
        let (_sink, rest) = w.into_parts();
        assert_same("bytes handed back", &rest, &intended);
    });
}

/// A `BufWriter` whose TCP peer closed: once `flush` fails (with
/// `BrokenPipe` or `ConnectionReset`), it keeps failing without a panic, and
/// `into_parts` hands back a suffix of the stream no longer than what was
/// accepted since the last successful flush. Dropping such a writer with
/// bytes left does not hold `block_on` up until the linger limit.
#[test]
fn writer_with_closed_tcp_peer_errors_and_keeps_its_bytes() {
    let rt = Runtime::new().expect("runtime");
    let start = Instant::now();
    rt.block_on(async {
        let body = async {
            let (near, far) = TcpStream::pair().await;
            drop(far);
            let mut w = BufWriter::with_capacity(1024, near);
            let mut rng = Rng::new(51);
            let mut intended = Vec::new();
            let mut since_ok_flush = 0;
            let err = loop {
                let len = rng.range(1, 600);
                let chunk = binary_payload(&mut rng, len);
                match w.write_all(&chunk).await {
                    Ok(()) => {
                        intended.extend_from_slice(&chunk);
                        since_ok_flush += chunk.len();
                    }
                    Err(e) => break e,
                }
                match w.flush().await {
                    Ok(()) => since_ok_flush = 0,
                    Err(e) => break e,
                }
                sleep(Duration::from_millis(1)).await;
            };
            assert_peer_gone(&err, "first error");
            let err = w.flush().await.expect_err("flush after the error");
            assert_peer_gone(&err, "flush after the error");
            assert!(
                poll_k_then_drop(w.flush(), 1)
                    .await
                    .is_none_or(|r| r.is_err())
            );
            let err = w.flush().await.expect_err("flush after a dropped flush");
            assert_peer_gone(&err, "flush after a dropped flush");
            let (sink, rest) = w.into_parts();
            assert!(
                rest.len() <= since_ok_flush,
                "handed back more than was pending"
            );
            assert_same(
                "bytes handed back",
                &rest,
                &intended[intended.len() - rest.len()..],
            );

            // Dropped with bytes left: the background flush fails at once.
            let mut w = BufWriter::with_capacity(1024, sink);
            w.write_all(&rest).await.expect("write_all is only a copy");
            drop(w);
        };
        if timeout(LIMIT, body).await.is_err() {
            panic!("writer_with_closed_tcp_peer: no result within {LIMIT:?}");
        }
        runtime_still_works("writer_with_closed_tcp_peer").await;
    });
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "block_on lingered {:?} on a writer whose peer is gone",
        start.elapsed()
    );
}

// ---------------------------------------------------------------------------
// Both ways on one socket
// ---------------------------------------------------------------------------

/// Echoes lines back, each after a pause of 0..1 ms, through its own
/// buffered halves; shuts its write side at end of stream.
async fn echo_lines(peer: UnixStream, seed: u64) -> io::Result<()> {
    let mut rng = Rng::new(seed);
    let (rd, wr) = peer.into_split();
    let mut r = BufReader::with_capacity(64, rd);
    let mut w = BufWriter::with_capacity(64, wr);
    while let Some(line) = r.next_line().await? {
        let reply = [line, b"\n"].concat();
        sleep(Duration::from_micros(rng.below(1000) as u64)).await;
        w.write_all(&reply).await?;
        w.flush().await?;
    }
    w.shutdown().await
}

/// The next line of `s`: a `next_line` given `k` polls, then, if it was
/// dropped, a normal one.
async fn receive_line(s: &mut BufStream<UnixStream>, d: &mut Dropper) -> Option<Vec<u8>> {
    if let Some(res) = d.attempt(s.next_line()).await {
        return res.expect("next_line").map(<[u8]>::to_vec);
    }
    s.next_line().await.expect("next_line").map(<[u8]>::to_vec)
}

/// A `BufStream` whose `write_all`, `flush` and `next_line` futures are
/// dropped after k polls, with up to three requests outstanding, talks to
/// an echo peer: every line comes back once, in order, and the stream ends
/// cleanly after `shutdown`.
#[test]
fn buf_stream_calls_dropped() {
    run_test("buf_stream_calls_dropped", async {
        let mut tally = Tally::default();
        for run in 0..2 {
            let mut rng = Rng::new(61 + run);
            let lines: Vec<Vec<u8>> = (0..400)
                .map(|_| {
                    let n = rng.range(0, 40);
                    text_payload(&mut rng, n, b'\n')
                        .into_iter()
                        .filter(|&b| b != b'\n')
                        .collect()
                })
                .collect();
            let (near, far) = UnixStream::pair().expect("socketpair");
            let peer = spawn(echo_lines(far, 62 + run));
            let mut s = BufStream::with_capacity(16, 32, near);
            let mut d = Dropper::new(63 + run);
            let mut replies = 0;
            for (i, line) in lines.iter().enumerate() {
                let request = [line, &b"\n"[..]].concat();
                match d.attempt(s.write_all(&request)).await {
                    Some(res) => res.expect("write_all"),
                    None => s.write_all(&request).await.expect("write_all again"),
                }
                if let Some(res) = d.attempt(s.flush()).await {
                    res.expect("flush");
                }
                s.flush().await.expect("flush");
                if i >= 2 {
                    let got = receive_line(&mut s, &mut d).await;
                    assert_eq!(got.as_ref(), Some(&lines[replies]), "reply {replies}");
                    replies += 1;
                }
            }
            while replies < lines.len() {
                let got = receive_line(&mut s, &mut d).await;
                assert_eq!(got.as_ref(), Some(&lines[replies]), "reply {replies}");
                replies += 1;
            }
            s.shutdown().await.expect("shutdown");
            assert_eq!(s.next_line().await.expect("next_line at end"), None);
            peer.await.expect("peer task panicked").expect("peer IO");
            tally.merge(&d.tally);
        }
        tally.report("buf_stream_calls_dropped");
    });
}
