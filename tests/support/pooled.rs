//! Helpers of the pooled-reader tests (`tests/pooled*.rs`): a runtime with
//! a given pool, the kernel modes to loop over, the checks that every pool
//! buffer came back, and connections that trickle reproducible bytes and
//! read them back with stalls and dropped futures.

use std::io;
use std::time::Duration;

use super::pool::pool_supported;
use super::{Rng, bounded, within};
use uring_bufio::io::{BufReader, BufWriter};
use uring_bufio::net::{TcpStream, UnixStream};
use uring_bufio::time::{sleep, timeout};
use uring_bufio::{Capability, JoinHandle, PoolConfig, PoolStats, Runtime, spawn};

/// Upper bound for one test.
pub const LIMIT: Duration = Duration::from_secs(60);

/// Runs `f` (given the runtime, for its counters) on a runtime with `pool`
/// within [`LIMIT`], then returns the pool's counters: all zero where the
/// runtime cannot build a pool (io_uring without provided buffer rings or
/// multishot receive, as `URING_BUFIO_CAPS_OFF` can make it), so pooled
/// readers read the ordinary way and nothing was lent.
pub fn run_pooled<F>(pool: PoolConfig, f: F) -> PoolStats
where
    F: AsyncFnOnce(&Runtime) -> io::Result<()> + Send + 'static,
{
    within(LIMIT, move || {
        let rt = Runtime::builder().pool(pool).build().expect("runtime");
        rt.block_on(f(&rt)).expect("test failed");
        if !pool_supported(&rt) {
            assert!(rt.pool_stats().is_none(), "a pool where none is supported");
            return PoolStats::default();
        }
        let stats = rt.pool_stats().expect("the pool was built");
        assert_mode(&rt, &pool, &stats);
        stats
    })
}

/// Every pool buffer is back, or `rt` has no pool because it cannot
/// build one.
pub fn assert_all_back_in(rt: &Runtime) {
    match rt.pool_stats() {
        Some(stats) => assert_all_back(&stats),
        None => assert!(!pool_supported(rt), "no pool where one is supported"),
    }
}

/// Whether runtimes in this process build a pool; if not, says that `test`
/// is skipped (it is about pool buffers, which a reader without a pool
/// never holds).
pub fn pools_or_skip(test: &str) -> bool {
    let pools = pool_supported(&Runtime::new().expect("runtime"));
    if !pools {
        eprintln!("skipped {test}: no pool here (io_uring without buffer rings)");
    }
    pools
}

/// Adjusts a pool config to one mode.
pub type ModeFn = fn(PoolConfig) -> PoolConfig;

/// The ways the kernel can hand out pool buffers; each test that loops
/// over them runs in every one (on epoll all are the user-space list).
pub const MODES: [(&str, ModeFn); 3] = [
    ("incremental", |c| c),
    ("bundles", |c| c.incremental(false)),
    ("plain", |c| c.incremental(false).bundles(false)),
];

/// The pool uses the kernel features asked for wherever the runtime has
/// them: on this project's kernel (6.18) every mode really runs, unless
/// `URING_BUFIO_CAPS_OFF` switched one off.
pub fn assert_mode(rt: &Runtime, pool: &PoolConfig, stats: &PoolStats) {
    let uring = rt.driver() == uring_bufio::DriverKind::IoUring;
    let ring = rt.has(Capability::BufRing) && rt.has(Capability::MultishotRecv);
    assert_eq!(stats.kernel_ring, uring && ring, "{stats:?}");
    let inc =
        stats.kernel_ring && rt.has(Capability::BufRingInc) && *pool == pool.incremental(true);
    assert_eq!(stats.incremental, inc, "{stats:?}");
    let bundles =
        stats.kernel_ring && !inc && rt.has(Capability::RecvBundle) && *pool == pool.bundles(true);
    assert_eq!(stats.bundles, bundles, "{stats:?}");
}

/// Every buffer is back in the pool and none is counted out.
pub fn assert_all_back(stats: &PoolStats) {
    assert_eq!(stats.out, 0, "buffers still out: {stats:?}");
    assert_eq!(stats.free, stats.buffers, "{stats:?}");
}

/// The bytes connection `seed` carries: its seed first, then noise.
pub fn stream_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = seed.to_le_bytes().to_vec();
    out.extend(Rng::new(seed).bytes(len));
    out
}

/// Sends `data` in random pieces with random pauses, then shuts down the
/// write side. Errors are returned (a peer that hung up on purpose).
pub async fn trickle(stream: TcpStream, data: Vec<u8>, seed: u64) -> io::Result<()> {
    let mut rng = Rng::new(seed ^ 0x5eed);
    let mut w = BufWriter::with_capacity(1 + rng.below(600), stream);
    let mut at = 0;
    while at < data.len() {
        let n = (1 + rng.below(900)).min(data.len() - at);
        w.write_all(&data[at..at + n]).await?;
        match rng.below(6) {
            0 => w.flush().await?,
            1 => sleep(Duration::from_micros(rng.below(2000) as u64)).await,
            _ => {}
        }
        at += n;
    }
    w.shutdown().await
}

/// Reads one connection with random consumes, stalls and dropped
/// `fill_buf` futures; checks every byte. One connection in eight (by its
/// seed) is dropped part way, with bytes and buffers still in the reader.
pub async fn drain(stream: TcpStream, len: usize) -> io::Result<usize> {
    let mut r = BufReader::pooled(stream);
    let head = bounded("fill_at_least", r.fill_at_least(8)).await?;
    let seed = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
    let want = stream_bytes(seed, len);
    let mut rng = Rng::new(seed ^ 0xd4a1);
    let give_up_at = ((seed - 1000) % 8 == 7).then(|| rng.below(len));
    let mut at = 0;
    loop {
        if give_up_at.is_some_and(|g| at >= g) {
            return Ok(at); // drops the reader with bytes and buffers in it
        }
        match rng.below(8) {
            // A fill dropped after a short while (often before it finished).
            0 => {
                let _ = timeout(Duration::from_micros(rng.below(300) as u64), r.fill_buf()).await;
                continue;
            }
            // A stall while holding whatever is buffered.
            1 => sleep(Duration::from_micros(rng.below(3000) as u64)).await,
            _ => {}
        }
        let buf = bounded("fill_buf", r.fill_buf()).await?;
        if buf.is_empty() {
            break;
        }
        let n = (1 + rng.below(700)).min(buf.len());
        assert!(
            buf[..n] == want[at..at + n],
            "seed {seed}: bytes differ at {at}"
        );
        r.consume(n);
        at += n;
    }
    assert_eq!(at, want.len(), "seed {seed}: stream length");
    Ok(at)
}

/// A Unix socket pair whose one end is sending `stream_bytes(seed, len)`
/// from a task: the other end, the task, and the bytes it sends.
pub fn unix_sending(
    seed: u64,
    len: usize,
) -> io::Result<(UnixStream, JoinHandle<io::Result<()>>, Vec<u8>)> {
    let (a, b) = UnixStream::pair()?;
    let data = stream_bytes(seed, len);
    let sent = bytes::Bytes::from(data.clone());
    let writer = spawn(async move { a.write_all(sent).await.0 });
    Ok((b, writer, data))
}
