//! `io::copy_file`: a file's bytes spliced to a socket (TCP on 127.0.0.1
//! and Unix), byte-identical, after the writer's buffered bytes; ranges;
//! and what a dropped copy leaves (the writer poisoned, or untouched), with
//! no fd leaked.
//!
//! Tests open and count fds, and the test harness runs them on parallel
//! threads, so every test holds [`LOCK`].

mod support;

use std::future::Future;
use std::io::{self, Write as _};
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Mutex;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use uring_bufio::fs::File;
use uring_bufio::io::{BufWriter, copy_file};
use uring_bufio::net::{TcpStream, UnixStream};
use uring_bufio::spawn;
use uring_bufio::time::sleep;

use support::dropping::{Peer, poll_k_then_drop_with};
use support::{fd_count, poll_once, run, settle_fd_count};

/// Held by every test: fd counts must not see other tests' fds.
static LOCK: Mutex<()> = Mutex::new(());

/// Takes [`LOCK`] (a failed test poisons it; the others still run).
fn lock() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// `len` bytes where every 8-byte word names its own offset (scrambled):
/// a byte out of place, doubled or missing shows.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0; len.next_multiple_of(8)];
    for (i, w) in out.chunks_exact_mut(8).enumerate() {
        let v = (i as u64 ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        w.copy_from_slice(&v.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A temporary file holding `content`.
fn temp_file(content: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("tempfile");
    f.write_all(content).expect("write tempfile");
    f.flush().expect("flush tempfile");
    f
}

/// Reads `peer` to end of stream, checking every chunk against `want` on
/// the fly; returns how many bytes arrived (an error at the first
/// mismatch, or past the end of `want`). Interrupted reads (injected
/// faults) are read again.
async fn receive<S: Peer>(peer: S, want: Rc<Vec<u8>>) -> io::Result<usize> {
    let mut got = 0;
    loop {
        let (res, buf) = peer.recv(BytesMut::with_capacity(256 * 1024)).await;
        let n = match res {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) =>
            {
                continue;
            }
            res => res?,
        };
        if n == 0 {
            return Ok(got);
        }
        let expected = want.get(got..got + n).ok_or_else(|| {
            io::Error::other(format!(
                "{} bytes arrived, {} expected",
                got + n,
                want.len()
            ))
        })?;
        if let Some(i) = (0..n).find(|&i| buf[i] != expected[i]) {
            return Err(io::Error::other(format!("byte {} differs", got + i)));
        }
        got += n;
    }
}

/// Writes `head` (buffered, not flushed), copies `range` of a file holding
/// `content`, writes `tail`, shuts down; the peer must read exactly
/// head + content[range] + tail.
async fn transfer<S: Peer>(content: &[u8], range: std::ops::Range<usize>) -> io::Result<()> {
    let (head, tail) = (b"HEAD\r\n".as_slice(), b"\r\nTAIL".as_slice());
    let want = Rc::new([head, &content[range.clone()], tail].concat());
    let tmp = temp_file(content);
    let file = File::open(tmp.path()).await?;
    let (mine, theirs) = S::pair().await;
    let receiver = spawn(receive(theirs, want.clone()));
    let mut w = BufWriter::new(mine);
    w.write_all(head).await?;
    let n = copy_file(&file, &mut w, range.start as u64..range.end as u64).await?;
    assert_eq!(n, range.len() as u64, "copy_file's count");
    w.write_all(tail).await?;
    w.shutdown().await?;
    let got = receiver.await.expect("receiver task")?;
    assert_eq!(got, want.len(), "bytes received");
    Ok(())
}

/// Neighbours of the default pipe size (64 KiB) and of the one
/// `copy_file` asks for (1 MiB), and the extremes, whole files.
const SIZES: [usize; 10] = [
    0,
    1,
    4095,
    65535,
    65536,
    65537,
    300_001,
    (1 << 20) - 1,
    1 << 20,
    (1 << 20) + 1,
];

#[test]
fn sizes_over_tcp() {
    let _g = lock();
    run(async {
        for len in SIZES {
            transfer::<TcpStream>(&pattern(len, len as u64), 0..len).await?;
        }
        Ok(())
    });
}

#[test]
fn sizes_over_unix() {
    let _g = lock();
    run(async {
        for len in SIZES {
            transfer::<UnixStream>(&pattern(len, len as u64), 0..len).await?;
        }
        Ok(())
    });
}

/// 100 MiB, byte-identical.
const BIG: usize = 100 << 20;

#[test]
fn hundred_mib_over_tcp() {
    let _g = lock();
    run(transfer::<TcpStream>(&pattern(BIG, 1), 0..BIG));
}

#[test]
fn hundred_mib_over_unix() {
    let _g = lock();
    run(transfer::<UnixStream>(&pattern(BIG, 2), 0..BIG));
}

/// Ranges inside a file, unaligned and aligned, empty, and to the end.
#[test]
fn ranges_in_the_middle() {
    let _g = lock();
    let content = pattern(200_000, 3);
    run(async {
        for range in [
            12_345..150_000,
            4096..8192,
            1..2,
            70_000..70_000,
            199_999..200_000,
        ] {
            transfer::<TcpStream>(&content, range.clone()).await?;
            transfer::<UnixStream>(&content, range).await?;
        }
        Ok(())
    });
}

/// An open end copies to the end of the file; the file's own position is
/// neither used nor moved.
#[test]
fn open_end_copies_to_the_end() {
    let _g = lock();
    let content = pattern(100_000, 4);
    run(async {
        let tmp = temp_file(&content);
        let file = File::open(tmp.path()).await?;
        let (mine, theirs) = UnixStream::pair()?;
        let want = Rc::new(
            content[99_000..]
                .iter()
                .chain(&content[..10])
                .copied()
                .collect(),
        );
        let receiver = spawn(receive(theirs, want));
        let mut w = BufWriter::new(mine);
        assert_eq!(copy_file(&file, &mut w, 99_000..).await?, 1000);
        assert_eq!(copy_file(&file, &mut w, ..10).await?, 10);
        w.shutdown().await?;
        assert_eq!(receiver.await.expect("receiver")?, 1010);
        let (n, buf) = file.read(BytesMut::with_capacity(4)).await;
        assert_eq!(&buf[..n?], &content[..4], "file position moved");
        Ok(())
    });
}

/// A range past the end of the file: what exists is sent, then
/// `UnexpectedEof`, and the writer refuses further bytes (the stream is
/// short). An inverted range is `InvalidInput` and leaves the writer as
/// it was.
#[test]
fn short_file_poisons_and_bad_range_does_not() {
    let _g = lock();
    let content = pattern(1000, 5);
    run(async {
        let tmp = temp_file(&content);
        let file = File::open(tmp.path()).await?;
        let (mine, theirs) = UnixStream::pair()?;
        let want = Rc::new([b"ok".as_slice(), &content[500..]].concat());
        let receiver = spawn(receive(theirs, want));
        let mut w = BufWriter::new(mine);
        #[allow(clippy::reversed_empty_ranges)]
        let bad = copy_file(&file, &mut w, 10..5).await.unwrap_err();
        assert_eq!(bad.kind(), io::ErrorKind::InvalidInput);
        w.write_all(b"ok").await?;
        let e = copy_file(&file, &mut w, 500..2000).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        let poisoned = w.write_all(b"more").await.unwrap_err();
        assert!(
            poisoned.to_string().contains("stream is short"),
            "{poisoned}"
        );
        assert!(w.flush().await.is_err(), "flush after poison");
        assert!(w.shutdown().await.is_err(), "shutdown after poison");
        drop(w);
        assert_eq!(receiver.await.expect("receiver")?, 502);
        Ok(())
    });
}

/// What a dropped copy left, counted over the rounds.
#[derive(Debug, Default)]
struct Outcomes {
    /// The copy finished within its polls.
    finished: u32,
    /// Dropped before touching the sink: the writer went on normally.
    untouched: u32,
    /// Dropped after: the writer was poisoned.
    poisoned: u32,
}

/// When a round drops the copy.
#[derive(Clone, Copy, Debug)]
enum DropAt {
    /// After this many polls, one runtime tick apart.
    Poll(usize),
    /// Once the peer's socket holds more than this many bytes (polled
    /// every millisecond): file bytes have reached the sink.
    Queued(usize),
}

/// Polls `f` every millisecond until `stop()` holds, then drops it;
/// returns its output if it finished first. Panics if `stop()` does not
/// hold within 5000 polls.
async fn poll_until_then_drop<F: Future>(f: F, stop: impl Fn() -> bool) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    for _ in 0..5000 {
        if let Poll::Ready(out) = poll_once(&mut f).await {
            return Some(out);
        }
        if stop() {
            return None;
        }
        sleep(Duration::from_millis(1)).await;
    }
    panic!("the condition to drop the copy never held")
}

/// Bytes waiting in the receive queue of socket `fd` (`FIONREAD`).
fn queued(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: `n` is a live c_int the kernel writes; `fd` is an open
    // socket the caller holds.
    let rc = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0, "FIONREAD: {}", io::Error::last_os_error());
    n as usize
}

