//! `BufReader::pooled`: receives into buffers the kernel picks from the
//! runtime's pool, on real loopback TCP and Unix sockets. Runs on io_uring
//! (provided buffer ring, multishot receive) and, under
//! `URING_BUFIO_DRIVER=epoll`, on the epoll fallback (user-space pool).
//! Every test checks the bytes against what was sent and that every pool
//! buffer is back at the end.

mod support;

use std::future::Future;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use support::{Rng, bounded, within};
use uring_bufio::io::{BufReader, BufWriter};
use uring_bufio::net::{TcpListener, TcpStream, UnixStream};
use uring_bufio::time::{sleep, timeout};
use uring_bufio::{PoolConfig, PoolStats, Runtime, spawn};

/// Upper bound for one test.
const LIMIT: Duration = Duration::from_secs(60);

/// Runs `f` on a runtime with `pool`, then returns the pool's counters.
fn run_pooled<F, Fut>(pool: PoolConfig, f: F) -> PoolStats
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<()>>,
{
    within(LIMIT, move || {
        let rt = Runtime::builder().pool(pool).build().expect("runtime");
        rt.block_on(f()).expect("test failed");
        rt.pool_stats().expect("the pool was built")
    })
}

/// Every buffer is back in the pool and none is counted out.
fn assert_all_back(stats: &PoolStats) {
    assert_eq!(stats.out, 0, "buffers still out: {stats:?}");
    assert_eq!(stats.free, stats.buffers, "{stats:?}");
}

#[test]
fn lines_over_tcp_match_what_was_sent() {
    let stats = run_pooled(PoolConfig::new().buffer_size(512).buffers(16), || async {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let mut rng = Rng::new(7);
        let mut text = Vec::new();
        let mut lines = Vec::new();
        for i in 0..3000 {
            let len = if i % 97 == 0 { 1500 } else { rng.below(80) };
            let line: Vec<u8> = (0..len).map(|_| b'a' + rng.below(26) as u8).collect();
            text.extend_from_slice(&line);
            text.push(b'\n');
            lines.push(line);
        }
        let text = Bytes::from(text);
        let writer = spawn(async move {
            let stream = TcpStream::connect(addr).await?;
            let mut w = BufWriter::with_capacity(333, stream);
            let mut rng = Rng::new(8);
            let mut at = 0;
            while at < text.len() {
                let n = (1 + rng.below(700)).min(text.len() - at);
                w.write_all(&text[at..at + n]).await?;
                if rng.below(4) == 0 {
                    w.flush().await?;
                }
                at += n;
            }
            w.shutdown().await
        });
        let (stream, _) = listener.accept().await?;
        let mut r = BufReader::pooled(stream);
        r.set_max_record_len(2000);
        let mut got = Vec::new();
        while let Some(line) = bounded("next_line", r.next_line()).await? {
            got.push(line.to_vec());
        }
        assert!(r.is_pooled());
        assert_eq!(got.len(), lines.len());
        assert!(got == lines, "lines differ");
        writer.await.expect("writer task")?;
        Ok(())
    });
    assert_all_back(&stats);
}
