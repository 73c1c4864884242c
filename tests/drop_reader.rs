//! Drop safety of whole `BufReader`s, ordinary and pooled: a reader
//! dropped, or taken apart with `into_inner`, while its read is queued,
//! waiting in the kernel or completed and not collected; and calls with one
//! delimiter dropped before a call with another (regressions, each with the
//! poll order that broke). Pooled tests end with every pool buffer back. On
//! io_uring and, with `URING_BUFIO_DRIVER=epoll`, on epoll. The
//! per-method matrix is in `tests/drop_safety.rs`.

mod support;

use std::net::Shutdown;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use support::dropping::{Peer, poll_k_then_drop, run_test, run_test_in};
use support::pool::Mode;
use uring_bufio::io::BufReader;
use uring_bufio::net::{TcpStream, UnixStream};
use uring_bufio::spawn;
use uring_bufio::time::sleep;

/// Where the read in flight is when its reader goes away.
#[derive(Debug, Clone, Copy)]
enum ReadStage {
    /// Queued, not yet submitted to the kernel.
    Queued,
    /// Submitted, waiting for data.
    Waiting,
    /// Completed by the kernel, result not yet collected.
    Completed,
}

/// Starts a read in flight on `r` and brings it to `stage` (for `Completed`,
/// `peer` sends `b"lost"` and the completion is left uncollected).
async fn read_in_flight<S: Peer>(r: &mut BufReader<S>, peer: &S, stage: ReadStage) {
    assert!(
        poll_k_then_drop(r.fill_buf(), 1).await.is_none(),
        "nothing was sent, fill_buf cannot finish"
    );
    match stage {
        ReadStage::Queued => {}
        ReadStage::Waiting => sleep(Duration::from_millis(5)).await,
        ReadStage::Completed => {
            peer.send(Bytes::from_static(b"lost"))
                .await
                .0
                .expect("send");
            sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Drops a `BufReader` whose read is queued, waiting in the kernel, or
/// completed but not collected: no panic, the socket is closed exactly once
/// (the peer reads end of stream once the kernel gave the read back), and a
/// new reader on a new socket of the same runtime reads normally.
async fn drop_reader_with_read_in_flight<S: Peer>(mode: Mode) {
    for stage in [ReadStage::Queued, ReadStage::Waiting, ReadStage::Completed] {
        let (near, far) = S::pair().await;
        let mut r = mode.reader(near, Some(64));
        read_in_flight(&mut r, &far, stage).await;
        drop(r);
        let (res, _) = far.recv(BytesMut::with_capacity(16)).await;
        assert_eq!(res.expect("peer read"), 0, "{stage:?}: peer sees the close");

        let (near, far) = S::pair().await;
        let mut r = mode.reader(near, Some(64));
        far.send(Bytes::from_static(b"fresh\n"))
            .await
            .0
            .expect("send");
        assert_eq!(r.next_line().await.expect("next_line"), Some(&b"fresh"[..]));
    }
}

/// `BufReader` dropped with a read in flight, at every stage of that read.
#[test]
fn reader_dropped_with_read_in_flight() {
    run_test("reader_dropped_with_read_in_flight", async {
        drop_reader_with_read_in_flight::<UnixStream>(Mode::Plain).await;
        drop_reader_with_read_in_flight::<TcpStream>(Mode::Plain).await;
    });
}

/// A pooled `BufReader` dropped with its receive in flight, at every stage:
/// a buffer the kernel filled for it goes back to the pool.
#[test]
fn pooled_reader_dropped_with_read_in_flight() {
    let mode = Mode::Pooled(64);
    run_test_in(
        mode,
        "pooled_reader_dropped_with_read_in_flight",
        async move {
            drop_reader_with_read_in_flight::<UnixStream>(mode).await;
            drop_reader_with_read_in_flight::<TcpStream>(mode).await;
        },
    );
}

/// `into_inner` with a read in flight cancels it and hands the source back
/// usable: bytes the peer sends afterwards are read by a new reader (the
/// cancelled read did not take them). With the read already completed, its
/// bytes count as buffered and are dropped with the buffer, as documented;
/// what follows still arrives whole.
async fn into_inner_with_read_in_flight<S: Peer>(mode: Mode) {
    for stage in [ReadStage::Queued, ReadStage::Waiting, ReadStage::Completed] {
        let (near, far) = S::pair().await;
        let mut r = mode.reader(near, Some(64));
        far.send(Bytes::from_static(b"first\n"))
            .await
            .0
            .expect("send");
        assert_eq!(r.next_line().await.expect("next_line"), Some(&b"first"[..]));
        read_in_flight(&mut r, &far, stage).await;
        let near = r.into_inner();
        // Let the cancel reach the kernel before anything else is sent.
        sleep(Duration::from_millis(5)).await;
        far.send(Bytes::from_static(b"second\nthird"))
            .await
            .0
            .expect("send");
        far.shut_write().await.expect("shutdown");
        let mut r = mode.reader(near, Some(64));
        assert_eq!(
            r.next_line().await.expect("next_line"),
            Some(&b"second"[..]),
            "{stage:?}"
        );
        assert_eq!(r.next_line().await.expect("next_line"), Some(&b"third"[..]));
        assert_eq!(r.next_line().await.expect("next_line"), None);
    }
}

/// `BufReader::into_inner` while a read is in flight.
#[test]
fn reader_into_inner_with_read_in_flight() {
    run_test("reader_into_inner_with_read_in_flight", async {
        into_inner_with_read_in_flight::<UnixStream>(Mode::Plain).await;
        into_inner_with_read_in_flight::<TcpStream>(Mode::Plain).await;
    });
}

/// A pooled `BufReader::into_inner` while its receive is in flight (4 KiB
/// pool buffers taken whole).
#[test]
fn pooled_reader_into_inner_with_read_in_flight() {
    let mode = Mode::PooledWhole(4096);
    run_test_in(
        mode,
        "pooled_reader_into_inner_with_read_in_flight",
        async move {
            into_inner_with_read_in_flight::<UnixStream>(mode).await;
            into_inner_with_read_in_flight::<TcpStream>(mode).await;
        },
    );
}

/// A dropped `next_until(b'#')` must not change what a following call with
/// another delimiter finds: `next_line` must still see the `\n` among the
/// bytes the dropped call had searched for `#`.
///
/// Poll order: the peer sends `ab\ncd` (all of it buffered first);
/// `next_until(b'#')` is polled once: it searches the five bytes for `#`,
/// finds none, starts a read and is dropped; `next_line` is polled; the peer
/// sends `ef\n`. Expected: `next_line` gives `ab`. Before 95e89d9 the
/// search position of the dropped call (5) was reused for `\n`, and
/// `next_line` gave `ab\ncdef`.
fn dropped_next_until_then_next_line_other_delimiter_in(mode: Mode) {
    run_test_in(
        mode,
        "dropped_next_until_then_next_line_other_delimiter",
        async move {
            let (near, far) = UnixStream::pair().expect("socketpair");
            let mut r = mode.reader(near, Some(64));
            far.write_all("ab\ncd").await.0.expect("send");
            // Fill first so the bytes are surely buffered when `#` is searched.
            r.fill_at_least(5).await.expect("fill");
            assert!(poll_k_then_drop(r.next_until(b'#'), 1).await.is_none());
            let writer = spawn(async move {
                sleep(Duration::from_millis(5)).await;
                far.write_all("ef\n").await.0.expect("send");
                far
            });
            let first = r.next_line().await.expect("next_line").map(<[u8]>::to_vec);
            let _far = writer.await.expect("writer");
            assert_eq!(
                first.as_deref().map(String::from_utf8_lossy),
                Some("ab".into()),
                "next_line after a dropped next_until(b'#')"
            );
        },
    );
}

/// See [`dropped_next_until_then_next_line_other_delimiter_in`].
#[test]
fn dropped_next_until_then_next_line_other_delimiter() {
    dropped_next_until_then_next_line_other_delimiter_in(Mode::Plain);
}

/// See [`dropped_next_until_then_next_line_other_delimiter_in`]: pooled (64-byte pool buffers).
#[test]
fn dropped_next_until_then_next_line_other_delimiter_pooled() {
    dropped_next_until_then_next_line_other_delimiter_in(Mode::Pooled(64));
}

/// A dropped `read_until(b';')` must not hide a `\n` from a following
/// `read_line`.
///
/// Poll order: the peer sends `one\ntwo` (all of it buffered first);
/// `read_until(b';')` is polled once: it searches the seven bytes for `;`,
/// finds none, starts a read and is dropped; the peer sends `x;\n`;
/// `read_line` is polled to the end. Expected: `one\n` (before 95e89d9:
/// `one\ntwox;\n`).
fn dropped_read_until_then_read_line_in(mode: Mode) {
    run_test_in(mode, "dropped_read_until_then_read_line", async move {
        let (near, far) = UnixStream::pair().expect("socketpair");
        let mut r = mode.reader(near, Some(64));
        far.write_all("one\ntwo").await.0.expect("send");
        r.fill_at_least(7).await.expect("fill");
        let mut out = Vec::new();
        assert!(
            poll_k_then_drop(r.read_until(b';', &mut out), 1)
                .await
                .is_none()
        );
        assert!(out.is_empty(), "a dropped read_until appended");
        far.write_all("x;\n").await.0.expect("send");
        let mut line = String::new();
        r.read_line(&mut line).await.expect("read_line");
        assert_eq!(line, "one\n", "read_line after a dropped read_until(b';')");
    });
}

/// See [`dropped_read_until_then_read_line_in`].
#[test]
fn dropped_read_until_then_read_line() {
    dropped_read_until_then_read_line_in(Mode::Plain);
}

/// See [`dropped_read_until_then_read_line_in`]: pooled (64-byte pool buffers).
#[test]
fn dropped_read_until_then_read_line_pooled() {
    dropped_read_until_then_read_line_in(Mode::Pooled(64));
}

/// A dropped `next_line` must not hide a `;` from a following
/// `read_until(b';')`.
///
/// Poll order: the peer sends `a;b` (all of it buffered first); `next_line`
/// is polled once: it searches the three bytes for `\n`, finds none, starts
/// a read and is dropped; the peer sends `\n` and shuts its write side;
/// `read_until(b';')` is polled to the end. Expected: `a;` (before 95e89d9:
/// `a;b\n`).
fn dropped_next_line_then_read_until_in(mode: Mode) {
    run_test_in(mode, "dropped_next_line_then_read_until", async move {
        let (near, far) = UnixStream::pair().expect("socketpair");
        let mut r = mode.reader(near, Some(64));
        far.write_all("a;b").await.0.expect("send");
        r.fill_at_least(3).await.expect("fill");
        assert!(poll_k_then_drop(r.next_line(), 1).await.is_none());
        far.write_all("\n").await.0.expect("send");
        far.shutdown(Shutdown::Write).await.expect("shutdown");
        let mut out = Vec::new();
        r.read_until(b';', &mut out).await.expect("read_until");
        assert_eq!(out, b"a;", "read_until(b';') after a dropped next_line");
    });
}

/// See [`dropped_next_line_then_read_until_in`].
#[test]
fn dropped_next_line_then_read_until() {
    dropped_next_line_then_read_until_in(Mode::Plain);
}

/// See [`dropped_next_line_then_read_until_in`]: pooled (64-byte pool buffers).
#[test]
fn dropped_next_line_then_read_until_pooled() {
    dropped_next_line_then_read_until_in(Mode::Pooled(64));
}
