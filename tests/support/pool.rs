//! Ordinary and pooled readers side by side: a test body takes a [`Mode`],
//! builds its readers with [`Mode::reader`] and runs under [`run_mode`].
//! In the pooled mode the runtime's pool has small buffers, so records
//! span pool buffers and are joined in the spill buffer, the pool runs dry
//! and grows, and a reader reaches its per-reader cap; the run ends by
//! checking that every pool buffer came back once the readers were dropped.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

use uring_bufio::io::BufReader;
use uring_bufio::time::{sleep, timeout};
use uring_bufio::{Capability, DriverKind, PoolConfig, PoolStats, ReadSource, Runtime};

/// How a test builds its readers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `BufReader::with_capacity` (or `new`): the reader's own buffer.
    Plain,
    /// `BufReader::pooled` on a runtime whose pool buffers hold this many
    /// bytes (see [`pool_config`]); the kernel's incremental buffer
    /// consumption on where it has it, so receives share a buffer.
    Pooled(usize),
    /// As `Pooled`, with incremental consumption off: every receive takes
    /// whole buffers (bundles of them where the kernel has them). The same
    /// as `Pooled` on epoll.
    PooledWhole(usize),
}

/// How long returned buffers may take to reach the pool after the test
/// body ended (a cancelled multishot receive gives its last buffer back
/// when the kernel confirms the cancel).
const SETTLE: Duration = Duration::from_secs(2);

/// The pool of a pooled test: `size`-byte buffers, few at first so that it
/// runs dry and grows, and a per-reader cap of 3 so a reader that falls
/// behind has its receive paused and armed again.
pub fn pool_config(size: usize) -> PoolConfig {
    PoolConfig::new()
        .buffer_size(size)
        .buffers(4)
        .max_buffers(256)
        .per_reader(3)
}

impl Mode {
    /// Whether readers are pooled.
    pub fn is_pooled(self) -> bool {
        matches!(self, Mode::Pooled(_) | Mode::PooledWhole(_))
    }

    /// A runtime for this mode (with its pool configured when pooled).
    pub fn runtime(self) -> Runtime {
        match self {
            Mode::Plain => Runtime::new().expect("runtime"),
            Mode::Pooled(size) => Runtime::builder()
                .pool(pool_config(size))
                .build()
                .expect("runtime with a pool"),
            Mode::PooledWhole(size) => Runtime::builder()
                .pool(pool_config(size).incremental(false))
                .build()
                .expect("runtime with a pool"),
        }
    }

    /// A reader on `source`: in the plain mode with capacity `cap` (the
    /// default if `None`); pooled, `cap` does not apply.
    pub fn reader<S: ReadSource>(self, source: S, cap: Option<usize>) -> BufReader<S> {
        match (self, cap) {
            (Mode::Plain, Some(cap)) => BufReader::with_capacity(cap, source),
            (Mode::Plain, None) => BufReader::new(source),
            (_, _) => BufReader::pooled(source),
        }
    }
}

/// Runs `body` on a fresh runtime for `mode`, failing on an error or if it
/// takes longer than `limit`; pooled, then checks that every pool buffer is
/// back (the body's readers are dropped by then).
pub fn run_mode<F: Future<Output = io::Result<()>>>(mode: Mode, limit: Duration, body: F) {
    let rt = mode.runtime();
    SUPPORTED.with(|s| s.set(pool_supported(&rt)));
    rt.block_on(async {
        let res = timeout(limit, body).await;
        res.unwrap_or_else(|_| panic!("{mode:?}: no result within {limit:?} (hang)"))
            .unwrap_or_else(|e| panic!("{mode:?}: test failed: {e}"));
        if mode.is_pooled() {
            let stats = assert_pool_settled(&rt).await;
            eprintln!("{mode:?}: all buffers back: {stats:?}");
        }
    });
}

/// Every buffer is in the pool and none is counted out.
pub fn all_back(stats: &PoolStats) -> bool {
    stats.out == 0 && stats.free == stats.buffers
}

/// Whether the runtime builds a pool for pooled readers (io_uring without
/// provided buffer rings and multishot receive reads the ordinary way).
pub fn pool_supported(rt: &Runtime) -> bool {
    rt.driver() == DriverKind::Epoll
        || (rt.has(Capability::BufRing) && rt.has(Capability::MultishotRecv))
}

/// Waits up to [`SETTLE`] for every pool buffer to come back, then asserts
/// it did; returns the counters. Panics if the pool was never built where
/// it is supported (the pooled readers did not read pooled).
pub async fn assert_pool_settled(rt: &Runtime) -> Option<PoolStats> {
    if !pool_supported(rt) {
        assert!(rt.pool_stats().is_none(), "a pool where none is supported");
        return None;
    }
    let start = Instant::now();
    loop {
        let stats = rt
            .pool_stats()
            .expect("no pool was built: the pooled readers did not read pooled");
        if all_back(&stats) {
            return Some(stats);
        }
        assert!(
            start.elapsed() < SETTLE,
            "pool buffers still out {SETTLE:?} after the readers were dropped: {stats:?}"
        );
        sleep(Duration::from_millis(2)).await;
    }
}

thread_local! {
    /// The runtime [`run_mode`] runs on this thread builds a pool.
    static SUPPORTED: Cell<bool> = const { Cell::new(false) };
}

impl Mode {
    /// Asserts that `r`, which has read, reads pooled exactly when this
    /// mode says so (and the runtime of [`run_mode`] can).
    pub fn assert_reader<S: ReadSource>(self, r: &BufReader<S>) {
        let want = self.is_pooled() && SUPPORTED.with(Cell::get);
        assert_eq!(r.is_pooled(), want, "{self:?}: is_pooled");
    }
}