/// One round: `head` buffered, a copy of `content` dropped at `at` (the
/// peer reads nothing until then, so the copy stalls once the socket
/// buffers are full), then a tail. The peer must read head + content +
/// tail (finished), head + tail (untouched), or head + a prefix of content
/// (poisoned); fds back to the count before the round.
async fn dropped_round<S: Peer>(content: &[u8], at: DropAt, out: &mut Outcomes) -> io::Result<()> {
    let before = fd_count();
    let tmp = temp_file(content);
    let file = File::open(tmp.path()).await?;
    let (mine, theirs) = S::pair().await;
    small_send_buffer(mine.as_raw_fd());
    let head = pattern(100, 99);
    let mut w = BufWriter::new(mine);
    w.write_all(&head).await?;
    let copy = copy_file(&file, &mut w, ..);
    let peer_fd = theirs.as_raw_fd();
    let copied = match at {
        DropAt::Poll(k) => poll_k_then_drop_with(copy, k, u64::MAX).await,
        DropAt::Queued(n) => poll_until_then_drop(copy, || queued(peer_fd) > n).await,
    };
    let reader = spawn(receive_all(theirs));
    let finished = copied.is_some();
    if let Some(n) = copied {
        assert_eq!(n?, content.len() as u64);
    }
    let more = w.write_all(b"TAIL").await;
    match &more {
        Ok(()) => w.shutdown().await?,
        Err(e) => assert!(e.to_string().contains("stream is short"), "{e}"),
    }
    drop(w);
    let got = reader.await.expect("reader")?;
    assert_eq!(&got[..head.len()], &head[..], "{at:?}: head");
    let rest = &got[head.len()..];
    match (finished, more.is_ok()) {
        (true, true) => {
            out.finished += 1;
            assert!(rest == [content, b"TAIL"].concat(), "{at:?}: finished copy");
        }
        (false, true) => {
            out.untouched += 1;
            assert_eq!(rest, b"TAIL", "{at:?}: untouched writer");
        }
        (false, false) => {
            out.poisoned += 1;
            assert!(rest.len() < content.len(), "{at:?}: poisoned yet complete");
            assert_eq!(rest, &content[..rest.len()], "{at:?}: not a prefix");
        }
        (true, false) => panic!("{at:?}: a finished copy poisoned the writer"),
    }
    drop(file);
    drop(tmp);
    assert_eq!(
        settle_fd_count(before, Duration::from_secs(5)).await,
        before,
        "{at:?}: fds"
    );
    Ok(())
}

