//! Read and write deadlines (`set_read_timeout`, `set_read_deadline`,
//! `set_write_timeout`, `set_write_deadline`) against real TCP peers on
//! 127.0.0.1, with plain and pooled readers, on io_uring and, with
//! `URING_BUFIO_DRIVER=epoll`, on epoll.
//!
//! No test depends on how fast the machine is: where a deadline and data
//! race, either outcome is accepted and what is checked is that no byte is
//! lost, duplicated or reordered and that the stream works afterwards.

mod support;

use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use support::pool::{Mode, run_mode};
use support::{fd_count, read_exact, tcp_pair};
use uring_bufio::io::{BufStream, BufWriter};
use uring_bufio::net::TcpStream;
use uring_bufio::spawn;
use uring_bufio::time::sleep;

/// Limit of a whole test body: only a hang reaches it.
const LIMIT: Duration = Duration::from_secs(30);

/// The reader modes every read test runs in.
const MODES: [Mode; 3] = [Mode::Plain, Mode::Pooled(64), Mode::PooledWhole(64)];

/// Serializes the tests of this file: the leak test counts the process's
/// fds, which tests running alongside would change.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Takes the [`SERIAL`] lock (also after another test failed holding it).
fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether `e` is the deadline's `TimedOut`.
fn timed_out(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TimedOut
}

/// Sends `data` one byte at a time, `pause` apart, then shuts writing.
async fn trickle(peer: TcpStream, data: Vec<u8>, pause: Duration) -> io::Result<()> {
    for b in data {
        sleep(pause).await;
        peer.write_all(vec![b]).await.0?;
    }
    peer.shutdown(std::net::Shutdown::Write).await
}

/// A peer trickling one byte per 100 ms meets the whole-request deadline,
/// though the idle limit (5 s, restarted by every byte) alone would never
/// fire: the rest of the bytes then arrive with the deadline removed, none
/// lost.
#[test]
fn trickling_peer_meets_the_request_deadline() {
    let _serial = serial();
    for mode in MODES {
        run_mode(mode, LIMIT, async move {
            let (client, server) = tcp_pair().await;
            let data: Vec<u8> = (b'a'..=b't').collect();
            let peer = spawn(trickle(client, data.clone(), Duration::from_millis(100)));
            let mut r = mode.reader(server, Some(64));
            r.set_read_timeout(Some(Duration::from_secs(5)))?;
            r.set_read_deadline(Some(Instant::now() + Duration::from_millis(350)));
            let mut got = Vec::new();
            let err = loop {
                match r.fill_buf().await {
                    Ok([]) => panic!("{mode:?}: end of stream before the deadline"),
                    Ok(b) => {
                        let n = b.len();
                        got.extend_from_slice(b);
                        r.consume(n);
                    }
                    Err(e) => break e,
                }
            };
            assert!(timed_out(&err), "{mode:?}: {err}");
            assert!(err.to_string().contains("deadline"), "{err}");
            assert!(got.len() < data.len(), "{mode:?}: all bytes before 350 ms");
            // The idle limit alone lets the trickle finish.
            r.set_read_deadline(None);
            loop {
                let b = r.fill_buf().await?;
                if b.is_empty() {
                    break;
                }
                let n = b.len();
                got.extend_from_slice(b);
                r.consume(n);
            }
            assert_eq!(got, data, "{mode:?}: bytes lost or reordered");
            peer.await?
        });
    }
}

/// The idle limit fires when nothing arrives, with its own message, and
/// the reader reads on after it.
#[test]
fn idle_limit_fires_and_the_reader_reads_on() {
    let _serial = serial();
    for mode in MODES {
        run_mode(mode, LIMIT, async move {
            let (client, server) = tcp_pair().await;
            let mut r = mode.reader(server, None);
            r.set_read_timeout(Some(Duration::from_millis(30)))?;
            for _ in 0..3 {
                let err = r.next_line().await.unwrap_err();
                assert!(timed_out(&err), "{err}");
                assert!(err.to_string().contains("idle limit"), "{err}");
            }
            client.write_all(&b"after\n"[..]).await.0?;
            assert_eq!(r.next_line().await?, Some(&b"after"[..]));
            assert!(r.set_read_timeout(Some(Duration::ZERO)).is_err());
            Ok(())
        });
    }
}

