//! `BufReader::pooled`: receives into buffers the kernel picks from the
//! runtime's pool, on real loopback TCP and Unix sockets. Runs on io_uring
//! (provided buffer ring, multishot receive) and, under
//! `URING_BUFIO_DRIVER=epoll`, on the epoll fallback (user-space pool).
//! Every test checks the bytes against what was sent and that every pool
//! buffer is back at the end.

mod support;

use std::future::Future;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use support::{Rng, bounded, within};
use uring_bufio::io::{BufReader, BufStream, BufWriter};
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
        let stats = rt.pool_stats().expect("the pool was built");
        assert_mode(&rt, &pool, &stats);
        stats
    })
}

/// The ways the kernel can hand out pool buffers; each test that loops
/// over them runs in every one (on epoll all are the user-space list).
/// Adjusts a pool config to one mode.
type ModeFn = fn(PoolConfig) -> PoolConfig;

const MODES: [(&str, ModeFn); 3] = [
    ("incremental", |c| c),
    ("bundles", |c| c.incremental(false)),
    ("plain", |c| c.incremental(false).bundles(false)),
];

/// The pool uses the kernel features asked for wherever the kernel has
/// them: on this project's kernel (6.18) every mode really runs.
fn assert_mode(rt: &Runtime, pool: &PoolConfig, stats: &PoolStats) {
    let probe = rt.probe();
    let uring = rt.driver() == uring_bufio::DriverKind::IoUring;
    assert_eq!(
        stats.kernel_ring,
        uring && probe.multishot_recv,
        "{stats:?}"
    );
    let inc = stats.kernel_ring && probe.buf_ring_inc && pool.get_incremental();
    assert_eq!(stats.incremental, inc, "{stats:?}");
    let bundles = stats.kernel_ring && !inc && probe.recv_bundle && pool.get_bundles();
    assert_eq!(stats.bundles, bundles, "{stats:?}");
}

/// Every buffer is back in the pool and none is counted out.
fn assert_all_back(stats: &PoolStats) {
    assert_eq!(stats.out, 0, "buffers still out: {stats:?}");
    assert_eq!(stats.free, stats.buffers, "{stats:?}");
}

#[test]
fn lines_over_tcp_match_what_was_sent() {
    for (mode, config) in MODES {
        eprintln!("mode {mode}");
        let stats = lines_over_tcp(config(PoolConfig::new().buffer_size(512).buffers(16)));
        assert_all_back(&stats);
    }
}

/// Sends 3000 random lines in random pieces; reads them with `next_line`.
fn lines_over_tcp(pool: PoolConfig) -> PoolStats {
    run_pooled(pool, || async {
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
    })
}

/// The bytes connection `seed` carries: its seed first, then noise.
fn stream_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = seed.to_le_bytes().to_vec();
    out.extend(Rng::new(seed).bytes(len));
    out
}

