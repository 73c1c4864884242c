//! Dropping futures after `k` polls, and what the drop-safety tests share:
//! payloads, comparisons, the socket peers that trickle or drain slowly,
//! and a runtime check at the end of each test.
//!
//! The tool is [`poll_k_then_drop`]: it polls a future at most `k` times,
//! going back to the runtime in between, and drops it if it has not
//! finished (a future that finished within `k` polls is booked as a real
//! call). A [`Dropper`] cycles `k` through `1..=K_MAX` and counts; a
//! [`Tally`] checks that every `k` really dropped futures.

use std::future::{Future, poll_fn};
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::task::Poll;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use uring_bufio::io::{BufReader, BufWriter};
use uring_bufio::net::{TcpListener, TcpStream, UnixStream};
use uring_bufio::time::{sleep, timeout};
use uring_bufio::{ReadSource, WriteSink, spawn};

use super::Rng;
use super::pool::{Mode, assert_pool_settled};

/// Watchdog for each test body: only a hang (a lost wake-up) reaches it.
pub const LIMIT: Duration = Duration::from_secs(60);

/// `k` cycles through `1..=K_MAX`.
pub const K_MAX: usize = 10;

/// Every `k` up to this one must have dropped futures in each test.
pub const K_CHECKED: usize = 8;

/// Tests run more rounds while some `k` up to [`K_CHECKED`] has dropped
/// fewer futures than this.
pub const MIN_DROPS: u64 = 5;

// ---------------------------------------------------------------------------
// Dropping futures after k polls
// ---------------------------------------------------------------------------

/// Polls `f` at most `k` times and drops it right after the `k`-th poll if it
/// is still pending; returns its output if it finished within `k` polls.
///
/// Between polls the calling task returns `Pending`, so the runtime runs
/// other tasks and goes to the kernel; the next poll comes when `f`'s waker
/// fires (IO progressed).
pub async fn poll_k_then_drop<F: Future>(f: F, k: usize) -> Option<F::Output> {
    poll_k_then_drop_with(f, k, 0).await
}

/// As [`poll_k_then_drop`]; in addition, after a pending poll `i` (counted
/// from 1) whose bit `i % 64` is set in `spurious`, the task wakes itself, so
/// the next poll comes after one runtime tick whether or not `f` progressed.
/// That drops futures between their operation's submission and completion,
/// not only right after a completion.
pub async fn poll_k_then_drop_with<F: Future>(f: F, k: usize, spurious: u64) -> Option<F::Output> {
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
pub struct Tally {
    /// `dropped[k]`: dropped while pending after `k` polls.
    pub dropped: [u64; K_MAX + 1],
    /// `finished[k]`: finished within `k` polls (booked as a real call).
    pub finished: [u64; K_MAX + 1],
}

impl Tally {
    /// All dropped futures.
    pub fn total_dropped(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// All futures that were given `k` polls.
    pub fn total(&self) -> u64 {
        self.total_dropped() + self.finished.iter().sum::<u64>()
    }

    /// Adds `other`'s counts.
    pub fn merge(&mut self, other: &Tally) {
        for k in 0..=K_MAX {
            self.dropped[k] += other.dropped[k];
            self.finished[k] += other.finished[k];
        }
    }

    /// Some `k` up to [`K_CHECKED`] has dropped fewer than [`MIN_DROPS`].
    pub fn wants_more(&self) -> bool {
        self.dropped[1..=K_CHECKED].iter().any(|&n| n < MIN_DROPS)
    }

    /// Prints the counts and checks that every `k` up to [`K_CHECKED`] really
    /// dropped futures.
    pub fn report(&self, name: &str) {
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
pub struct Dropper {
    /// Chooses sizes, spurious wake-ups and the like.
    pub rng: Rng,
    /// The `k` of the last call.
    pub k: usize,
    /// What happened so far.
    pub tally: Tally,
}

impl Dropper {
    /// A dropper whose choices follow `seed`.
    pub fn new(seed: u64) -> Dropper {
        Dropper {
            rng: Rng::new(seed),
            k: 0,
            tally: Tally::default(),
        }
    }

    /// Polls `f` at most `k` times (the next `k` of the cycle), waking on IO
    /// only, on every tick, or a random mix, and drops it if still pending.
    pub async fn attempt<F: Future>(&mut self, f: F) -> Option<F::Output> {
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
// Small helpers: payloads, comparisons, sockets, runtime
// ---------------------------------------------------------------------------

/// FNV-1a, to report a mismatch compactly.
pub fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Asserts `got == want` (length, checksum, bytes), naming the first
/// difference rather than printing kilobytes.
pub fn assert_same(what: &str, got: &[u8], want: &[u8]) {
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
pub fn binary_payload(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

/// About `len` bytes of records ended by `delim`: mostly short, some empty,
/// some long; the text holds no `\r`, and the last record may lack its
/// delimiter.
pub fn text_payload(rng: &mut Rng, len: usize, delim: u8) -> Vec<u8> {
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
pub fn utf8_payload(rng: &mut Rng, len: usize) -> Vec<u8> {
    const CHARS: &[char] = &['a', 'z', ' ', '\n', 'é', 'ß', 'ж', '€', '中', '😀', '🦀'];
    let mut out = String::with_capacity(len + 4);
    while out.len() < len {
        out.push(rng.pick(CHARS));
    }
    out.into_bytes()
}

/// About `len` bytes of frames for `LengthDelimitedCodec`: a 4-byte
/// big-endian length, then the body (some empty).
pub fn frame_payload(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = BytesMut::new();
    while out.len() < len {
        let n = if rng.one_in(8) { 0 } else { rng.range(1, 200) };
        out.put_u32(n as u32);
        out.extend_from_slice(&binary_payload(rng, n));
    }
    out.to_vec()
}

/// Records joined back with their delimiter, as they were sent.
pub fn join_records(records: &[Vec<u8>], delim: u8, ended_with_delim: bool) -> Vec<u8> {
    let mut out = records.join(&delim);
    if ended_with_delim {
        out.push(delim);
    }
    out
}

/// Sets `SO_SNDBUF` and `SO_RCVBUF` of socket `fd` to 4 KiB, so writers
/// really wait for a slow peer.
pub fn small_socket_buffers(fd: RawFd) {
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
pub fn run_test(name: &str, body: impl Future<Output = ()>) {
    run_test_in(Mode::Plain, name, body);
}

/// As [`run_test`] on a runtime for `mode`; pooled, then also checks that
/// every pool buffer came back.
pub fn run_test_in(mode: Mode, name: &str, body: impl Future<Output = ()>) {
    let rt = mode.runtime();
    rt.block_on(async {
        if timeout(LIMIT, body).await.is_err() {
            panic!("{name}: no result within {LIMIT:?} (hang: a lost wake-up?)");
        }
        runtime_still_works(name).await;
        if mode.is_pooled() {
            let stats = assert_pool_settled(&rt).await;
            eprintln!("drop_safety {name}: all pool buffers back: {stats:?}");
        }
    });
}

/// A fresh operation on the runtime works: a buffered round trip on a new
/// socket pair, a spawned task and a sleep.
pub async fn runtime_still_works(name: &str) {
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
pub trait Peer: ReadSource + WriteSink + AsRawFd + Sized {
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
pub async fn trickle<S: Peer>(peer: S, payload: Bytes, seed: u64) -> io::Result<()> {
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
pub async fn drain_slowly<S: Peer>(peer: S, seed: u64) -> io::Result<Vec<u8>> {
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
