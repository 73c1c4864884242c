//! The crate's buffered types under tokio's traits, driven by the crate's
//! own runtime: tokio's extension methods, `tokio::io::copy`/`copy_buf` and
//! tokio-util codecs must see exactly the bytes that were sent, through
//! ordinary readers and through pooled ones (`BufReader::pooled`, small
//! pool buffers; every pool buffer back at the end).

mod support;

use std::future::Future;
use std::io::{self, IoSlice, Read, Write};
use std::os::unix::net::UnixStream as StdUnix;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use support::pool::{Mode, run_mode};
use support::{Rng, run, spin_watchdog};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::{
    Framed, FramedRead, FramedWrite, LengthDelimitedCodec, LinesCodec, LinesCodecError,
};
use uring_bufio::fs::File;
use uring_bufio::io::{BufReader, BufStream, BufWriter};
use uring_bufio::net::{TcpListener, TcpStream, UnixStream};

/// Longest any test body may run: only a hang reaches it.
const LIMIT: Duration = Duration::from_secs(30);

/// As `support::run`, on a runtime for `mode` (pooled: every pool buffer must be
/// back at the end). A body that spins without ever yielding (so the
/// timeout cannot fire) aborts the test binary a little later.
fn run_in(mode: Mode, body: impl Future<Output = io::Result<()>>) {
    let _watchdog = spin_watchdog(LIMIT);
    run_mode(mode, LIMIT, body);
}

/// Waits (ticking the runtime, so submitted operations reach the kernel)
/// until a peer thread ends; passes its panic on.
async fn join<T>(h: thread::JoinHandle<T>) -> T {
    while !h.is_finished() {
        uring_bufio::time::sleep(Duration::from_millis(2)).await;
    }
    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// A crate TCP stream on 127.0.0.1 and the std stream at its other end.
async fn tcp_with_std_peer() -> io::Result<(TcpStream, std::net::TcpStream)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let client = TcpStream::connect(listener.local_addr()?).await?;
    let (peer, _) = listener.accept()?; // already connected: does not block
    peer.set_read_timeout(Some(LIMIT))?;
    Ok((client, peer))
}

/// A crate Unix socket and the std one at its other end.
fn unix_with_std_peer() -> (UnixStream, StdUnix) {
    let (a, b) = StdUnix::pair().expect("socketpair");
    b.set_read_timeout(Some(LIMIT)).expect("read timeout");
    (UnixStream::from_std(a), b)
}

/// A std thread writing `data` in random pieces of 1 to `max` bytes, with
/// pauses so that reads see partial records, then closing.
fn feed(mut s: impl Write + Send + 'static, data: Vec<u8>, max: usize) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut rng = Rng::new(data.len() as u64 | 1);
        let mut rest = &data[..];
        while !rest.is_empty() {
            let (piece, tail) = rest.split_at((1 + rng.below(max)).min(rest.len()));
            s.write_all(piece).expect("peer write");
            rest = tail;
            if rng.below(8) == 0 {
                thread::sleep(Duration::from_millis(1));
            }
        }
    })
}

/// tokio's `read_line` (newline kept) and `lines` (`\n` and `\r\n` cut) on a
/// `BufReader<TcpStream>` whose 16-byte reads split every line, including a
/// 1000-byte one, an empty one and a last one without a newline.
fn read_line_and_lines(mode: Mode) {
    let long = "x".repeat(1000);
    let text = format!("first line\nsecond\r\n\n{long}\nlast, no newline");
    run_in(mode, async {
        let (client, peer) = tcp_with_std_peer().await?;
        let writer = feed(peer, text.clone().into_bytes(), 7);
        let mut r = mode.reader(client, Some(16));
        let mut line = String::new();
        assert_eq!(AsyncBufReadExt::read_line(&mut r, &mut line).await?, 11);
        assert_eq!(AsyncBufReadExt::read_line(&mut r, &mut line).await?, 8);
        assert_eq!(line, "first line\nsecond\r\n");
        mode.assert_reader(&r);
        let mut lines = AsyncBufReadExt::lines(r);
        let mut rest = Vec::new();
        while let Some(l) = lines.next_line().await? {
            rest.push(l);
        }
        assert_eq!(rest, ["", &long, "last, no newline"]);
        join(writer).await;
        Ok(())
    });
}