/// Sends `data` in random pieces with random pauses, then shuts down the
/// write side. Errors are returned (a peer that hung up on purpose).
async fn trickle(stream: TcpStream, data: Vec<u8>, seed: u64) -> io::Result<()> {
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
async fn drain(stream: TcpStream, len: usize) -> io::Result<usize> {
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

#[test]
fn four_buffers_serve_sixty_four_connections_with_stalls_and_drops() {
    for (mode, config) in MODES {
        eprintln!("mode {mode}");
        let pool = PoolConfig::new()
            .buffer_size(512)
            .buffers(4)
            .max_buffers(4)
            .per_reader(1);
        let stats = sixty_four_connections(config(pool));
        assert_all_back(&stats);
        assert_eq!(stats.buffers, 4, "the pool may not grow: {stats:?}");
        assert!(stats.exhausted > 0, "the pool never ran dry: {stats:?}");
    }
}

/// 64 connections trickle 24 KiB each through `pool`, read by [`drain`].
fn sixty_four_connections(pool: PoolConfig) -> PoolStats {
    const CONNS: u64 = 64;
    const LEN: usize = 24 * 1024;
    run_pooled(pool, || async {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let mut clients = Vec::new();
        for i in 0..CONNS {
            clients.push(spawn(async move {
                let stream = TcpStream::connect(addr).await?;
                let seed = 1000 + i;
                // One in eight servers hangs up early: their writes may fail.
                let res = trickle(stream, stream_bytes(seed, LEN), seed).await;
                if i % 8 != 7 { res } else { Ok(()) }
            }));
        }
        let mut servers = Vec::new();
        for _ in 0..CONNS {
            let (stream, _) = bounded("accept", listener.accept()).await?;
            servers.push(spawn(drain(stream, LEN)));
        }
        let mut total = 0;
        for s in servers {
            total += s.await.expect("server task")?;
        }
        for c in clients {
            c.await.expect("client task")?;
        }
        assert!(total > 0);
        Ok(())
    })
}

#[test]
fn a_reader_that_stops_consuming_holds_at_most_its_cap() {
    within(LIMIT, || {
        let pool = PoolConfig::new()
            .buffer_size(1024)
            .buffers(16)
            .max_buffers(16)
            .per_reader(2);
        let rt = Runtime::builder().pool(pool).build().expect("runtime");
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            let big = stream_bytes(1, 1 << 20);
            let sent = big.clone();
            let hog = spawn(async move { trickle(TcpStream::connect(addr).await?, sent, 1).await });
            let (stream, _) = listener.accept().await?;
            let mut stalled = BufReader::pooled(stream);
            let first = bounded("fill_buf", stalled.fill_buf()).await?.len();
            assert!(first > 0);
            // The reader holds its bytes and stops; the peer keeps sending.
            sleep(Duration::from_millis(300)).await;
            let held = rt.pool_stats().expect("pool").out;
            // Its own buffer, the cap, and what the kernel posted before
            // the cancel took effect.
            assert!(held <= 2 + 1 + 2, "a stalled reader holds {held} buffers");
            // Another connection is served meanwhile.
            let small = stream_bytes(2, 50_000);
            let sent = small.clone();
            let other =
                spawn(async move { trickle(TcpStream::connect(addr).await?, sent, 2).await });
            let (stream, _) = listener.accept().await?;
            let mut r = BufReader::pooled(stream);
            let mut got = Vec::new();
            bounded("read_to_end", r.read_to_end(&mut got)).await?;
            assert!(got == small, "the second connection's bytes differ");
            other.await.expect("task")?;
            // The stalled reader goes on and misses nothing.
            let mut got = Vec::new();
            bounded("read_to_end", stalled.read_to_end(&mut got)).await?;
            assert_eq!(got.len(), big.len());
            assert!(got == big, "the stalled connection's bytes differ");
            hog.await.expect("task")?;
            drop((r, stalled));
            assert_all_back(&rt.pool_stats().expect("pool"));
            Ok::<_, io::Error>(())
        })
        .expect("test failed");
    });
}

#[test]
fn idle_readers_hold_no_buffers() {
    within(LIMIT, || {
        let rt = Runtime::builder()
            .pool(PoolConfig::new().buffer_size(4096).buffers(8))
            .build()
            .expect("runtime");
        rt.block_on(async {
            const CONNS: usize = 300;
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            let mut clients = Vec::new();
            let mut readers = Vec::new();
            for _ in 0..CONNS {
                clients.push(TcpStream::connect(addr).await?);
                let (s, _) = listener.accept().await?;
                readers.push(spawn(async move {
                    let mut r = BufReader::pooled(s);
                    let line = r.next_line().await?.map(<[u8]>::to_vec);
                    Ok::<_, io::Error>(line)
                }));
            }
            // Every reader is parked with its receive armed.
            sleep(Duration::from_millis(50)).await;
            let idle = rt.pool_stats().expect("pool");
            assert_eq!(idle.out, 0, "idle readers hold buffers: {idle:?}");
            assert_eq!(idle.buffers, 8, "the pool grew while idle: {idle:?}");
            for (i, c) in clients.iter().enumerate() {
                let (res, _) = c.write_all(Bytes::from(format!("hello {i}\n"))).await;
                res?;
            }
            for (i, r) in readers.into_iter().enumerate() {
                let line = bounded("reader", r).await.expect("task")?;
                assert_eq!(line, Some(format!("hello {i}").into_bytes()));
            }
            assert_all_back(&rt.pool_stats().expect("pool"));
            Ok::<_, io::Error>(())
        })
        .expect("test failed");
    });
}

