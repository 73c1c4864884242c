//! `BufWriter` (and `BufStream`'s writing side) on real files, real sockets
//! and a real ring: write-behind, waiting when full, short writes, errors
//! after the peer left, and exactly which bytes come back unwritten.

mod support;

use std::future::{Future, poll_fn};
use std::io::{self, IoSlice, Read, Seek, SeekFrom};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream as StdUnix;
use std::pin::pin;
use std::rc::Rc;
use std::sync::mpsc;
use std::task::Poll;
use std::thread;
use std::time::Duration;

use bytes::BytesMut;
use support::run;
use uring_bufio::WriteSink;
use uring_bufio::fs::{File, OpenOptions};
use uring_bufio::io::{BufStream, BufWriter};
use uring_bufio::net::{TcpListener, TcpStream, UnixStream};

/// Longest any test body may run: only a hang reaches it.
const LIMIT: Duration = Duration::from_secs(30);

/// xorshift64: reproducible test data without extra crates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        for c in v.chunks_mut(8) {
            c.copy_from_slice(&self.next().to_le_bytes()[..c.len()]);
        }
        v
    }
}

/// Polls `fut` once: it must be ready at once, and succeed.
async fn now<T>(fut: impl Future<Output = io::Result<T>>) -> T {
    let mut fut = pin!(fut);
    match poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
        Poll::Ready(res) => res.expect("ready at once, but failed"),
        Poll::Pending => panic!("pending, expected ready at once"),
    }
}

/// A crate Unix socket connected to a blocking std one (30 s read timeout).
fn std_unix_pair() -> (UnixStream, StdUnix) {
    let (a, b) = StdUnix::pair().expect("socketpair");
    b.set_read_timeout(Some(LIMIT)).expect("read timeout");
    (UnixStream::from_std(a), b)
}

/// Shrinks the socket's send buffer so the kernel takes little per send.
fn set_sndbuf(s: &impl AsRawFd, bytes: libc::c_int) {
    let len = size_of::<libc::c_int>() as libc::socklen_t;
    let (level, opt) = (libc::SOL_SOCKET, libc::SO_SNDBUF);
    // SAFETY: the fd is open (borrowed from a live socket); the option value
    // points at a live c_int whose size is passed alongside.
    let rc = unsafe { libc::setsockopt(s.as_raw_fd(), level, opt, (&raw const bytes).cast(), len) };
    assert_eq!(rc, 0, "SO_SNDBUF: {}", io::Error::last_os_error());
}

/// A std thread reading `s` to its end once `gate` fires (if given), in
/// small reads, pausing every 32 reads if `slow`.
fn spawn_peer(
    mut s: impl Read + Send + 'static,
    gate: Option<mpsc::Receiver<()>>,
    slow: bool,
) -> thread::JoinHandle<io::Result<Vec<u8>>> {
    thread::spawn(move || {
        if let Some(gate) = gate {
            gate.recv().expect("gate");
        }
        let (mut out, mut chunk) = (Vec::new(), [0; 997]);
        for i in 1.. {
            match s.read(&mut chunk)? {
                0 => break,
                n => out.extend_from_slice(&chunk[..n]),
            }
            if slow && i % 32 == 0 {
                thread::sleep(Duration::from_millis(1));
            }
        }
        Ok(out)
    })
}

