//! `BufReader::frames` and tokio-util codecs over `BufReader`, on real
//! sockets and io_uring: frames arrive byte-exact whatever the chunking of
//! the stream, are cut out of the reader's own buffer without a copy, and
//! limits and truncated streams are errors.

use std::future::Future;
use std::io::{self, ErrorKind};
use std::net::Shutdown;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec, LinesCodec};
use uring_bufio::Runtime;
use uring_bufio::io::BufReader;
use uring_bufio::net::{TcpListener, TcpStream, UnixStream};
use uring_bufio::time::{sleep, timeout};

/// Upper bound for one test's IO, so a hang fails instead of stalling.
const LIMIT: Duration = Duration::from_secs(20);

/// Runs `f` on a fresh runtime, failing if it takes longer than [`LIMIT`].
fn run<F: Future<Output = io::Result<()>>>(f: F) {
    let rt = Runtime::new().expect("io_uring runtime");
    let res = rt.block_on(async { timeout(LIMIT, f).await });
    res.expect("test timed out").expect("test failed");
}

/// xorshift64: reproducible randomness from a seed printed on failure.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random binary bytes.
fn noise(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next() as u8).collect()
}

/// `payloads` as `LengthDelimitedCodec` frames: a 4-byte big-endian length,
/// then the bytes.
fn encode(payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut wire = Vec::new();
    for p in payloads {
        wire.extend_from_slice(&u32::try_from(p.len()).expect("small").to_be_bytes());
        wire.extend_from_slice(p);
    }
    wire
}

/// Which writer feeds a socket.
#[derive(Clone, Copy, Debug)]
enum Feed {
    /// A task on the reader's runtime, writing with `net::TcpStream`.
    Task,
    /// A std thread writing with `std::net::TcpStream`.
    Thread,
}

/// The peer writing into a socket.
enum Writer {
    Task(uring_bufio::JoinHandle<io::Result<()>>),
    Thread(std::thread::JoinHandle<io::Result<()>>),
}

impl Writer {
    /// Waits for the writer and returns its result.
    async fn finish(self) -> io::Result<()> {
        match self {
            Writer::Task(h) => h.await?,
            Writer::Thread(t) => t.join().expect("writer thread panicked"),
        }
    }
}

/// Chunks (size, pause in µs) to send `len` bytes in: sizes at random up to
/// 8, 256 or `largest` bytes; a pause of 0..2 ms after one chunk in four.
fn schedule(rng: &mut Rng, len: usize, largest: usize) -> Vec<(usize, u64)> {
    let mut plan = Vec::new();
    let mut left = len;
    while left > 0 {
        let top = [8, 256, largest, largest][rng.below(4)].min(largest);
        let n = (1 + rng.below(top)).min(left);
        let pause = if rng.below(4) == 0 {
            rng.below(2000) as u64
        } else {
            0
        };
        plan.push((n, pause));
        left -= n;
    }
    plan
}

/// A connected TCP socket on 127.0.0.1 whose peer sends `data` in the
/// chunks of [`schedule`], then shuts down writing.
async fn trickled(data: &[u8], seed: u64, feed: Feed) -> io::Result<(TcpStream, Writer)> {
    let plan = schedule(&mut Rng::new(seed), data.len(), 3000);
    let data = Bytes::copy_from_slice(data);
    match feed {
        Feed::Task => {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let client = TcpStream::connect(listener.local_addr()?).await?;
            let (server, _) = listener.accept().await?;
            client.set_nodelay(true)?;
            let task = uring_bufio::spawn(async move {
                let mut at = 0;
                for (n, pause) in plan {
                    client.write_all(data.slice(at..at + n)).await.0?;
                    at += n;
                    sleep(Duration::from_micros(pause)).await;
                }
                client.shutdown(Shutdown::Write).await
            });
            Ok((server, Writer::Task(task)))
        }
        Feed::Thread => {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            let mut client = std::net::TcpStream::connect(listener.local_addr()?)?;
            let (server, _) = listener.accept()?;
            client.set_nodelay(true)?;
            let thread = std::thread::spawn(move || {
                let mut at = 0;
                for (n, pause) in plan {
                    io::Write::write_all(&mut client, &data[at..at + n])?;
                    at += n;
                    std::thread::sleep(Duration::from_micros(pause));
                }
                client.shutdown(Shutdown::Write)
            });
            Ok((TcpStream::from_std(server), Writer::Thread(thread)))
        }
    }
}

