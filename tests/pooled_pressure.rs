//! Pooled readers under pressure, on real loopback sockets and both
//! backends: a pool far smaller than the connections it serves, readers
//! that stall, drop futures or stop reading, pools that must grow for a
//! burst and shrink after it, and buffers smaller than a line.

mod support;

use std::io;
use std::time::Duration;

use bytes::Bytes;
use support::bounded;
use support::pooled::{
    MODES, assert_all_back, drain, pools_or_skip, run_pooled, stream_bytes, trickle,
};
use uring_bufio::io::{BufReader, BufWriter};
use uring_bufio::net::{TcpListener, TcpStream};
use uring_bufio::time::sleep;
use uring_bufio::{PoolConfig, PoolStats, spawn};

#[test]
fn four_buffers_serve_sixty_four_connections_with_stalls_and_drops() {
    if !pools_or_skip("four_buffers_serve_sixty_four_connections_with_stalls_and_drops") {
        return;
    }
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
    run_pooled(pool, async |_| {
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
    if !pools_or_skip("a_reader_that_stops_consuming_holds_at_most_its_cap") {
        return;
    }
    let pool = PoolConfig::new()
        .buffer_size(1024)
        .buffers(16)
        .max_buffers(16)
        .per_reader(2);
    let stats = run_pooled(pool, async |rt| {
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
        let other = spawn(async move { trickle(TcpStream::connect(addr).await?, sent, 2).await });
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
        let stats = run_pooled(config(pool), async |_| {
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
        let stats = run_pooled(config(pool), async |_| {
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
        let stats = run_pooled(pool, async |_| {
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
        let stats = run_pooled(pool, async |_| {
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

#[test]
fn a_line_spanning_buffers_is_joined_alone_and_the_rest_stays_in_the_pool() {
    if !pools_or_skip("a_line_spanning_buffers_is_joined_alone_and_the_rest_stays_in_the_pool") {
        return;
    }
    // 8-byte buffers, all bytes waiting before the first receive:
    // [abc\ndefg][hij\nkl\nm][n\n]. "defghij" spans the first two; only
    // "hij\n" of the second is joined to it, and "kl\nm" stays in its pool
    // buffer for the lines after.
    for (mode, config) in MODES {
        eprintln!("mode {mode}");
        let pool = config(PoolConfig::new().buffer_size(8).buffers(8));
        let stats = run_pooled(pool, async |_| {
            let (a, b) = uring_bufio::net::UnixStream::pair()?;
            let (res, _) = a
                .write_all(Bytes::from_static(b"abc\ndefghij\nkl\nmn\n"))
                .await;
            res?;
            drop(a);
            let mut r = BufReader::pooled(b);
            assert_eq!(r.next_line().await?, Some(&b"abc"[..]));
            assert_eq!(r.next_line().await?, Some(&b"defghij"[..]));
            assert!(
                r.buffer().is_empty(),
                "the joined line took {:?} of the next buffer with it",
                String::from_utf8_lossy(r.buffer())
            );
            assert_eq!(r.next_line().await?, Some(&b"kl"[..]));
            assert_eq!(r.next_line().await?, Some(&b"mn"[..]));
            assert_eq!(r.next_line().await?, None);
            Ok(())
        });
        assert_all_back(&stats);
    }
}
