//! Helpers shared by the integration tests: fd accounting, a watchdog that
//! turns a hang into a failure, connected socket pairs and exact reads.
#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::sync::mpsc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use uring_bufio::Runtime;
use uring_bufio::net::{TcpListener, TcpStream, UnixStream};
use uring_bufio::time::timeout;

pub mod dropping;
pub mod hyper_client;
pub mod pool;
pub mod pooled;
pub mod read_calls;
pub mod records;
pub mod trickle;

/// Upper bound for a single operation that should finish at once; only a
/// hang (a lost completion or wake-up) reaches it.
pub const OP_LIMIT: Duration = Duration::from_secs(10);

/// Number of open fds of this process (entries of `/proc/self/fd`; the
/// directory handle used to list it is counted every time, so it cancels out).
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the new soft
/// limit.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    assert_eq!(rc, 0, "getrlimit: {}", io::Error::last_os_error());
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: `lim` is a valid rlimit for the duration of the call.
        let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
        assert_eq!(rc, 0, "setrlimit: {}", io::Error::last_os_error());
    }
    lim.rlim_cur
}

/// Longest any test body run by [`run`] may take: only a hang reaches it.
pub const TEST_LIMIT: Duration = Duration::from_secs(30);

/// Runs `body` on a fresh runtime under [`TEST_LIMIT`]; an error or a hang
/// fails the test. A body that spins without ever yielding (so the timeout
/// cannot fire) aborts the test binary a little later.
pub fn run(body: impl Future<Output = io::Result<()>>) {
    let _watchdog = spin_watchdog(TEST_LIMIT);
    let rt = Runtime::new().expect("runtime");
    run_on(&rt, TEST_LIMIT, body);
}

/// Runs `body` on `rt` and returns its value; an error or taking longer
/// than `limit` fails the test.
pub fn run_on<T>(rt: &Runtime, limit: Duration, body: impl Future<Output = io::Result<T>>) -> T {
    rt.block_on(timeout(limit, body))
        .unwrap_or_else(|_| panic!("test body hung (no result within {limit:?})"))
        .unwrap_or_else(|e| panic!("test body failed: {e}"))
}

/// Aborts the test binary unless dropped within 1.5 x `limit`: the guard
/// for bodies that spin on the runtime thread, where no timeout can fire.
pub fn spin_watchdog(limit: Duration) -> mpsc::Sender<()> {
    let (done, rx) = mpsc::channel::<()>();
    let name = std::thread::current().name().unwrap_or("test").to_string();
    std::thread::spawn(move || {
        if rx.recv_timeout(limit + limit / 2) == Err(mpsc::RecvTimeoutError::Timeout) {
            eprintln!("{name}: spinning past {limit:?} without yielding; aborting");
            std::process::abort();
        }
    });
    done
}

/// Runs `f` on its own thread and fails the test if it has not returned
/// within `limit`: a lost wake-up shows up as a failure, not a stuck run.
/// Panics in `f` are passed on unchanged.
pub fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let name = std::thread::current().name().unwrap_or("test").to_string();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let handle = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            let out = f();
            let _ = done_tx.send(());
            out
        })
        .expect("spawn test thread");
    match done_rx.recv_timeout(limit) {
        // Disconnected: `f` panicked (the sender was dropped unsent).
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{name}: did not finish within {limit:?} (hang)")
        }
    }
}

/// Awaits `fut` for at most [`OP_LIMIT`]; panics (naming `what`) on a hang.
pub async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
    match timeout(OP_LIMIT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what}: no result within {OP_LIMIT:?}"),
    }
}

/// Polls `fut` exactly once with the current task's waker.
pub async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
}

/// A connected TCP pair on 127.0.0.1: `(client, server)`.
pub async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    tcp_pair_on(&listener).await
}

/// A TCP pair connected through `listener`: `(client, server)`.
pub async fn tcp_pair_on(listener: &TcpListener) -> (TcpStream, TcpStream) {
    let addr = listener.local_addr().expect("local_addr");
    let client = bounded("connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    let (server, peer) = bounded("accept", listener.accept()).await.expect("accept");
    assert_eq!(
        peer,
        client.local_addr().expect("local_addr"),
        "accepted someone else"
    );
    (client, server)
}

/// Waits (sleeping on the runtime) until [`fd_count`] equals `target` or
/// `limit` passed; returns the last count. Sleeps 20 ms first, so that
/// operations queued just before have reached the kernel and come back (an
/// fd an operation has yet to create is not counted early).
pub async fn settle_fd_count(target: usize, limit: Duration) -> usize {
    let start = std::time::Instant::now();
    uring_bufio::time::sleep(Duration::from_millis(20)).await;
    loop {
        let n = fd_count();
        if n == target || start.elapsed() >= limit {
            return n;
        }
        uring_bufio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A connected Unix socket pair.
pub fn unix_pair() -> (UnixStream, UnixStream) {
    UnixStream::pair().expect("socketpair")
}

/// The owned-buffer stream calls the tests use, over every stream type.
pub trait Stream {
    /// The stream's `read`.
    fn read_buf(&self, buf: BytesMut) -> impl Future<Output = (io::Result<usize>, BytesMut)>;
    /// The stream's `write_all`.
    fn send_all(&self, buf: Bytes) -> impl Future<Output = (io::Result<()>, Bytes)>;
}

/// Implements [`Stream`] by forwarding to the inherent methods.
macro_rules! impl_stream {
    ($($t:ty),*) => {$(
        impl Stream for $t {
            fn read_buf(&self, buf: BytesMut) -> impl Future<Output = (io::Result<usize>, BytesMut)> {
                self.read(buf)
            }
            fn send_all(&self, buf: Bytes) -> impl Future<Output = (io::Result<()>, Bytes)> {
                self.write_all(buf)
            }
        }
    )*};
}

impl_stream!(TcpStream, UnixStream);

/// Reads exactly `n` bytes (each read bounded by [`OP_LIMIT`]); end of
/// stream before that is an `UnexpectedEof` error.
pub async fn read_exact<S: Stream>(s: &S, n: usize) -> io::Result<BytesMut> {
    let mut buf = BytesMut::with_capacity(n);
    while buf.len() < n {
        let (res, b) = bounded("read", s.read_buf(buf)).await;
        buf = b;
        if res? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("end of stream after {} of {n} bytes", buf.len()),
            ));
        }
    }
    Ok(buf)
}

/// Reads until end of stream (each read bounded by [`OP_LIMIT`]).
pub async fn read_to_end<S: Stream>(s: &S) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let (res, buf) = bounded("read", s.read_buf(BytesMut::with_capacity(4096))).await;
        if res? == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf);
    }
}

/// Shuts down the write direction of a TCP stream (the peer reads EOF).
pub async fn shutdown_write(s: &TcpStream) -> io::Result<()> {
    bounded("shutdown", s.shutdown(Shutdown::Write)).await
}

/// xorshift64: reproducible randomness from a seed printed on failure.
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True once in `n` times on average.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Returns `Pending` once (waking itself at once), then `Ready`: gives the
/// runtime's other tasks a turn.
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}