/// A line of which the first `k` bytes arrive before the idle limit and
/// the rest right at it (the peer sleeps as long as the limit): for every
/// byte boundary, either the call returns the whole line or it times out
/// and the next call does; the line is never cut, lost or doubled.
#[test]
fn bytes_arriving_at_the_deadline_are_returned_by_the_next_call() {
    let _serial = serial();
    let line = b"hello, deadline\n";
    for mode in MODES {
        run_mode(mode, LIMIT, async move {
            let (client, server) = tcp_pair().await;
            let mut r = mode.reader(server, Some(8));
            let limit = Duration::from_millis(15);
            for k in 0..line.len() {
                for (i, pause) in [Duration::ZERO, limit].into_iter().enumerate() {
                    client.write_all(line[..k].to_vec()).await.0?;
                    let rest = line[k..].to_vec();
                    r.set_read_timeout(Some(limit))?;
                    let (send, got) = (&client, r.next_line());
                    let (sent, got) = futures_join(
                        async move {
                            sleep(pause).await;
                            send.write_all(rest).await.0
                        },
                        got,
                    )
                    .await;
                    sent?;
                    let got = got.map(|l| l.map(<[u8]>::to_vec));
                    let whole = match got {
                        Ok(Some(l)) => l,
                        Err(e) if timed_out(&e) => {
                            r.set_read_timeout(None)?;
                            r.next_line().await?.expect("the line").to_vec()
                        }
                        other => panic!("{mode:?} k={k} run {i}: {other:?}"),
                    };
                    assert_eq!(whole, &line[..line.len() - 1], "{mode:?} k={k} run {i}");
                }
            }
            Ok(())
        });
    }
}

/// Polls both futures to completion, concurrently, on the current task.
async fn futures_join<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    let (mut a, mut b) = (Box::pin(a), Box::pin(b));
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none()
            && let std::task::Poll::Ready(v) = a.as_mut().poll(cx)
        {
            ra = Some(v);
        }
        if rb.is_none()
            && let std::task::Poll::Ready(v) = b.as_mut().poll(cx)
        {
            rb = Some(v);
        }
        if ra.is_some() && rb.is_some() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    (
        ra.expect("polled to the end"),
        rb.expect("polled to the end"),
    )
}

/// Bytes of chunk `i` of the write test: a pattern whose every position
/// is checked by the reader.
fn chunk(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
}

/// A peer that stops reading meets the write deadline (the socket buffers
/// fill up); nothing accepted is lost: once the peer reads again, a flush
/// without deadline delivers exactly what `write_all` accepted.
#[test]
fn peer_that_stops_reading_meets_the_write_deadline() {
    let _serial = serial();
    run_mode(Mode::Plain, LIMIT, async {
        let (client, server) = tcp_pair().await;
        support::dropping::small_socket_buffers(client.as_raw_fd());
        support::dropping::small_socket_buffers(server.as_raw_fd());
        let mut w = BufWriter::with_capacity(4096, server);
        w.set_write_deadline(Some(Instant::now() + Duration::from_millis(200)));
        let mut sent = Vec::new();
        let err = loop {
            let c = chunk(sent.len(), 1000);
            match w.write_all(&c).await {
                Ok(()) => sent.extend_from_slice(&c),
                Err(e) => break e,
            }
        };
        assert!(timed_out(&err), "{err}");
        assert!(err.to_string().contains("write deadline"), "{err}");
        // Write-behind still draining is under the deadline too.
        let err = w.flush().await.unwrap_err();
        assert!(timed_out(&err), "flush: {err}");
        w.set_write_deadline(None);
        w.set_write_timeout(Some(Duration::from_secs(5)))?;
        let reader = spawn(async move { read_exact(&client, sent.len()).await.map(|b| (b, sent)) });
        w.flush().await?;
        let (got, sent) = reader.await??;
        assert_eq!(&got[..], &sent[..], "bytes lost or reordered");
        Ok(())
    });
}