#[test]
fn unix_socket_lines_and_end_of_stream() {
    let stats = run_pooled(PoolConfig::new().buffer_size(64).buffers(4), || async {
        let (a, b) = UnixStream::pair()?;
        let mut want = Vec::new();
        for i in 0..500 {
            want.extend_from_slice(format!("line number {i} {}\n", "x".repeat(i % 150)).as_bytes());
        }
        let sent = Bytes::from(want.clone());
        let writer = spawn(async move {
            let (res, _) = a.write_all(sent).await;
            res
        });
        let mut r = BufReader::pooled(b);
        let mut got = Vec::new();
        while let Some(line) = bounded("next_line", r.next_line()).await? {
            got.extend_from_slice(line);
            got.push(b'\n');
        }
        assert!(r.is_pooled());
        assert!(got == want, "bytes differ");
        // The end is reported again, not an error.
        assert!(r.fill_buf().await?.is_empty());
        writer.await.expect("task")?;
        Ok(())
    });
    assert_all_back(&stats);
}

#[test]
fn a_reset_connection_is_an_error_not_a_panic() {
    let stats = run_pooled(PoolConfig::new().buffer_size(256).buffers(4), || async {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let client = std::net::TcpStream::connect(addr)?;
        let (s, _) = listener.accept().await?;
        let mut r = BufReader::pooled(s);
        // Unread bytes at close make the kernel send a reset; linger 0 too.
        linger_zero(&client);
        drop(client);
        let mut seen_error = None;
        for _ in 0..3 {
            match bounded("fill_buf", r.fill_buf()).await {
                Ok([]) => break,
                Ok(b) => {
                    let n = b.len();
                    r.consume(n);
                }
                Err(e) => {
                    seen_error = Some(e);
                    break;
                }
            }
        }
        let e = seen_error.expect("a reset is reported");
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
        Ok(())
    });
    assert_all_back(&stats);
}

/// Sets `SO_LINGER` to zero seconds, so closing sends a reset.
fn linger_zero(s: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a valid `linger` for the call.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt: {}", io::Error::last_os_error());
}

#[test]
fn incremental_buffers_pack_small_messages_of_many_connections() {
    const CONNS: usize = 64;
    let pool = PoolConfig::new()
        .buffer_size(4096)
        .buffers(4)
        .max_buffers(4);
    within(LIMIT, move || {
        let rt = Runtime::builder().pool(pool).build().expect("runtime");
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            let mut clients = Vec::new();
            let mut readers = Vec::new();
            for _ in 0..CONNS {
                clients.push(TcpStream::connect(addr).await?);
                readers.push(BufReader::pooled(listener.accept().await?.0));
            }
            // Arm every reader's receive first.
            for r in &mut readers {
                let _ = timeout(Duration::from_millis(1), r.fill_buf()).await;
            }
            let stats = rt.pool_stats().expect("pool");
            if !stats.incremental {
                eprintln!(
                    "skipped: no incremental buffers here ({} backend, or the kernel lacks \
                     IOU_PBUF_RING_INC, Linux 6.12)",
                    rt.driver()
                );
                return Ok(());
            }
            for (i, c) in clients.iter().enumerate() {
                let (res, _) = c.write_all(Bytes::from(format!("hi {i}\n"))).await;
                res?;
            }
            // Every reader holds its message at once: 64 messages in a pool
            // of 4 buffers, because each took only its own bytes.
            for (i, r) in readers.iter_mut().enumerate() {
                let got = bounded("fill_buf", r.fill_buf()).await?;
                assert_eq!(got, format!("hi {i}\n").as_bytes());
            }
            let held = rt.pool_stats().expect("pool");
            assert!(held.partial > 0, "{held:?}");
            assert!(
                held.out <= 2,
                "64 small messages took {} buffers: {held:?}",
                held.out
            );
            drop(readers);
            assert_all_back(&rt.pool_stats().expect("pool"));
            Ok::<_, io::Error>(())
        })
        .expect("test failed");
    });
}