/// Length-delimited frames of random sizes (0..5000 bytes) sent in random
/// chunks with pauses, by a task or a std thread: `frames()` yields each
/// payload exactly, in order, through buffers of 512 bytes, 4 KiB and the
/// default, and then ends (and stays ended).
#[test]
fn length_delimited_frames_over_trickled_socket() {
    run(async {
        let mut seed = 800;
        for feed in [Feed::Task, Feed::Thread] {
            for cap in [Some(512), Some(4096), None] {
                seed += 1;
                let mut rng = Rng::new(seed);
                let payloads: Vec<Vec<u8>> = (0..60)
                    .map(|_| {
                        let len = rng.below(5000);
                        noise(&mut rng, len)
                    })
                    .collect();
                let (socket, writer) = trickled(&encode(&payloads), seed, feed).await?;
                let reader = match cap {
                    Some(cap) => BufReader::with_capacity(cap, socket),
                    None => BufReader::new(socket),
                };
                let mut frames = reader.frames(LengthDelimitedCodec::new());
                for (i, p) in payloads.iter().enumerate() {
                    let ctx = format!("seed {seed}, {feed:?}, capacity {cap:?}, frame {i}");
                    let frame = frames
                        .next()
                        .await
                        .unwrap_or_else(|| panic!("{ctx}: ended"))?;
                    assert!(
                        frame[..] == p[..],
                        "{ctx}: {} bytes, want {}",
                        frame.len(),
                        p.len()
                    );
                }
                assert!(
                    frames.next().await.is_none(),
                    "seed {seed}: frames after the last"
                );
                assert!(
                    frames.next().await.is_none(),
                    "seed {seed}: ended stays ended"
                );
                writer.finish().await?;
            }
        }
        Ok(())
    });
}

/// Random text lines (0..300 bytes, `\n` or `\r\n`), ending with or without
/// a newline, and the lines a line reader must give for it.
fn lines_text(rng: &mut Rng, count: usize, final_newline: bool) -> (Vec<u8>, Vec<String>) {
    const CHARS: [&str; 8] = ["a", "z", " ", "7", "é", "€", "𝄞", "\t"];
    let mut data = Vec::new();
    let mut lines = Vec::new();
    for i in 0..count {
        let len = rng.below(100);
        let mut line: String = (0..len).map(|_| CHARS[rng.below(CHARS.len())]).collect();
        if i + 1 == count && !final_newline {
            line.push('x');
            data.extend_from_slice(line.as_bytes());
        } else {
            data.extend_from_slice(line.as_bytes());
            data.extend_from_slice(if rng.below(2) == 0 { b"\n" } else { b"\r\n" });
        }
        lines.push(line);
    }
    (data, lines)
}

/// tokio-util's `FramedRead` with `LinesCodec`, reading through `BufReader`'s
/// `AsyncRead` from a trickled socket, yields exactly the lines sent.
#[test]
fn framed_read_lines_codec_over_buf_reader() {
    run(async {
        for (seed, feed, cap) in [
            (821, Feed::Task, 64),
            (822, Feed::Thread, 64),
            (823, Feed::Task, 8192),
        ] {
            let (data, want) = lines_text(&mut Rng::new(seed), 800, seed % 2 == 0);
            let (socket, writer) = trickled(&data, seed, feed).await?;
            let mut framed =
                FramedRead::new(BufReader::with_capacity(cap, socket), LinesCodec::new());
            for (i, line) in want.iter().enumerate() {
                let got = framed.next().await.expect("a line");
                let got = got.unwrap_or_else(|e| panic!("seed {seed}, line {i}: {e}"));
                assert_eq!(
                    &got, line,
                    "seed {seed}, {feed:?}, capacity {cap}, line {i}"
                );
            }
            assert!(
                framed.next().await.is_none(),
                "seed {seed}: lines after the last"
            );
            writer.finish().await?;
        }
        Ok(())
    });
}