/// Waits (ticking the runtime, so submitted operations reach the kernel)
/// until a peer thread ends; passes its panic on.
async fn join<T>(h: thread::JoinHandle<T>) -> T {
    while !h.is_finished() {
        uring_bufio::time::sleep(Duration::from_millis(2)).await;
    }
    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Writes all of `data` in random pieces of at most `max` bytes through
/// `write`, `write_all` and `write_vectored`, checking each count.
async fn write_mixed<S: WriteSink>(
    w: &mut BufWriter<S>,
    data: &[u8],
    rng: &mut Rng,
    max: usize,
) -> io::Result<()> {
    let mut off = 0;
    while off < data.len() {
        let piece = &data[off..(off + 1 + rng.below(max)).min(data.len())];
        let (a, b) = piece.split_at(piece.len() / 2);
        let n = match rng.below(3) {
            0 => w.write(piece).await?,
            1 => w.write_all(piece).await.map(|()| piece.len())?,
            _ => w.write_vectored(&[a, b].map(IoSlice::new)).await?,
        };
        assert!((1..=piece.len()).contains(&n), "took {n}");
        off += n;
    }
    Ok(())
}

/// A quarter of the capacity is taken whole and only buffered; reaching
/// the capacity hands the buffer to the kernel as one segment (the peer
/// receives it with no flush); with a peer that does not read, a write waits after about two
/// capacities plus the socket buffer. A waiting write dropped took nothing;
/// the same write again waits too, and goes on once the peer reads.
#[test]
fn write_returns_at_once_with_room_and_waits_when_full() {
    run(async {
        let (a, peer) = std_unix_pair();
        set_sndbuf(&a, 4096);
        let data = Rng(7).bytes(1 << 20);
        let mut w = BufWriter::with_capacity(1024, a);
        assert_eq!(now(w.write(&data[..256])).await, 256);
        assert_eq!(w.buffer(), &data[..256]);
        assert_eq!(now(w.write(&data[256..1023])).await, 767);
        assert_eq!(w.buffer(), &data[..1023]);
        assert_eq!(now(w.write(&data[1023..1024])).await, 1);
        assert!(w.buffer().is_empty(), "full, not sent");
        let mut head = [0; 1024];
        let (peer, head) = join(thread::spawn(move || {
            (&peer).read_exact(&mut head).map(|()| (peer, head))
        }))
        .await?;
        assert!(head[..] == data[..1024], "written behind, without a flush");
        let (go, gate) = mpsc::channel();
        let reader = spawn_peer(peer, Some(gate), false);
        let (mut off, mut waited) = (1024, 0);
        while waited < 2 {
            assert!(off < 64 * 1024, "{off} bytes taken with nobody reading");
            let mut fut = pin!(w.write(&data[off..off + 1000]));
            match poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
                Poll::Ready(Ok(0)) => panic!("ready, yet took nothing"),
                Poll::Ready(n) => off += n?,
                // First wait: dropped, it must have taken nothing.
                Poll::Pending if waited == 0 => waited = 1,
                Poll::Pending => {
                    go.send(()).unwrap();
                    off += fut.await?; // woken once the peer reads
                    waited = 2;
                }
            }
        }
        write_mixed(&mut w, &data[off..], &mut Rng(8), 5000).await?;
        w.shutdown().await?;
        assert!(join(reader).await? == data[1024..], "peer got other bytes");
        Ok(())
    });
}

/// Many small writes and a flush reproduce the data byte for byte in a
/// file, for totals just under, at and over the capacity and for 3 MiB,
/// and with a capacity of one byte.
#[test]
fn small_writes_to_a_file_read_back_exact() {
    let dir = tempfile::tempdir().unwrap();
    const C: usize = 4096;
    let cases = [
        (C, C - 1),
        (C, C),
        (C, C + 1),
        (C, (3 << 20) + 17),
        (1, 5000),
    ];
    for (i, (cap, len)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("out{i}"));
        let data = Rng(100 + i as u64).bytes(len);
        run(async {
            let mut w = BufWriter::with_capacity(cap, File::create(&path).await?);
            write_mixed(&mut w, &data, &mut Rng(3), 300).await?;
            w.flush().await?;
            assert!(w.buffer().is_empty());
            assert_eq!(w.get_ref().position(), len as u64);
            Ok(())
        });
        assert!(std::fs::read(&path).unwrap() == data, "{len} bytes");
    }
}

/// `write_vectored` takes slices in order up to the room left and says
/// exactly how much; empty slices count for nothing. `write_all` of ten
/// capacities takes it all in one poll. `into_parts` (no error, nothing in
/// flight) returns the buffered bytes and writes none.
#[test]
fn write_vectored_and_write_all_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vec");
    let d = Rng(5).bytes(1105);
    run(async {
        let mut w = BufWriter::with_capacity(100, File::create(&path).await?);
        assert_eq!(w.write(&d[..30]).await?, 30);
        let bufs = [&d[30..70], &d[70..110], &d[110..150]].map(IoSlice::new);
        assert_eq!(w.write_vectored(&bufs).await?, 70, "room was 70");
        assert_eq!(w.write_vectored(&[]).await?, 0);
        let bufs = [IoSlice::new(&[]), IoSlice::new(&d[100..105])];
        assert_eq!(w.write_vectored(&bufs).await?, 5);
        now(w.write_all(&d[105..])).await;
        w.flush().await?;
        w.write_all(b"abc").await?;
        let (file, rest) = w.into_parts(); // hands back, does not write
        assert_eq!((&rest[..], file.position()), (&b"abc"[..], 1105));
        Ok(())
    });
    assert!(std::fs::read(&path).unwrap() == d);
}