#[test]
fn bundles_fill_several_buffers_per_completion() {
    let pool = PoolConfig::new()
        .buffer_size(1024)
        .buffers(64)
        .incremental(false);
    within(LIMIT, move || {
        let rt = Runtime::builder().pool(pool).build().expect("runtime");
        rt.block_on(async {
            let (a, b) = UnixStream::pair()?;
            let data = stream_bytes(9, 200_000);
            let sent = Bytes::from(data.clone());
            let writer = spawn(async move { a.write_all(sent).await.0 });
            let mut r = BufReader::pooled(b);
            let mut got = Vec::new();
            let mut rng = Rng::new(9);
            loop {
                // Pauses let bytes pile up in the socket, as for bulk data.
                if rng.below(4) == 0 {
                    sleep(Duration::from_millis(1)).await;
                }
                let buf = bounded("fill_buf", r.fill_buf()).await?;
                if buf.is_empty() {
                    break;
                }
                got.extend_from_slice(buf);
                let n = buf.len();
                r.consume(n);
            }
            assert!(got == data, "bytes differ");
            writer.await.expect("task")?;
            drop(r);
            let stats = rt.pool_stats().expect("pool");
            if stats.bundles {
                assert!(
                    stats.bundled > 0,
                    "no completion filled two buffers: {stats:?}"
                );
            } else {
                eprintln!(
                    "bundles not in use here ({} backend): checked the bytes only",
                    rt.driver()
                );
            }
            assert_all_back(&stats);
            Ok::<_, io::Error>(())
        })
        .expect("test failed");
    });
}

#[test]
fn refused_submissions_are_retried_without_losing_bytes() {
    for (mode, config) in MODES {
        eprintln!("mode {mode}");
        let pool = config(PoolConfig::new().buffer_size(256).buffers(8).max_buffers(8));
        let plan = uring_bufio::faults::FaultPlan::new(11).submit_error(libc::EAGAIN, 0.3);
        within(LIMIT, move || {
            let rt = Runtime::builder()
                .pool(pool)
                .faults(plan)
                .build()
                .expect("runtime");
            rt.block_on(async {
                let (a, b) = UnixStream::pair()?;
                let data = stream_bytes(3, 100_000);
                let sent = Bytes::from(data.clone());
                let writer = spawn(async move { a.write_all(sent).await.0 });
                let mut r = BufReader::pooled(b);
                let mut got = Vec::new();
                bounded("read_to_end", r.read_to_end(&mut got)).await?;
                assert!(got == data, "bytes differ");
                writer.await.expect("task")?;
                drop(r);
                assert_all_back(&rt.pool_stats().expect("pool"));
                Ok::<_, io::Error>(())
            })
            .expect("test failed");
            let refused = rt.fault_stats().submit_errors;
            assert!(refused > 10, "only {refused} submissions refused");
        });
    }
}