/// Frames are cut out of the reader's own buffer, not copied: of frames
/// that arrived in one read, each starts exactly 4 header bytes after the
/// previous one ends, and the reader's unconsumed bytes start right where
/// the last one taken ends. (A decoder run on a copy, or frames copied into
/// their own allocations, cannot satisfy both.) `into_parts` then gives the
/// reader with exactly the bytes after that frame.
#[test]
fn frames_are_cut_from_the_readers_buffer_without_copy() {
    run(async {
        let (a, b) = UnixStream::pair()?;
        let mut rng = Rng::new(830);
        let payloads: Vec<Vec<u8>> = [100, 333, 1, 2048, 7, 50]
            .into_iter()
            .map(|n| noise(&mut rng, n))
            .collect();
        let wire = encode(&payloads);
        a.write_all(wire.clone()).await.0?;
        let (read_half, _write_half) = b.into_split();
        let mut frames =
            BufReader::with_capacity(64 * 1024, read_half).frames(LengthDelimitedCodec::new());
        let mut taken = Vec::new();
        for (i, p) in payloads[..5].iter().enumerate() {
            let frame = frames.next().await.expect("a frame")?;
            assert_eq!(&frame[..], &p[..], "frame {i}");
            if let Some(prev) = taken
                .last()
                .map(|f: &bytes::BytesMut| f.as_ptr() as usize + f.len())
            {
                assert_eq!(
                    frame.as_ptr() as usize,
                    prev + 4,
                    "frame {i} not 4 bytes after frame {}",
                    i - 1
                );
            }
            taken.push(frame);
        }
        let last = taken.last().expect("frames");
        let rest = frames.get_ref().buffer();
        assert_eq!(
            rest.as_ptr() as usize,
            last.as_ptr() as usize + last.len(),
            "buffer is not where the last frame ends"
        );
        let tail = &wire[wire.len() - 54..];
        assert_eq!(rest, tail, "the reader holds exactly the last frame");
        let (mut reader, _codec) = frames.into_parts();
        a.shutdown(Shutdown::Write).await?;
        let mut left = Vec::new();
        reader.read_to_end(&mut left).await?;
        assert_eq!(left, tail, "into_parts gives the reader with what follows");
        Ok(())
    });
}

/// More than `max_frame_len` bytes waiting for one frame is `InvalidData`,
/// after which the stream ends: here a "line" of 5000 bytes with a maximum
/// of 1000 (`LinesCodec` only looks, it reserves nothing).
#[test]
fn frame_over_max_frame_len_is_invalid_data() {
    run(async {
        let (a, b) = UnixStream::pair()?;
        a.write_all([&b"ok\n"[..], &[b'y'; 5000], b"\n"].concat())
            .await
            .0?;
        let mut frames = BufReader::with_capacity(256, b).frames(LinesCodec::new());
        frames.set_max_frame_len(1000);
        assert_eq!(frames.max_frame_len(), 1000);
        let first = frames.next().await.expect("a line");
        assert_eq!(first.map_err(|e| e.to_string()).as_deref(), Ok("ok"));
        let err = frames
            .next()
            .await
            .expect("an item")
            .expect_err("5000 > 1000 bytes");
        let tokio_util::codec::LinesCodecError::Io(err) = err else {
            panic!("not the reader's error: {err}");
        };
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
        assert!(
            frames.next().await.is_none(),
            "the stream ends after an error"
        );
        Ok(())
    });
}

/// The same limit holds for `LengthDelimitedCodec`, whose header makes it
/// reserve room for the whole announced frame: a 5000-byte frame with a
/// maximum of 1000 is `InvalidData`, not a frame.
#[test]
fn length_delimited_frame_over_max_frame_len_is_invalid_data() {
    run(async {
        let (a, b) = UnixStream::pair()?;
        a.write_all(encode(&[vec![1; 10], vec![2; 5000]])).await.0?;
        let mut frames = BufReader::with_capacity(256, b).frames(LengthDelimitedCodec::new());
        frames.set_max_frame_len(1000);
        assert_eq!(&frames.next().await.expect("frame")?[..], &[1; 10]);
        let res = frames.next().await.expect("an item").map(|f| f.len());
        assert_eq!(
            res.map_err(|e| e.kind()),
            Err(ErrorKind::InvalidData),
            "5000 > 1000 bytes"
        );
        assert!(
            frames.next().await.is_none(),
            "the stream ends after an error"
        );
        Ok(())
    });
}

/// A stream that ends inside a frame yields the complete frames, then an
/// error (`decode_eof` finds bytes left), then the end.
#[test]
fn truncated_frame_at_end_of_stream_is_an_error() {
    run(async {
        let (a, b) = UnixStream::pair()?;
        let wire = encode(&[vec![3; 10], vec![4; 100]]);
        a.write_all(wire[..wire.len() - 30].to_vec()).await.0?;
        a.shutdown(Shutdown::Write).await?;
        let mut frames = BufReader::with_capacity(16, b).frames(LengthDelimitedCodec::new());
        assert_eq!(&frames.next().await.expect("frame")?[..], &[3; 10]);
        assert!(
            frames.next().await.expect("an item").is_err(),
            "a truncated frame is an error"
        );
        assert!(
            frames.next().await.is_none(),
            "the stream ends after an error"
        );
        Ok(())
    });
}