/// A `BufStream` with both deadlines set works as an echo after each has
/// fired.
#[test]
fn stream_is_usable_after_timed_out() {
    let _serial = serial();
    for mode in [Mode::Plain, Mode::Pooled(64)] {
        run_mode(mode, LIMIT, async move {
            let (client, server) = tcp_pair().await;
            let mut s = if mode.is_pooled() {
                BufStream::pooled(server)
            } else {
                BufStream::new(server)
            };
            s.set_read_timeout(Some(Duration::from_millis(20)))?;
            s.set_write_deadline(Some(Instant::now() + Duration::from_secs(20)));
            assert_eq!(s.read_timeout(), Some(Duration::from_millis(20)));
            assert!(s.write_deadline().is_some() && s.write_timeout().is_none());
            for round in 0..5u8 {
                let err = s.next_line().await.unwrap_err();
                assert!(timed_out(&err), "{err}");
                client.write_all(vec![b'0' + round, b'\n']).await.0?;
                let line = s.next_line().await?.expect("a line").to_vec();
                s.write_all(&line).await?;
                s.flush().await?;
                assert_eq!(&read_exact(&client, 1).await?[..], &[b'0' + round]);
            }
            Ok(())
        });
    }
}

/// Readers and writers dropped while their calls wait under deadlines, and
/// with their timers armed, leave no fd behind; under the fault plan, the
/// quarantine sees no buffer written after its release.
#[test]
fn dropped_calls_with_deadlines_leak_nothing() {
    let _serial = serial();
    let before = fd_count();
    for mode in MODES {
        run_mode(mode, LIMIT, async move {
            for i in 0..50u32 {
                let (client, server) = tcp_pair().await;
                let mut r = mode.reader(server, None);
                r.set_read_timeout(Some(Duration::from_millis(1 + u64::from(i % 5))))?;
                r.set_read_deadline(Some(Instant::now() + Duration::from_secs(60)));
                let mut call = Box::pin(r.fill_buf());
                let _ = support::poll_once(&mut call).await;
                drop(call);
                if i % 2 == 0 {
                    let _ = r.fill_buf().await;
                }
                let _ = client.write_all(vec![7u8; 100]).await;
                drop(r);
            }
            Ok(())
        });
    }
    // Every runtime is gone: what the readers held is closed by now.
    assert_eq!(fd_count(), before, "fds leaked");
}

#[cfg(feature = "fault-injection")]
mod faults {
    //! The same race under the fault plan: one-byte transfers and EINTR
    //! completions, with the quarantine checking released buffers.

    use super::*;
    use uring_bufio::Runtime;
    use uring_bufio::faults::{FaultPlan, quarantine_report};

