//! `BufReader::frames` and tokio-util codecs over `BufReader`, on real
//! sockets, in both modes (ordinary readers, and pooled readers whose
//! small pool buffers make frames span buffers), on io_uring and, with
//! `URING_BUFIO_DRIVER=epoll`, on epoll: frames arrive byte-exact whatever
//! the chunking of the stream, are cut out of the reader's own buffer (or
//! the pool buffer) without a copy, and limits and truncated streams are
//! errors. A pooled test ends with every pool buffer back.

mod support;

use std::io::ErrorKind;
use std::net::Shutdown;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::StreamExt;
use support::Rng;
use support::pool::{Mode, run_mode};
use support::trickle::{Feed, trickled};
use tokio_util::codec::{FramedRead, LengthDelimitedCodec, LinesCodec};
use uring_bufio::net::UnixStream;

/// Upper bound for one test's IO, so a hang fails instead of stalling.
const LIMIT: Duration = Duration::from_secs(20);

/// Largest chunk the trickling peer sends at once.
const CHUNK: usize = 3000;

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

/// Length-delimited frames of random sizes (0..5000 bytes) sent in random
/// chunks with pauses, by a task or a std thread: `frames()` yields each
/// payload exactly, in order, through buffers of 512 bytes, 4 KiB and the
/// default (pooled: through the pool's buffers), and then ends (and stays
/// ended).
fn length_delimited_frames(mode: Mode) {
    run_mode(mode, LIMIT, async {
        let mut seed = 800;
        for feed in [Feed::Task, Feed::Thread] {
            for cap in [Some(512), Some(4096), None] {
                seed += 1;
                let mut rng = Rng::new(seed);
                let payloads: Vec<Vec<u8>> = (0..60)
                    .map(|_| {
                        let len = rng.below(5000);
                        rng.bytes(len)
                    })
                    .collect();
                let (socket, writer) = trickled(&encode(&payloads), seed, CHUNK, feed).await?;
                let mut frames = mode.reader(socket, cap).frames(LengthDelimitedCodec::new());
                for (i, p) in payloads.iter().enumerate() {
                    let ctx =
                        format!("{mode:?}, seed {seed}, {feed:?}, capacity {cap:?}, frame {i}");
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
                mode.assert_reader(frames.get_ref());
                writer.finish().await?;
            }
        }
        Ok(())
    });
}

/// See [`length_delimited_frames`].
#[test]
fn length_delimited_frames_over_trickled_socket() {
    length_delimited_frames(Mode::Plain);
}

/// See [`length_delimited_frames`]: pooled, 512-byte pool buffers.
#[test]
fn length_delimited_frames_over_trickled_socket_pooled() {
    length_delimited_frames(Mode::Pooled(512));
}

/// See [`length_delimited_frames`]: pooled, 4 KiB pool buffers taken whole.
#[test]
fn length_delimited_frames_over_trickled_socket_pooled_whole() {
    length_delimited_frames(Mode::PooledWhole(4096));
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
fn framed_read_lines(mode: Mode) {
    run_mode(mode, LIMIT, async {
        for (seed, feed, cap) in [
            (821, Feed::Task, 64),
            (822, Feed::Thread, 64),
            (823, Feed::Task, 8192),
        ] {
            let (data, want) = lines_text(&mut Rng::new(seed), 800, seed % 2 == 0);
            let (socket, writer) = trickled(&data, seed, CHUNK, feed).await?;
            let mut framed = FramedRead::new(mode.reader(socket, Some(cap)), LinesCodec::new());
            for (i, line) in want.iter().enumerate() {
                let got = framed.next().await.expect("a line");
                let got = got.unwrap_or_else(|e| panic!("seed {seed}, line {i}: {e}"));
                assert_eq!(
                    &got, line,
                    "{mode:?}, seed {seed}, {feed:?}, capacity {cap}, line {i}"
                );
            }
            assert!(
                framed.next().await.is_none(),
                "seed {seed}: lines after the last"
            );
            mode.assert_reader(framed.get_ref());
            writer.finish().await?;
        }
        Ok(())
    });
}

/// See [`framed_read_lines`].
#[test]
fn framed_read_lines_codec_over_buf_reader() {
    framed_read_lines(Mode::Plain);
}

/// See [`framed_read_lines`]: pooled, 64-byte pool buffers.
#[test]
fn framed_read_lines_codec_over_buf_reader_pooled() {
    framed_read_lines(Mode::Pooled(64));
}

/// Frames are cut out of the reader's own buffer, not copied: of frames
/// that arrived in one read, each starts exactly 4 header bytes after the
/// previous one ends, and the reader's unconsumed bytes start right where
/// the last one taken ends. (A decoder run on a copy, or frames copied into
/// their own allocations, cannot satisfy both.) `into_parts` then gives the
/// reader with exactly the bytes after that frame. Pooled, with 4 KiB pool
/// buffers, the frames are cut out of the pool buffer the bytes landed in.
fn frames_cut_without_copy(mode: Mode) {
    run_mode(mode, LIMIT, async {
        let (a, b) = UnixStream::pair()?;
        let mut rng = Rng::new(830);
        let payloads: Vec<Vec<u8>> = [100, 333, 1, 2048, 7, 50]
            .into_iter()
            .map(|n| rng.bytes(n))
            .collect();
        let wire = encode(&payloads);
        a.write_all(wire.clone()).await.0?;
        let (read_half, _write_half) = b.into_split();
        let mut frames = mode
            .reader(read_half, Some(64 * 1024))
            .frames(LengthDelimitedCodec::new());
        let mut taken = Vec::new();
        for (i, p) in payloads[..5].iter().enumerate() {
            let frame = frames.next().await.expect("a frame")?;
            assert_eq!(&frame[..], &p[..], "frame {i}");
            if let Some(prev) = taken
                .last()
                .map(|f: &BytesMut| f.as_ptr() as usize + f.len())
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
        mode.assert_reader(frames.get_ref());
        let (mut reader, _codec) = frames.into_parts();
        a.shutdown(Shutdown::Write).await?;
        let mut left = Vec::new();
        reader.read_to_end(&mut left).await?;
        assert_eq!(left, tail, "into_parts gives the reader with what follows");
        for (i, (frame, p)) in taken.iter().zip(&payloads).enumerate() {
            assert_eq!(&frame[..], &p[..], "frame {i} after its buffer went back");
        }
        Ok(())
    });
}

/// See [`frames_cut_without_copy`].
#[test]
fn frames_are_cut_from_the_readers_buffer_without_copy() {
    frames_cut_without_copy(Mode::Plain);
}

/// See [`frames_cut_without_copy`]: pooled, 4 KiB pool buffers.
#[test]
fn frames_are_cut_from_the_pool_buffer_without_copy() {
    frames_cut_without_copy(Mode::Pooled(4096));
}

/// See [`frames_cut_without_copy`]: pooled, 4 KiB pool buffers taken whole.
#[test]
fn frames_are_cut_from_the_whole_pool_buffer_without_copy() {
    frames_cut_without_copy(Mode::PooledWhole(4096));
}

/// More than `max_frame_len` bytes waiting for one frame is `InvalidData`,
/// after which the stream ends: here a "line" of 5000 bytes with a maximum
/// of 1000 (`LinesCodec` only looks, it reserves nothing).
fn frame_over_max(mode: Mode) {
    run_mode(mode, LIMIT, async {
        let (a, b) = UnixStream::pair()?;
        a.write_all([&b"ok\n"[..], &[b'y'; 5000], b"\n"].concat())
            .await
            .0?;
        let mut frames = mode.reader(b, Some(256)).frames(LinesCodec::new());
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
        mode.assert_reader(frames.get_ref());
        Ok(())
    });
}

/// See [`frame_over_max`].
#[test]
fn frame_over_max_frame_len_is_invalid_data() {
    frame_over_max(Mode::Plain);
}

/// See [`frame_over_max`]: pooled, 256-byte pool buffers (the limit is
/// reached across several of them, in the spill buffer).
#[test]
fn frame_over_max_frame_len_is_invalid_data_pooled() {
    frame_over_max(Mode::Pooled(256));
}

/// The same limit holds for `LengthDelimitedCodec`, whose header makes it
/// reserve room for the whole announced frame: a 5000-byte frame with a
/// maximum of 1000 is `InvalidData`, not a frame.
fn length_delimited_over_max(mode: Mode) {
    run_mode(mode, LIMIT, async {
        let (a, b) = UnixStream::pair()?;
        a.write_all(encode(&[vec![1; 10], vec![2; 5000]])).await.0?;
        let mut frames = mode
            .reader(b, Some(256))
            .frames(LengthDelimitedCodec::new());
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
        mode.assert_reader(frames.get_ref());
        Ok(())
    });
}

/// See [`length_delimited_over_max`].
#[test]
fn length_delimited_frame_over_max_frame_len_is_invalid_data() {
    length_delimited_over_max(Mode::Plain);
}

/// See [`length_delimited_over_max`]: pooled, 256-byte pool buffers (the
/// codec reserves room for 5000 bytes in what is a pool buffer).
#[test]
fn length_delimited_frame_over_max_frame_len_is_invalid_data_pooled() {
    length_delimited_over_max(Mode::Pooled(256));
}

/// See [`length_delimited_over_max`]: pooled, 256-byte pool buffers taken
/// whole.
#[test]
fn length_delimited_frame_over_max_frame_len_is_invalid_data_pooled_whole() {
    length_delimited_over_max(Mode::PooledWhole(256));
}

/// A stream that ends inside a frame yields the complete frames, then an
/// error (`decode_eof` finds bytes left), then the end.
fn truncated_frame(mode: Mode) {
    run_mode(mode, LIMIT, async {
        let (a, b) = UnixStream::pair()?;
        let wire = encode(&[vec![3; 10], vec![4; 100]]);
        a.write_all(wire[..wire.len() - 30].to_vec()).await.0?;
        a.shutdown(Shutdown::Write).await?;
        let mut frames = mode.reader(b, Some(16)).frames(LengthDelimitedCodec::new());
        assert_eq!(&frames.next().await.expect("frame")?[..], &[3; 10]);
        assert!(
            frames.next().await.expect("an item").is_err(),
            "a truncated frame is an error"
        );
        assert!(
            frames.next().await.is_none(),
            "the stream ends after an error"
        );
        mode.assert_reader(frames.get_ref());
        Ok(())
    });
}

/// See [`truncated_frame`].
#[test]
fn truncated_frame_at_end_of_stream_is_an_error() {
    truncated_frame(Mode::Plain);
}

/// See [`truncated_frame`]: pooled, 64-byte pool buffers.
#[test]
fn truncated_frame_at_end_of_stream_is_an_error_pooled() {
    truncated_frame(Mode::Pooled(64));
}