/// Writes go where the file's position is (set by `seek`, or taken over
/// from a std file) and advance it; `into_inner` flushes what was only
/// buffered and the next writer continues; append mode writes at the end.
#[test]
fn file_writes_continue_at_the_file_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pos");
    std::fs::write(&path, [b'x'; 100]).unwrap();
    run(async {
        let file = OpenOptions::new().write(true).open(&path).await?;
        file.seek(SeekFrom::Start(40))?;
        let mut w = BufWriter::new(file);
        w.write_all(&[b'a'; 30]).await?;
        w.flush().await?;
        assert_eq!(w.get_ref().position(), 70);
        let mut w = BufWriter::new(w.into_inner().await.map_err(|e| e.0)?);
        w.write_all(&[b'b'; 50]).await?; // below half: only buffered
        assert_eq!(std::fs::metadata(&path)?.len(), 100);
        let file = w.into_inner().await.map_err(|e| e.0)?; // flushes
        let len = std::fs::metadata(&path)?.len();
        assert_eq!((file.position(), len), (120, 120));
        let mut std_file = std::fs::OpenOptions::new().write(true).open(&path)?;
        std_file.seek(SeekFrom::Start(10))?;
        let mut w = BufWriter::new(File::from_std(std_file));
        w.write_all(b"yy").await?;
        w.flush().await?;
        let mut w = BufWriter::new(OpenOptions::new().append(true).open(&path).await?);
        w.write_all(b"END").await?;
        w.flush().await
    });
    let mut expect = vec![b'x'; 120];
    expect[10..12].copy_from_slice(b"yy");
    expect[40..70].fill(b'a');
    expect[70..].fill(b'b');
    expect.extend(b"END");
    assert_eq!(std::fs::read(&path).unwrap(), expect);
}

/// A file opened read-only takes bytes into the buffer, but the write that
/// starts at the full capacity and `flush` fail with EBADF; `into_inner`
/// returns the error, the file (position unmoved) and every byte.
#[test]
fn flush_error_hands_back_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro");
    std::fs::write(&path, b"orig").unwrap();
    let d = Rng(6).bytes(200);
    run(async {
        let mut w = BufWriter::with_capacity(100, File::open(&path).await?);
        w.write_all(&d[..80]).await?; // starts a write: it fails behind
        let e = w.flush().await.expect_err("flush to a read-only file");
        assert_eq!(e.raw_os_error(), Some(libc::EBADF), "{e:?}");
        w.write_all(&d[80..]).await?;
        let Err((e, file, rest)) = w.into_inner().await else {
            panic!("into_inner wrote to a read-only file")
        };
        assert_eq!((e.raw_os_error(), file.position()), (Some(libc::EBADF), 0));
        assert!(rest[..] == d[..], "bytes lost or reordered");
        Ok(())
    });
    assert_eq!(std::fs::read(&path).unwrap(), b"orig");
}

/// 32 MiB in random pieces through the write half of a Unix socket, with a
/// reader task on the same runtime comparing every chunk with the bytes
/// sent at that offset.
#[test]
fn bulk_32_mib_over_a_unix_socket() {
    const LEN: usize = 32 << 20;
    run(async {
        let (a, b) = UnixStream::pair()?;
        let data = Rc::new(Rng(32).bytes(LEN));
        let expect = data.clone();
        let reader = uring_bufio::spawn(async move {
            let mut off = 0;
            loop {
                let (n, buf) = b.read(BytesMut::with_capacity(256 * 1024)).await;
                match n? {
                    0 => return Ok::<_, io::Error>(off),
                    n if expect.get(off..off + n) != Some(&buf[..]) => {
                        panic!("received bytes differ in {off}..{}", off + n)
                    }
                    n => off += n,
                }
            }
        });
        let (_rd, wr) = a.into_split();
        let mut w = BufWriter::new(wr);
        write_mixed(&mut w, &data, &mut Rng(33), 200_000).await?;
        w.shutdown().await?;
        assert_eq!(reader.await.expect("reader task")?, LEN);
        Ok(())
    });
}

