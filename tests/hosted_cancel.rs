//! Hosted on tokio, futures dropped by `tokio::time::timeout`, `select!` and
//! after every number of polls lose nothing: `fill_buf`, `next_line`,
//! `write_all` and `flush` of our buffered streams over a TCP connection to
//! a tokio socket. Each test leaves the process with as many fds as before.

mod hosted_support;

use std::io;
use std::time::Duration;

use hosted_support::{attempt, fd_count, fd_lock, payload, run, yields};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uring_bufio::io::{BufReader, BufWriter};
use uring_bufio::net::{TcpListener, TcpStream};

/// Drops each test must have seen (most attempts are cut short).
const MIN_DROPS: usize = 50;

/// Runs `body` hosted under the fd lock; the fd count afterwards (the
/// runtime, `LocalSet` and driver gone) equals the count before.
fn fd_neutral<F, Fut>(body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = io::Result<()>>,
{
    let _lock = fd_lock();
    let before = fd_count();
    run(body);
    let mut after = fd_count();
    for _ in 0..100 {
        if after == before {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        after = fd_count();
    }
    assert_eq!(after, before, "fds open before vs after the test");
}

/// Our end (accepted by our listener) and tokio's end of a TCP connection,
/// with small socket buffers so that writes wait for the peer.
async fn pair() -> io::Result<(TcpStream, tokio::net::TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    let (peer, ours) = tokio::join!(socket.connect(addr), listener.accept());
    let ours = ours?.0.into_std()?;
    set_send_buffer(&ours, 4096)?;
    Ok((TcpStream::from_std(ours), peer?))
}

/// Sets `SO_SNDBUF` of `socket`.
fn set_send_buffer(socket: &std::net::TcpStream, size: libc::c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `size` is a valid c_int for the duration of the call and the
    // length passed is its size; the fd is open (borrowed from `socket`).
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Writes `data` in uneven chunks, going back to tokio (and now and then
/// sleeping on its timer) between them, then shuts the write side down.
async fn trickle(mut peer: tokio::net::TcpStream, data: Vec<u8>) -> io::Result<()> {
    let mut sent = 0;
    let mut i = 0usize;
    while sent < data.len() {
        let n = (1 + (i * 7919) % 3000).min(data.len() - sent);
        peer.write_all(&data[sent..sent + n]).await?;
        sent += n;
        i += 1;
        if i.is_multiple_of(4) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        } else {
            yields(i % 3).await;
        }
    }
    peer.shutdown().await
}

/// Reads everything in small pieces, going back to tokio between them.
async fn drain_slowly(mut peer: tokio::net::TcpStream) -> io::Result<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1500];
    loop {
        let n = peer.read(&mut buf).await?;
        if n == 0 {
            return Ok(got);
        }
        got.extend_from_slice(&buf[..n]);
        yields(got.len() % 3).await;
    }
}

/// `fill_buf` cut short at every poll point: the bytes read come out once,
/// in order, and the stream's end is seen.
#[test]
fn fill_buf_dropped_at_every_poll_point_loses_nothing() {
    fd_neutral(|| async {
        let (ours, peer) = pair().await?;
        let data = payload(300_000);
        let writer = tokio::task::spawn_local(trickle(peer, data.clone()));
        let mut r = BufReader::with_capacity(4096, ours);
        let (mut got, mut drops) = (Vec::new(), 0);
        for round in 0.. {
            let Some(res) = attempt(r.fill_buf(), round).await else {
                drops += 1;
                continue;
            };
            let buf = res?;
            if buf.is_empty() {
                break;
            }
            // Mostly all (the next call then waits for the peer), now and
            // then a part.
            let n = if round.is_multiple_of(4) {
                buf.len().min(200)
            } else {
                buf.len()
            };
            got.extend_from_slice(&buf[..n]);
            r.consume(n);
        }
        writer.await.map_err(io::Error::other)??;
        assert!(got == data, "bytes lost, doubled or reordered");
        assert!(
            drops >= MIN_DROPS,
            "only {drops} fill_buf calls were dropped"
        );
        Ok(())
    });
}

/// `next_line` cut short at every poll point: every line exactly once.
#[test]
fn next_line_dropped_at_every_poll_point_loses_nothing() {
    fd_neutral(|| async {
        let (ours, peer) = pair().await?;
        let lines: Vec<String> = (0..4000)
            .map(|i| format!("{i}:{}", "x".repeat((i * 131) % 500)))
            .collect();
        let text = lines.iter().flat_map(|l| [l.as_bytes(), b"\n"]).flatten();
        let writer = tokio::task::spawn_local(trickle(peer, text.copied().collect()));
        let mut r = BufReader::with_capacity(1024, ours);
        let (mut got, mut drops) = (Vec::new(), 0);
        for round in 0.. {
            let Some(res) = attempt(r.next_line(), round).await else {
                drops += 1;
                continue;
            };
            match res? {
                Some(line) => got.push(String::from_utf8(line.to_vec()).map_err(io::Error::other)?),
                None => break,
            }
        }
        writer.await.map_err(io::Error::other)??;
        assert!(got == lines, "lines lost, doubled or reordered");
        assert!(
            drops >= MIN_DROPS,
            "only {drops} next_line calls were dropped"
        );
        Ok(())
    });
}

/// `write_all` and `flush` cut short at every poll point: a dropped
/// `write_all` copied nothing in (the record is written again), a dropped
/// `flush` is called again; the peer receives every record exactly once.
#[test]
fn write_all_and_flush_dropped_at_every_poll_point_lose_nothing() {
    fd_neutral(|| async {
        let (ours, peer) = pair().await?;
        let reader = tokio::task::spawn_local(drain_slowly(peer));
        let mut w = BufWriter::with_capacity(1024, ours);
        let (mut sent, mut drops, mut round) = (Vec::new(), (0, 0), 0);
        for i in 0..3000usize {
            let record = payload(1 + (i * 7919) % 2500);
            loop {
                round += 1;
                match attempt(w.write_all(&record), round).await {
                    Some(res) => break res?,
                    None => drops.0 += 1,
                }
            }
            sent.extend_from_slice(&record);
            if i.is_multiple_of(5) {
                loop {
                    round += 1;
                    match attempt(w.flush(), round).await {
                        Some(res) => break res?,
                        None => drops.1 += 1,
                    }
                }
            }
        }
        w.shutdown().await?;
        let got = reader.await.map_err(io::Error::other)??;
        assert!(got == sent, "bytes lost, doubled or reordered");
        assert!(
            drops.0 >= MIN_DROPS,
            "only {} write_all calls dropped",
            drops.0
        );
        assert!(drops.1 >= MIN_DROPS, "only {} flush calls dropped", drops.1);
        Ok(())
    });
}