/// See [`read_line_and_lines`].
#[test]
fn tokio_read_line_and_lines_over_buf_reader_tcp() {
    read_line_and_lines(Mode::Plain);
}

/// See [`read_line_and_lines`]: pooled, 64-byte pool buffers.
#[test]
fn tokio_read_line_and_lines_over_buf_reader_tcp_pooled() {
    read_line_and_lines(Mode::Pooled(64));
}

/// tokio's `read_exact` and `read_to_end` over a `BufReader<UnixStream>`
/// with a 1000-byte buffer return the stream exactly; `read_exact` past the
/// end is `UnexpectedEof`.
fn read_exact_and_read_to_end(mode: Mode) {
    let data = Rng::new(1).bytes(300_000);
    run_in(mode, async {
        let (a, peer) = unix_with_std_peer();
        let writer = feed(peer, data.clone(), 5000);
        let mut r = mode.reader(a, Some(1000));
        let (mut head, mut mid, mut rest) = (vec![0; 10], vec![0; 5000], Vec::new());
        AsyncReadExt::read_exact(&mut r, &mut head).await?;
        AsyncReadExt::read_exact(&mut r, &mut mid).await?;
        let n = AsyncReadExt::read_to_end(&mut r, &mut rest).await?;
        assert_eq!(n, data.len() - 5010);
        assert!([head, mid, rest].concat() == data, "other bytes read");
        let e = AsyncReadExt::read_exact(&mut r, &mut [0; 1])
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        mode.assert_reader(&r);
        join(writer).await;
        Ok(())
    });
}

/// See [`read_exact_and_read_to_end`].
#[test]
fn tokio_read_exact_and_read_to_end() {
    read_exact_and_read_to_end(Mode::Plain);
}

/// See [`read_exact_and_read_to_end`]: pooled, 1000-byte pool buffers.
#[test]
fn tokio_read_exact_and_read_to_end_pooled() {
    read_exact_and_read_to_end(Mode::Pooled(1000));
}

/// tokio's `write_all`, `flush`, `write` and `shutdown` on a
/// `BufWriter<TcpStream>`: a flushed 100 bytes (too few to start a write on
/// their own) reach the peer, and `shutdown` writes the rest, then EOF.
#[test]
fn tokio_write_all_flush_shutdown_on_buf_writer() {
    let data = Rng::new(2).bytes(200_000);
    run(async {
        let (client, mut peer) = tcp_with_std_peer().await?;
        let (tx, rx) = mpsc::channel();
        let reader = thread::spawn(move || -> io::Result<Vec<u8>> {
            let mut head = vec![0; 100];
            peer.read_exact(&mut head)?;
            tx.send(()).unwrap();
            peer.read_to_end(&mut head).map(|_| head)
        });
        let mut w = BufWriter::with_capacity(4096, client);
        AsyncWriteExt::write_all(&mut w, &data[..100]).await?;
        AsyncWriteExt::flush(&mut w).await?;
        assert!(w.buffer().is_empty());
        while rx.try_recv().is_err() {
            assert!(!reader.is_finished(), "peer ended early");
            uring_bufio::time::sleep(Duration::from_millis(1)).await;
        }
        let n = AsyncWriteExt::write(&mut w, &data[100..]).await?;
        assert!((1..=4096).contains(&n), "write took {n}");
        AsyncWriteExt::write_all(&mut w, &data[100 + n..]).await?;
        AsyncWriteExt::shutdown(&mut w).await?;
        assert!(join(reader).await? == data, "peer got other bytes");
        Ok(())
    });
}

/// `tokio::io::copy` (or `copy_buf`) from a `BufReader<File>` to a
/// `BufWriter<File>`: the count is the file size, and the copy's own flush
/// leaves the destination byte-exact.
fn copy_file(buffered: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    let data = Rng::new(3).bytes((5 << 20) + 13);
    std::fs::write(&src, &data).unwrap();
    run(async {
        let mut r = BufReader::with_capacity(7000, File::open(&src).await?);
        let mut w = BufWriter::with_capacity(10_000, File::create(&dst).await?);
        let n = if buffered {
            tokio::io::copy_buf(&mut r, &mut w).await?
        } else {
            tokio::io::copy(&mut r, &mut w).await?
        };
        assert_eq!(n, data.len() as u64);
        assert!(std::fs::read(&dst)? == data, "copy differs");
        Ok(())
    });
}