/// Sets `SO_SNDBUF` of socket `fd` to its minimum: a copy stalls after
/// what the peer's receive buffer takes.
fn small_send_buffer(fd: RawFd) {
    let size: libc::c_int = 4096;
    // SAFETY: `size` is a live c_int for the duration of the call and the
    // length passed is its size; `fd` is an open socket the caller holds.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&raw const size).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt: {}", io::Error::last_os_error());
}

/// Reads `peer` to end of stream.
async fn receive_all<S: Peer>(peer: S) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let (res, buf) = peer.recv(BytesMut::with_capacity(64 * 1024)).await;
        if res? == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf);
    }
}

/// Drops the copy after 1..=16 polls (any outcome, each checked), and
/// after file bytes reached the peer (always poisoned), over both socket
/// types.
fn dropped_copies<S: Peer>() {
    let _g = lock();
    let content = pattern(4 << 20, 6);
    let mut ticks = Outcomes::default();
    let mut reached = Outcomes::default();
    run(async {
        for k in 1..=16 {
            dropped_round::<S>(&content, DropAt::Poll(k), &mut ticks).await?;
        }
        for n in [100, 101, 2000, 6000] {
            dropped_round::<S>(&content, DropAt::Queued(n), &mut reached).await?;
        }
        Ok(())
    });
    eprintln!("dropped after k polls: {ticks:?}; after bytes reached the peer: {reached:?}");
    assert_eq!(
        reached.poisoned, 4,
        "a copy dropped part way must poison: {reached:?}"
    );
}

#[test]
fn dropped_copy_over_tcp() {
    dropped_copies::<TcpStream>();
}

#[test]
fn dropped_copy_over_unix() {
    dropped_copies::<UnixStream>();
}

/// Short splices at random lengths and EINTR/EAGAIN instead of splices,
/// injected by the driver: resumed, never surfaced, every byte in order.
#[cfg(feature = "fault-injection")]
#[test]
fn short_and_interrupted_splices_are_resumed() {
    use uring_bufio::Runtime;
    use uring_bufio::faults::FaultPlan;

    let _g = lock();
    let content = pattern(700_001, 7);
    for seed in 1..=4 {
        let plan = FaultPlan::new(seed)
            .short_io(0.5)
            .error(libc::EINTR, 0.1)
            .error(libc::EAGAIN, 0.1);
        let rt = Runtime::builder().faults(plan).build().expect("runtime");
        support::run_on(&rt, support::TEST_LIMIT, async {
            transfer::<TcpStream>(&content, 3..700_001).await?;
            transfer::<UnixStream>(&content, 0..700_001).await
        });
        let stats = rt.fault_stats();
        assert!(
            stats.short > 10,
            "seed {seed}: too few short splices: {stats:?}"
        );
    }
}

/// A file as the sink: the bytes land at the writer's position, after
/// the buffered ones, and the position advances past them.
#[test]
fn file_to_file() {
    let _g = lock();
    let content = pattern(150_001, 8);
    run(async {
        let src = temp_file(&content);
        let dst = tempfile::NamedTempFile::new()?;
        let file = File::open(src.path()).await?;
        let mut w = BufWriter::new(File::create(dst.path()).await?);
        w.write_all(b"head").await?;
        assert_eq!(copy_file(&file, &mut w, 1..).await?, 150_000);
        w.write_all(b"tail").await?;
        w.flush().await?;
        let got = std::fs::read(dst.path())?;
        assert!(got == [b"head".as_slice(), &content[1..], b"tail"].concat());
        Ok(())
    });
}
