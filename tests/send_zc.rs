//! `BufWriter::write_bytes`: owned buffers sent after the buffered bytes,
//! with `IORING_OP_SEND_ZC` where the runtime has it (plain sends on epoll
//! and on Unix sockets); the buffer is kept until the kernel's
//! notification however early the writer goes away; a dropped send
//! poisons the writer or leaves it untouched.
//!
//! The zero-copy counters are per process, so every test holds [`LOCK`].

mod support;

use std::io;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use uring_bufio::io::{BufWriter, zero_copy_usage};
use uring_bufio::net::{TcpStream, UnixStream};
use uring_bufio::time::sleep;
use uring_bufio::{Capability, Runtime, spawn};

use support::dropping::{Peer, poll_k_then_drop_with};
use support::{TEST_LIMIT, fd_count, run_on, settle_fd_count};

/// Held by every test: the usage counters and fd counts are per process.
static LOCK: Mutex<()> = Mutex::new(());

/// Takes [`LOCK`] (a failed test poisons it; the others still run).
fn lock() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// `len` bytes that differ from offset to offset and from seed to seed.
fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i / 251) as u8 ^ (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

/// Reads `peer` to end of stream.
async fn receive_all<S: Peer>(peer: S) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let (res, buf) = peer.recv(BytesMut::with_capacity(256 * 1024)).await;
        if res? == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf);
    }
}

/// head (buffered), `body` by `write_bytes`, tail, shutdown: the peer
/// reads exactly head + body + tail.
async fn transfer<S: Peer>(body: Vec<u8>) -> io::Result<()> {
    let (mine, theirs) = S::pair().await;
    let reader = spawn(receive_all(theirs));
    let mut w = BufWriter::new(mine);
    w.write_all(b"head:").await?;
    let want = [b"head:".as_slice(), &body, b":tail"].concat();
    w.write_bytes(Bytes::from(body)).await?;
    w.write_all(b":tail").await?;
    w.shutdown().await?;
    let got = reader.await.expect("reader")?;
    assert!(
        got == want,
        "{} bytes received, {} sent",
        got.len(),
        want.len()
    );
    Ok(())
}

/// Sizes around pages and segments, up to 16 MiB, over TCP and Unix.
#[test]
fn bytes_arrive_after_the_buffered_ones() {
    let _g = lock();
    let rt = Runtime::new().expect("runtime");
    let before = zero_copy_usage();
    run_on(&rt, TEST_LIMIT, async {
        for len in [1, 4095, 4096, 65_537, 1 << 20, 16 << 20] {
            transfer::<TcpStream>(payload(len, 1)).await?;
            transfer::<UnixStream>(payload(len, 2)).await?;
        }
        Ok(())
    });
    let after = zero_copy_usage();
    let (n, copied) = (
        after.notifications - before.notifications,
        after.copied - before.copied,
    );
    eprintln!("zero-copy notifications: {n}, of which the kernel copied: {copied}");
    if rt.has(Capability::SendZc) {
        // 65_537, 1 MiB and 16 MiB reach the default 16 KiB threshold.
        assert!(
            n >= 3,
            "one notification per zero-copy send over TCP at least: {n}"
        );
    } else {
        assert_eq!(n, 0, "no zero-copy send without the capability");
    }
}

/// Notifications seen since `before`, after waiting (up to a second of
/// runtime ticks) for at least `want` of them.
async fn notifications_since(before: u64, want: u64) -> u64 {
    for _ in 0..1000 {
        if zero_copy_usage().notifications - before >= want {
            break;
        }
        sleep(Duration::from_millis(1)).await;
    }
    zero_copy_usage().notifications - before
}

/// `Builder::zero_copy_threshold`: over TCP, buffers below the threshold
/// and every buffer with `None` go out as plain sends (no notification),
/// buffers at or above it zero-copy where the runtime has the capability;
/// the peer reads the same bytes either way.
#[test]
fn threshold_decides_zero_copy() {
    let _g = lock();
    for (threshold, len, zc_wanted) in [
        (Some(64 * 1024), 1, false),
        (Some(64 * 1024), 64 * 1024 - 1, false),
        (None, 4 << 20, false),
        (Some(usize::MAX), 4 << 20, false),
        (Some(64 * 1024), 64 * 1024, true),
        (Some(64 * 1024), 4 << 20, true),
        (Some(0), 1, true),
    ] {
        let rt = Runtime::builder()
            .zero_copy_threshold(threshold)
            .build()
            .expect("runtime");
        let zc = zc_wanted && rt.has(Capability::SendZc);
        let seen = run_on(&rt, TEST_LIMIT, async {
            let before = zero_copy_usage().notifications;
            transfer::<TcpStream>(payload(len, 5)).await?;
            Ok(notifications_since(before, u64::from(zc)).await)
        });
        if zc {
            assert!(seen >= 1, "{threshold:?}, {len} bytes: no zero-copy send");
        } else {
            assert_eq!(seen, 0, "{threshold:?}, {len} bytes: a zero-copy send");
        }
    }
}