#[test]
fn buf_stream_pooled_echoes_and_a_file_reads_the_ordinary_way() {
    let stats = run_pooled(PoolConfig::new().buffer_size(128).buffers(4), || async {
        let (a, b) = UnixStream::pair()?;
        let echo = spawn(async move {
            let mut s = BufStream::pooled_with_capacity(256, b);
            while let Some(line) = s.reader().next_line().await? {
                let reply = line.to_ascii_uppercase();
                s.write_all(&reply).await?;
                s.write_all(b"\n").await?;
            }
            assert!(s.reader().is_pooled());
            s.shutdown().await
        });
        let mut c = BufStream::new(a);
        let mut want = Vec::new();
        for i in 0..200 {
            let line = format!("line {i} {}", "q".repeat(i));
            c.write_all(line.as_bytes()).await?;
            c.write_all(b"\n").await?;
            want.push(line.to_ascii_uppercase().into_bytes());
        }
        c.shutdown().await?;
        for w in want {
            let got = bounded("next_line", c.reader().next_line()).await?;
            assert_eq!(got, Some(&w[..]));
        }
        assert_eq!(c.reader().next_line().await?, None);
        echo.await.expect("task")?;
        // Not a socket: `pooled` reads a file the ordinary way.
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f");
        std::fs::write(&path, b"one\ntwo\n")?;
        let mut r = BufReader::pooled(uring_bufio::fs::File::open(&path).await?);
        assert_eq!(r.next_line().await?, Some(&b"one"[..]));
        assert_eq!(r.next_line().await?, Some(&b"two"[..]));
        assert!(!r.is_pooled());
        Ok(())
    });
    assert_all_back(&stats);
}

#[test]
fn the_pool_grows_to_the_load_and_shrinks_after_it() {
    // 64 readers at a cap of 2 need about 64 x (2 + 1) buffers at most; the
    // pool may grow to 1024 but must not: when every reader meets the dry
    // ring at once, only the first may grow it.
    let pool = PoolConfig::new()
        .buffer_size(2048)
        .buffers(4)
        .max_buffers(1024)
        .per_reader(2);
    for (mode, config) in MODES {
        eprintln!("mode {mode}");
        let stats = run_pooled(config(pool), || async {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            let mut tasks = Vec::new();
            for i in 0..64u64 {
                tasks.push(spawn(async move {
                    let s = TcpStream::connect(addr).await?;
                    let (res, _) = s.write_all(Bytes::from(stream_bytes(i, 200_000))).await;
                    res
                }));
            }
            let mut readers = Vec::new();
            for _ in 0..64 {
                let (s, _) = listener.accept().await?;
                readers.push(spawn(async move {
                    let mut r = BufReader::pooled(s);
                    let mut got = Vec::new();
                    r.read_to_end(&mut got).await?;
                    let seed = u64::from_le_bytes(got[..8].try_into().expect("8 bytes"));
                    assert!(
                        got == stream_bytes(seed, 200_000),
                        "seed {seed}: bytes differ"
                    );
                    Ok::<_, io::Error>(())
                }));
            }
            for t in tasks {
                t.await.expect("task")?;
            }
            for r in readers {
                bounded("reader", r).await.expect("task")?;
            }
            Ok(())
        });
        eprintln!("{stats:?}");
        assert_all_back(&stats);
        assert!(
            stats.peak <= 512,
            "grew to {} buffers for 64 readers: {stats:?}",
            stats.peak
        );
        // On epoll a receive holds a buffer only from the moment its socket
        // is readable until the reader consumes, within one tick: four
        // buffers serve all 64 there, and nothing needs to grow.
        if stats.kernel_ring {
            assert!(
                stats.grown > 0,
                "64 readers never grew a pool of 4: {stats:?}"
            );
        }
    }
}

