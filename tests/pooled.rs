//! `BufReader::pooled`: receives into buffers the kernel picks from the
//! runtime's pool, on real loopback TCP and Unix sockets. Runs on io_uring
//! (provided buffer ring, multishot receive; every kernel mode) and, under
//! `URING_BUFIO_DRIVER=epoll`, on the epoll fallback (user-space pool).
//! Every test checks the bytes against what was sent and that every pool
//! buffer is back at the end. The pool under pressure (running dry,
//! caps, growth, tiny buffers) is in `tests/pooled_pressure.rs`.

mod support;

use std::io;
use std::time::Duration;

use bytes::Bytes;
use support::pool::pool_supported;
use support::pooled::{MODES, assert_all_back, pools_or_skip, run_pooled, unix_sending};
use support::{Rng, bounded};
use uring_bufio::io::{BufReader, BufStream, BufWriter};
use uring_bufio::net::{TcpListener, TcpStream, UnixStream};
use uring_bufio::time::{sleep, timeout};
use uring_bufio::{PoolConfig, PoolStats, spawn};

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
    run_pooled(pool, async |rt| {
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
        assert_eq!(r.is_pooled(), pool_supported(rt));
        assert_eq!(got.len(), lines.len());
        assert!(got == lines, "lines differ");
        writer.await.expect("writer task")?;
        Ok(())
    })
}

#[test]
fn idle_readers_hold_no_buffers() {
    if !pools_or_skip("idle_readers_hold_no_buffers") {
        return;
    }
    let pool = PoolConfig::new().buffer_size(4096).buffers(8);
    let stats = run_pooled(pool, async |rt| {
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
        Ok(())
    });
    assert_all_back(&stats);
}

#[test]
fn unix_socket_lines_and_end_of_stream() {
    let stats = run_pooled(PoolConfig::new().buffer_size(64).buffers(4), async |rt| {
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
        assert_eq!(r.is_pooled(), pool_supported(rt));
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
    let stats = run_pooled(PoolConfig::new().buffer_size(256).buffers(4), async |_| {
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
    let stats = run_pooled(pool, async |rt| {
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
        let stats = rt.pool_stats().unwrap_or_default();
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
        Ok(())
    });
    assert_all_back(&stats);
}

#[test]
fn bundles_fill_several_buffers_per_completion() {
    let pool = PoolConfig::new()
        .buffer_size(1024)
        .buffers(64)
        .incremental(false);
    let stats = run_pooled(pool, async |_| {
        let (b, writer, data) = unix_sending(9, 200_000)?;
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
        Ok(())
    });
    if stats.bundles {
        assert!(
            stats.bundled > 0,
            "no completion filled two buffers: {stats:?}"
        );
    } else {
        eprintln!("bundles not in use here: checked the bytes only");
    }
    assert_all_back(&stats);
}

/// Needs the test-only fault plan: `cargo test --features fault-injection`.
#[cfg(feature = "fault-injection")]
mod refused {
    use super::*;
    use support::pooled::{LIMIT, assert_all_back_in};
    use support::within;
    use uring_bufio::Runtime;

    #[test]
    fn refused_submissions_are_retried_without_losing_bytes() {
        // Without a pool the reader reads the ordinary way (faults.rs).
        if !pools_or_skip("refused_submissions_are_retried_without_losing_bytes") {
            return;
        }
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
                    let (b, writer, data) = unix_sending(3, 100_000)?;
                    let mut r = BufReader::pooled(b);
                    let mut got = Vec::new();
                    bounded("read_to_end", r.read_to_end(&mut got)).await?;
                    assert!(got == data, "bytes differ");
                    writer.await.expect("task")?;
                    drop(r);
                    assert_all_back_in(&rt);
                    Ok::<_, io::Error>(())
                })
                .expect("test failed");
                let refused = rt.fault_stats().submit_errors;
                assert!(refused > 10, "only {refused} submissions refused");
            });
        }
    }
}

#[test]
fn buf_stream_pooled_echoes_and_a_file_reads_the_ordinary_way() {
    let stats = run_pooled(PoolConfig::new().buffer_size(128).buffers(4), async |rt| {
        let (a, b) = UnixStream::pair()?;
        let pools = pool_supported(rt);
        let echo = spawn(async move {
            let mut s = BufStream::pooled_with_capacity(256, b);
            while let Some(line) = s.reader().next_line().await? {
                let reply = line.to_ascii_uppercase();
                s.write_all(&reply).await?;
                s.write_all(b"\n").await?;
            }
            assert_eq!(s.reader().is_pooled(), pools);
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