/// With a 4 KiB send buffer and a slow reader, sends come back short and
/// are resumed: the peer receives exactly the bytes, in order.
#[test]
fn short_writes_are_resumed_in_order() {
    run(async {
        let (a, peer) = std_unix_pair();
        set_sndbuf(&a, 4096);
        let reader = spawn_peer(peer, None, true);
        let data = Rng(44).bytes(2 << 20);
        let mut w = BufWriter::with_capacity(16 * 1024, a);
        write_mixed(&mut w, &data, &mut Rng(45), 40_000).await?;
        w.shutdown().await?;
        assert!(join(reader).await? == data, "peer got other bytes");
        Ok(())
    });
}

/// Runs `body` as [`run`] does, with SIGPIPE's default action (killing
/// the process) instead of std's `SIG_IGN`, which is restored after.
fn run_sigpipe_kills(body: impl Future<Output = io::Result<()>>) {
    let sigpipe = |action| {
        // SAFETY: SIG_DFL and SIG_IGN install no handler code; only the
        // disposition changes.
        assert_ne!(
            unsafe { libc::signal(libc::SIGPIPE, action) },
            libc::SIG_ERR
        );
    };
    sigpipe(libc::SIG_DFL);
    run(body);
    sigpipe(libc::SIG_IGN);
}

/// The error of writing to a peer that left.
fn assert_gone(e: &io::Error) {
    let kinds = [io::ErrorKind::BrokenPipe, io::ErrorKind::ConnectionReset];
    assert!(kinds.contains(&e.kind()), "unexpected error: {e:?}");
}

/// Writes `data` in 3000-byte `write_all`s until one fails; returns the
/// bytes accepted and the error (the peer must stop reading early).
async fn write_until_error<S: WriteSink>(w: &mut BufWriter<S>, data: &[u8]) -> (usize, io::Error) {
    let mut accepted = 0;
    loop {
        let chunk = &data[accepted..(accepted + 3000).min(data.len())];
        assert!(!chunk.is_empty(), "all taken by a gone peer");
        match w.write_all(chunk).await {
            Ok(()) => accepted += chunk.len(),
            Err(e) => return (accepted, e),
        }
    }
}

/// The peer reads 100 000 bytes, shuts its reading side (nothing can be
/// queued to it after that), drains what was queued and closes. Writes then
/// fail with BrokenPipe (MSG_NOSIGNAL: with SIGPIPE's default action the
/// process would die), flush fails the same way, and `into_parts` returns
/// exactly the bytes the peer never got: received + returned == accepted.
#[test]
fn peer_gone_flush_errors_and_into_parts_returns_the_exact_rest() {
    run_sigpipe_kills(async {
        let (a, peer) = std_unix_pair();
        set_sndbuf(&a, 8192);
        let data = Rng(9).bytes(8 << 20);
        let peer = thread::spawn(move || -> io::Result<Vec<u8>> {
            let mut got = vec![0; 100_000];
            (&peer).read_exact(&mut got)?;
            peer.shutdown(Shutdown::Read)?;
            (&peer).read_to_end(&mut got)?;
            Ok(got)
        });
        let mut w = BufWriter::with_capacity(16 * 1024, a);
        let (accepted, e) = write_until_error(&mut w, &data).await;
        assert_gone(&e);
        assert_gone(&w.flush().await.expect_err("flush to a gone peer"));
        assert_gone(&w.flush().await.expect_err("second flush"));
        let (_sock, rest) = w.into_parts();
        let got = join(peer).await?;
        assert!(got[..] == data[..got.len()], "peer got other bytes");
        assert_eq!(got.len() + rest.len(), accepted, "bytes lost or duplicated");
        assert!(rest[..] == data[got.len()..accepted], "not the rest");
        Ok(())
    });
}