/// See [`copy_file`].
#[test]
fn tokio_copy_file_to_file() {
    copy_file(false);
}

/// See [`copy_file`].
#[test]
fn tokio_copy_buf_file_to_file() {
    copy_file(true);
}

/// `tokio::io::copy` (or `copy_buf`) from a `BufReader<TcpStream>` whose
/// std peer sends 1 MiB in random pieces to a `BufWriter<File>`: the count
/// is what was sent and the file is byte-exact.
fn copy_socket(mode: Mode, buffered: bool) {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("dst");
    let data = Rng::new(6).bytes((1 << 20) + 7);
    run_in(mode, async {
        let (client, peer) = tcp_with_std_peer().await?;
        let writer = feed(peer, data.clone(), 9000);
        let mut r = mode.reader(client, Some(7000));
        let mut w = BufWriter::with_capacity(10_000, File::create(&dst).await?);
        let n = if buffered {
            tokio::io::copy_buf(&mut r, &mut w).await?
        } else {
            tokio::io::copy(&mut r, &mut w).await?
        };
        assert_eq!(n, data.len() as u64);
        assert!(std::fs::read(&dst)? == data, "copy differs");
        mode.assert_reader(&r);
        join(writer).await;
        Ok(())
    });
}

/// See [`copy_socket`].
#[test]
fn tokio_copy_socket_to_file() {
    copy_socket(Mode::Plain, false);
}

/// See [`copy_socket`]: pooled, 1000-byte pool buffers.
#[test]
fn tokio_copy_pooled_socket_to_file() {
    copy_socket(Mode::Pooled(1000), false);
}

/// See [`copy_socket`]: `copy_buf`, pooled, 4 KiB pool buffers taken whole.
#[test]
fn tokio_copy_buf_pooled_socket_to_file() {
    copy_socket(Mode::PooledWhole(4096), true);
}

/// 3000 random lines through `FramedWrite<BufWriter<UnixStream>>` (fed and
/// sent, then closed: flush and shutdown) and back out of
/// `FramedRead<BufReader<UnixStream>>` in a concurrent task, in order.
fn framed_lines_round_trip(mode: Mode) {
    let mut rng = Rng::new(4);
    let chars = b"abcdefghijklmnopqrstuvwxyz0123456789 ";
    let lines: Vec<String> = (0..3000)
        .map(|_| {
            let len = rng.below(300);
            (0..len)
                .map(|_| chars[rng.below(chars.len())] as char)
                .collect()
        })
        .collect();
    run_in(mode, async {
        let (a, b) = UnixStream::pair()?;
        let sent = lines.clone();
        let writer = uring_bufio::spawn(async move {
            let mut sink = FramedWrite::new(BufWriter::with_capacity(8192, a), LinesCodec::new());
            for (i, line) in sent.iter().enumerate() {
                match i % 7 {
                    0 => sink.send(line).await?,
                    _ => sink.feed(line).await?,
                }
            }
            SinkExt::<&String>::close(&mut sink).await
        });
        let mut src = FramedRead::new(mode.reader(b, Some(512)), LinesCodec::new());
        let mut got = Vec::new();
        while let Some(line) = src.next().await {
            got.push(line.map_err(io::Error::other)?);
        }
        writer
            .await
            .expect("writer task")
            .map_err(io::Error::other)?;
        assert!(got == lines, "{} lines back, or other ones", got.len());
        mode.assert_reader(src.get_ref());
        Ok(())
    });
}

/// See [`framed_lines_round_trip`].
#[test]
fn framed_lines_round_trip_over_unix() {
    framed_lines_round_trip(Mode::Plain);
}

/// See [`framed_lines_round_trip`]: pooled, 512-byte pool buffers.
#[test]
fn framed_lines_round_trip_over_unix_pooled() {
    framed_lines_round_trip(Mode::Pooled(512));
}

/// See [`framed_lines_round_trip`]: pooled, 4 KiB pool buffers taken whole.
#[test]
fn framed_lines_round_trip_over_unix_pooled_whole() {
    framed_lines_round_trip(Mode::PooledWhole(4096));
}