/// A `Bytes` owner that records, when it is freed, how many notifications
/// the process had seen.
struct Tracked {
    /// The bytes.
    data: Vec<u8>,
    /// Set when dropped.
    freed: Arc<AtomicBool>,
    /// `zero_copy_usage().notifications` at the drop.
    seen: Arc<AtomicU64>,
}

impl AsRef<[u8]> for Tracked {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.seen
            .store(zero_copy_usage().notifications, Ordering::SeqCst);
        self.freed.store(true, Ordering::SeqCst);
    }
}

/// The writer is dropped right after a zero-copy send returned (and, in
/// a second round, while it is still in flight): the buffer is freed only
/// after its notification arrived, the peer gets a prefix of the bytes,
/// fds settle, and the fault-injection quarantine found nothing written
/// after release.
#[test]
fn buffer_outlives_a_dropped_writer_until_the_notification() {
    let _g = lock();
    let rt = runtime_with_short_sends();
    let zc = rt.has(Capability::SendZc);
    run_on(&rt, TEST_LIMIT, async {
        for polls in [None, Some(1), Some(2)] {
            let before_fds = fd_count();
            let (mine, theirs) = <TcpStream as Peer>::pair().await;
            let body = payload(4 << 20, 3);
            let (freed, seen) = (
                Arc::new(AtomicBool::new(false)),
                Arc::new(AtomicU64::new(0)),
            );
            let owner = Tracked {
                data: body.clone(),
                freed: freed.clone(),
                seen: seen.clone(),
            };
            let before = zero_copy_usage().notifications;
            let reader = spawn(receive_all(theirs));
            let mut w = BufWriter::new(mine);
            let send = w.write_bytes(Bytes::from_owner(owner));
            match polls {
                None => send.await?,
                Some(k) => drop(poll_k_then_drop_with(send, k, u64::MAX).await),
            }
            drop(w);
            let got = reader.await.expect("reader")?;
            assert_eq!(got, body[..got.len()], "{polls:?}: not a prefix");
            for _ in 0..1000 {
                if freed.load(Ordering::SeqCst) {
                    break;
                }
                sleep(Duration::from_millis(1)).await;
            }
            assert!(
                freed.load(Ordering::SeqCst),
                "{polls:?}: the buffer was never freed"
            );
            if zc && !got.is_empty() {
                let at_free = seen.load(Ordering::SeqCst);
                assert!(at_free > before, "{polls:?}: freed before any notification");
            }
            assert_eq!(
                settle_fd_count(before_fds, Duration::from_secs(5)).await,
                before_fds
            );
        }
        Ok(())
    });
    #[cfg(feature = "fault-injection")]
    {
        let (violations, checked) = uring_bufio::faults::quarantine_report();
        eprintln!("quarantine: {violations} violations in {checked} buffers");
        assert_eq!(violations, 0);
    }
}

/// With fault injection, a runtime whose sends are often short (and whose
/// quarantine watches released buffers); else a plain runtime.
fn runtime_with_short_sends() -> Runtime {
    #[cfg(feature = "fault-injection")]
    let rt = Runtime::builder()
        .faults(uring_bufio::faults::FaultPlan::new(11).short_io(0.5))
        .build();
    #[cfg(not(feature = "fault-injection"))]
    let rt = Runtime::new();
    rt.expect("runtime")
}

/// A `write_bytes` dropped after 1..=12 polls (one runtime tick apart, the
/// peer reading nothing until then): the writer is untouched (the peer
/// reads head + tail) or poisoned (head + a prefix of the body).
#[test]
fn dropped_write_bytes_poisons_or_leaves_untouched() {
    let _g = lock();
    let rt = Runtime::new().expect("runtime");
    let (mut untouched, mut poisoned) = (0, 0);
    run_on(&rt, TEST_LIMIT, async {
        for k in 1..=12 {
            let (mine, theirs) = <TcpStream as Peer>::pair().await;
            let body = payload(8 << 20, 4);
            let mut w = BufWriter::new(mine);
            w.write_all(b"head").await?;
            let send = w.write_bytes(Bytes::from(body.clone()));
            if poll_k_then_drop_with(send, k, u64::MAX).await.is_some() {
                continue;
            }
            let reader = spawn(receive_all(theirs));
            let more = w.write_all(b"tail").await;
            if more.is_ok() {
                w.shutdown().await?;
            }
            drop(w);
            let got = reader.await.expect("reader")?;
            let rest = &got[4..];
            match more {
                Ok(()) => {
                    untouched += 1;
                    assert_eq!(rest, b"tail", "k={k}");
                }
                Err(e) => {
                    poisoned += 1;
                    assert!(e.to_string().contains("stream is short"), "{e}");
                    assert!(
                        rest.len() < body.len() && rest == &body[..rest.len()],
                        "k={k}"
                    );
                }
            }
        }
        Ok(())
    });
    eprintln!("dropped write_bytes: untouched {untouched}, poisoned {poisoned}");
    assert!(poisoned > 0, "no round dropped a send part way");
}