/// A TCP peer that closes with unread data resets the connection: flush
/// and `into_inner` fail with ConnectionReset or BrokenPipe (no signal, no
/// panic), and the bytes `into_inner` hands back are a suffix of those
/// accepted, beyond those received.
#[test]
fn tcp_peer_reset_flush_errors_and_rest_is_a_suffix() {
    run_sigpipe_kills(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let peer = thread::spawn(move || -> io::Result<usize> {
            let (mut s, _) = listener.accept()?;
            s.set_read_timeout(Some(LIMIT))?;
            s.read_exact(&mut [0; 10_000])?;
            Ok(10_000) // dropped with unread data: RST
        });
        let sock = TcpStream::connect(addr).await?;
        set_sndbuf(&sock, 16 * 1024);
        let data = Rng(10).bytes(32 << 20);
        let mut w = BufWriter::with_capacity(16 * 1024, sock);
        let (accepted, e) = write_until_error(&mut w, &data).await;
        assert_gone(&e);
        assert_gone(&w.flush().await.expect_err("flush to a reset peer"));
        let Err((e, _sock, rest)) = w.into_inner().await else {
            panic!("into_inner flushed to a reset peer")
        };
        assert_gone(&e);
        assert!(join(peer).await? + rest.len() <= accepted);
        let sent = accepted - rest.len();
        assert!(rest[..] == data[sent..accepted], "not a suffix");
        Ok(())
    });
}

/// Writers dropped with bytes left write them in the background, and
/// `block_on` returns only after: into a file at its position, and 1 MiB
/// (taken in one poll by `write_all`) into a socket read slowly, whose peer
/// then reads EOF (the fd was closed).
#[test]
fn dropped_writer_finishes_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drop");
    std::fs::write(&path, b"xxxxxxxx").unwrap();
    let data = Rng(12).bytes(1 << 20);
    let (a, peer) = std_unix_pair();
    set_sndbuf(&a, 4096);
    let reader = spawn_peer(peer, None, true);
    run(async {
        let file = OpenOptions::new().write(true).open(&path).await?;
        file.seek(SeekFrom::Start(3))?;
        let mut w = BufWriter::new(file);
        w.write_all(b"abc").await?;
        let mut w2 = BufWriter::new(a);
        now(w2.write_all(&data)).await;
        drop((w, w2));
        Ok(())
    });
    assert_eq!(std::fs::read(&path).unwrap(), b"xxxabcxx");
    assert!(reader.join().unwrap().unwrap() == data, "other bytes");
}

/// Echo server on one side, client on the other, both `BufStream`s over
/// TCP on 127.0.0.1 and ::1: random-size chunks and lines come back exact.
/// The client's `shutdown` makes the server read EOF, and the server's
/// `shutdown` makes the client, still open, read EOF.
#[test]
fn buf_stream_echo_round_trip_v4_and_v6() {
    for host in ["127.0.0.1:0", "[::1]:0"] {
        run(async {
            let listener = match TcpListener::bind(host) {
                Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => {
                    eprintln!("skipping {host}: {e}");
                    return Ok(());
                }
                res => res?,
            };
            let addr = listener.local_addr()?;
            let server = uring_bufio::spawn(async move {
                let mut s = BufStream::with_capacity(4096, 4096, listener.accept().await?.0);
                let mut total = 0;
                loop {
                    let chunk = s.fill_buf().await?.to_vec();
                    if chunk.is_empty() {
                        s.shutdown().await?;
                        return Ok::<_, io::Error>(total);
                    }
                    s.consume(chunk.len());
                    s.write_all(&chunk).await?;
                    s.flush().await?;
                    total += chunk.len();
                }
            });
            let mut c = BufStream::new(TcpStream::connect(addr).await?);
            let (mut rng, mut total) = (Rng(77), b"alpha\nbeta\n".len());
            for round in 0..64 {
                let len = 1 + rng.below([16, 4096, 48 * 1024][round % 3]);
                let msg = rng.bytes(len);
                c.write_all(&msg).await?;
                c.flush().await?;
                let mut back = vec![0; len];
                c.read_exact(&mut back).await?;
                assert!(back == msg, "{host}: round {round} echoed other bytes");
                total += len;
            }
            c.write_all(b"alpha\nbeta\n").await?;
            c.flush().await?;
            assert_eq!(c.next_line().await?, Some(&b"alpha"[..]));
            assert_eq!(c.next_line().await?, Some(&b"beta"[..]));
            c.shutdown().await?;
            assert!(c.fill_buf().await?.is_empty(), "expected EOF");
            assert_eq!(server.await.expect("server task")?, total);
            Ok(())
        });
    }
}