/// An echo server and a client, each a `Framed<BufStream<TcpStream>,
/// LengthDelimitedCodec>`: 100 frames of 0 to 100 000 random bytes one by
/// one, then 50 small ones pipelined, all come back exact; closing the
/// client ends the server, whose close the client sees as the end.
#[test]
fn framed_length_delimited_echo_over_buf_stream() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let server = uring_bufio::spawn(async move {
            let stream = BufStream::with_capacity(4096, 4096, listener.accept().await?.0);
            let mut f = Framed::new(stream, LengthDelimitedCodec::new());
            let mut n = 0;
            while let Some(frame) = f.next().await {
                f.send(frame?.freeze()).await?;
                n += 1;
            }
            Ok::<_, io::Error>(n)
        });
        let stream = BufStream::new(TcpStream::connect(addr).await?);
        let mut f = Framed::new(stream, LengthDelimitedCodec::new());
        let mut rng = Rng::new(5);
        for i in 0..100 {
            let len = rng.below(100_000);
            let frame = Bytes::from(rng.bytes(len));
            f.send(frame.clone()).await?;
            let back = f.next().await.expect("an echo")?;
            assert!(back[..] == frame[..], "frame {i} of {len} bytes differs");
        }
        let frames: Vec<Bytes> = (0..50).map(|i| rng.bytes(i * 40).into()).collect();
        for frame in &frames {
            f.feed(frame.clone()).await?;
        }
        SinkExt::<Bytes>::flush(&mut f).await?;
        for frame in &frames {
            assert!(f.next().await.expect("an echo")?[..] == frame[..]);
        }
        SinkExt::<Bytes>::close(&mut f).await?;
        assert!(f.next().await.is_none(), "expected the end");
        assert_eq!(server.await.expect("server task")?, 150);
        Ok(())
    });
}

/// `LinesCodec::new_with_max_length(16)` under `FramedRead<BufReader<_>>`:
/// a short line passes, a 100-byte one is `MaxLineLengthExceeded`.
fn framed_read_long_line(mode: Mode) {
    run_in(mode, async {
        let (a, peer) = unix_with_std_peer();
        let text = format!("ok\n{}\nafter\n", "y".repeat(100));
        let writer = feed(peer, text.into_bytes(), 9);
        let codec = LinesCodec::new_with_max_length(16);
        let mut src = FramedRead::new(mode.reader(a, None), codec);
        assert_eq!(
            src.next()
                .await
                .expect("a line")
                .map_err(io::Error::other)?,
            "ok"
        );
        match src.next().await {
            Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {}
            other => panic!("expected MaxLineLengthExceeded, got {other:?}"),
        }
        mode.assert_reader(src.get_ref());
        join(writer).await;
        Ok(())
    });
}

/// See [`framed_read_long_line`].
#[test]
fn framed_read_over_long_line_errors() {
    framed_read_long_line(Mode::Plain);
}

/// See [`framed_read_long_line`]: pooled, 64-byte pool buffers.
#[test]
fn framed_read_over_long_line_errors_pooled() {
    framed_read_long_line(Mode::Pooled(64));
}

/// `is_write_vectored` is true for `BufWriter` and `BufStream`, and tokio's
/// `write_vectored` on them counts exactly what was taken.
#[test]
fn buf_writer_and_buf_stream_are_write_vectored() {
    run(async {
        let (a, mut peer) = unix_with_std_peer();
        let mut w = BufWriter::with_capacity(10, a);
        assert!(AsyncWrite::is_write_vectored(&w));
        let bufs = [IoSlice::new(b"012345"), IoSlice::new(b"6789ab")];
        assert_eq!(AsyncWriteExt::write_vectored(&mut w, &bufs).await?, 10);
        AsyncWriteExt::flush(&mut w).await?;
        let (b, mut peer2) = unix_with_std_peer();
        let mut s = BufStream::new(b);
        assert!(AsyncWrite::is_write_vectored(&s));
        let bufs = [IoSlice::new(b"ab"), IoSlice::new(b""), IoSlice::new(b"cd")];
        assert_eq!(AsyncWriteExt::write_vectored(&mut s, &bufs).await?, 4);
        AsyncWriteExt::flush(&mut s).await?;
        let (client, _server) = tcp_with_std_peer().await?;
        assert!(AsyncWrite::is_write_vectored(&BufStream::new(client)));
        let (mut got, mut got2) = ([0; 10], [0; 4]);
        peer.read_exact(&mut got)?; // flushed: already there
        peer2.read_exact(&mut got2)?;
        assert_eq!((&got, &got2), (b"0123456789", b"abcd"));
        drop((w, s));
        Ok(())
    });
}