    /// Lines trickled in one-byte receives (some failing with EINTR, which
    /// is retried) under a tight idle limit: every call either returns a
    /// whole line or times out, and every line arrives exactly once.
    #[test]
    fn deadlines_under_faults_lose_nothing() {
        let _serial = serial();
        let (bad_before, _) = quarantine_report();
        for seed in 1..4u64 {
            let rt = Runtime::builder()
                .faults(FaultPlan::new(seed).max_io(1).error(libc::EINTR, 0.2))
                .build()
                .expect("runtime");
            support::run_on(&rt, LIMIT, async move {
                let (client, server) = tcp_pair().await;
                let mut w = BufWriter::with_capacity(3, client);
                w.set_write_timeout(Some(Duration::from_secs(5)))?;
                let lines: Vec<Vec<u8>> = (0..20)
                    .map(|i| format!("line {i}\n").into_bytes())
                    .collect();
                let all = lines.concat();
                let writer = spawn(async move {
                    for piece in all.chunks(3) {
                        w.write_all(piece).await?;
                        w.flush().await?;
                        sleep(Duration::from_millis(1)).await;
                    }
                    w.shutdown().await
                });
                let mut r = uring_bufio::io::BufReader::with_capacity(16, server);
                r.set_read_timeout(Some(Duration::from_millis(2)))?;
                let (mut got, mut timeouts) = (Vec::new(), 0);
                loop {
                    match r.next_line().await {
                        Ok(Some(l)) => got.push([l, b"\n"].concat()),
                        Ok(None) => break,
                        Err(e) if timed_out(&e) => timeouts += 1,
                        Err(e) => return Err(e),
                    }
                }
                eprintln!("seed {seed}: {timeouts} timeouts");
                assert_eq!(got, lines, "seed {seed}");
                writer.await?
            });
        }
        assert_eq!(
            quarantine_report().0,
            bad_before,
            "bytes written after release"
        );
    }

    /// Reads dropped while they wait under deadlines, then their readers
    /// dropped with the receive and the timer in flight, while the peer
    /// writes: the quarantine finds no released buffer written.
    #[test]
    fn dropped_calls_under_quarantine() {
        let _serial = serial();
        let (bad_before, checked_before) = quarantine_report();
        let rt = Runtime::builder()
            .faults(FaultPlan::new(9))
            .build()
            .expect("runtime");
        support::run_on(&rt, LIMIT, async {
            let mut keep = Vec::new();
            for i in 0..100u64 {
                let (client, server) = tcp_pair().await;
                let mut r = uring_bufio::io::BufReader::with_capacity(512, server);
                r.set_read_timeout(Some(Duration::from_millis(1 + i % 3)))?;
                let _ = r.fill_buf().await; // times out, receive stays armed
                let mut call = Box::pin(r.fill_buf());
                let _ = support::poll_once(&mut call).await;
                drop(call);
                drop(r);
                let _ = client.write_all(vec![0x5Au8; 300]).await;
                keep.push(client);
            }
            sleep(Duration::from_millis(20)).await;
            Ok(())
        });
        drop(rt);
        let (bad, checked) = quarantine_report();
        assert!(checked > checked_before, "the quarantine checked nothing");
        assert_eq!(bad, bad_before, "bytes written after release");
    }
}

#[cfg(feature = "hosted")]
mod hosted_support;

/// Hosted on a tokio runtime that has no time driver at all: the deadline's
/// timer is our own driver's (a kernel timeout on the thread's ring, or
/// the epoll backend's timer), so it fires, the reader reads on after it,
/// and the timer left armed is released at shutdown (nothing leaked).
#[cfg(feature = "hosted")]
#[test]
fn deadlines_work_hosted_without_tokio_timers() {
    let _serial = serial();
    hosted_support::within(LIMIT, || {
        let h = hosted_support::Hosted::bare();
        h.block_on(async {
            let (ours, mut peer) = std::os::unix::net::UnixStream::pair()?;
            let mut r =
                uring_bufio::io::BufReader::new(uring_bufio::net::UnixStream::from_std(ours));
            r.set_read_timeout(Some(Duration::from_millis(20)))?;
            let err = r.fill_buf().await.unwrap_err();
            assert!(timed_out(&err), "{err}");
            std::io::Write::write_all(&mut peer, b"late")?;
            assert_eq!(r.fill_buf().await?, b"late");
            r.set_read_deadline(Some(Instant::now() + Duration::from_secs(60)));
            r.consume(4);
            let mut call = Box::pin(r.fill_buf());
            let _ = support::poll_once(&mut call).await;
            Ok(())
        });
        h.finish();
    });
}