#[test]
fn the_pool_shrinks_back_once_the_burst_is_over() {
    let pool = PoolConfig::new()
        .buffer_size(1024)
        .buffers(4)
        .max_buffers(256)
        .per_reader(2);
    for (mode, config) in MODES {
        eprintln!("mode {mode}");
        let stats = run_pooled(config(pool), || async {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            // A burst: 32 connections at once grow the pool.
            let mut readers = Vec::new();
            for i in 0..32u64 {
                let c = TcpStream::connect(addr).await?;
                let (s, _) = listener.accept().await?;
                spawn(async move { c.write_all(Bytes::from(stream_bytes(i, 100_000))).await.0 });
                readers.push(spawn(async move {
                    let mut got = Vec::new();
                    BufReader::pooled(s).read_to_end(&mut got).await?;
                    Ok::<_, io::Error>(got.len())
                }));
            }
            for r in readers {
                assert_eq!(bounded("reader", r).await.expect("task")?, 100_008);
            }
            // Calm: one connection streams 4 MB, buffer after buffer.
            let c = TcpStream::connect(addr).await?;
            let (s, _) = listener.accept().await?;
            let data = stream_bytes(99, 4_000_000);
            let sent = Bytes::from(data.clone());
            let w = spawn(async move { c.write_all(sent).await.0 });
            let mut got = Vec::new();
            BufReader::pooled(s).read_to_end(&mut got).await?;
            assert!(got == data, "bytes differ");
            w.await.expect("task")?;
            Ok(())
        });
        eprintln!("{stats:?}");
        assert_all_back(&stats);
        if !stats.kernel_ring {
            continue; // epoll: no growth to undo (see the test above)
        }
        assert!(stats.peak > 8, "the burst did not grow the pool: {stats:?}");
        assert!(
            stats.buffers < stats.peak / 2,
            "the pool did not shrink after the burst: {stats:?}"
        );
    }
}

#[test]
fn a_reader_holding_half_a_line_in_the_only_buffer_does_not_hang() {
    // One 3-byte buffer: "PIN" fills it, and the rest of the line can only
    // arrive once the reader lets go of it while it waits.
    for (mode, config) in MODES {
        eprintln!("mode {mode}");
        let pool = config(PoolConfig::new().buffer_size(3).buffers(1).max_buffers(1));
        let stats = run_pooled(pool, || async {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            let client = TcpStream::connect(addr).await?;
            let (s, _) = listener.accept().await?;
            let (res, _) = client.write_all(Bytes::from_static(b"PING\nPONG\n")).await;
            res?;
            let mut r = BufReader::pooled(s);
            assert_eq!(
                bounded("next_line", r.next_line()).await?,
                Some(&b"PING"[..])
            );
            assert_eq!(
                bounded("next_line", r.next_line()).await?,
                Some(&b"PONG"[..])
            );
            Ok(())
        });
        assert_all_back(&stats);
    }
}

#[test]
fn three_buffers_serve_readers_that_each_hold_part_of_a_line() {
    // Buffers smaller than a line: every reader needs two or more of them
    // for each line, so readers holding halves would keep the pool dry for
    // one another if a waiting reader kept its buffer.
    for (mode, config) in MODES {
        eprintln!("mode {mode}");
        let pool = config(
            PoolConfig::new()
                .buffer_size(7)
                .buffers(3)
                .max_buffers(3)
                .per_reader(1),
        );
        let stats = run_pooled(pool, || async {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            let mut tasks = Vec::new();
            for c in 0..16u64 {
                let client = TcpStream::connect(addr).await?;
                let (s, _) = listener.accept().await?;
                tasks.push(spawn(async move {
                    let mut text = Vec::new();
                    for i in 0..200u64 {
                        text.extend_from_slice(format!("conn {c} line {i}\n").as_bytes());
                    }
                    let writer = spawn(async move {
                        let mut w = BufWriter::with_capacity(5, client);
                        for piece in text.chunks(3) {
                            w.write_all(piece).await?;
                        }
                        w.shutdown().await
                    });
                    let mut r = BufReader::pooled(s);
                    for i in 0..200u64 {
                        let line = bounded("next_line", r.next_line()).await?;
                        assert_eq!(line, Some(format!("conn {c} line {i}").as_bytes()));
                    }
                    assert_eq!(r.next_line().await?, None);
                    writer.await.expect("task")
                }));
            }
            for t in tasks {
                t.await.expect("task")?;
            }
            Ok(())
        });
        assert_all_back(&stats);
    }
}
