//! Drop safety of whole writers and of both directions: a `BufWriter`
//! dropped (or its task aborted) with a write in flight and bytes buffered
//! still delivers exactly what it accepted; a writer whose peer is gone
//! fails without a panic and hands back what it could not write; a
//! `BufStream` whose calls are dropped after k polls talks to an echo peer
//! without losing a line. On io_uring and, with `URING_BUFIO_DRIVER=epoll`,
//! on epoll. The tool is in `support/dropping.rs`.

mod support;

use std::cell::Cell;
use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::Rng;
use support::dropping::{
    Dropper, LIMIT, Peer, Tally, assert_same, binary_payload, drain_slowly, poll_k_then_drop,
    poll_k_then_drop_with, run_test, runtime_still_works, small_socket_buffers, text_payload,
};
use uring_bufio::io::{BufReader, BufStream, BufWriter};
use uring_bufio::net::{TcpStream, UnixStream};
use uring_bufio::time::{sleep, timeout};
use uring_bufio::{Runtime, WriteSink, spawn};

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
