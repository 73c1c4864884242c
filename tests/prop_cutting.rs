//! Property tests of line, record and frame cutting, end to end: random
//! payloads go over a real Unix socket pair in random chunks, a
//! `BufReader` with a random small capacity cuts them with `next_line`,
//! `read_line`, `next_until`, `read_until`, `lines()`, `split()` and
//! `frames(LengthDelimitedCodec)`, and every result is compared with the
//! model in `support/cutting.rs`, computed from the payload alone
//! (records, `\r\n`, empty lines, a last line without newline, invalid
//! UTF-8, the maximum record and frame lengths, truncated frames).
//!
//! One runtime per test is reused by every case; the suite runs on
//! io_uring, and on epoll with `URING_BUFIO_DRIVER=epoll`.

use std::io::ErrorKind;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::StreamExt;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use support::run_on;
use tokio_util::codec::LengthDelimitedCodec;
use uring_bufio::Runtime;
use uring_bufio::io::BufReader;

#[path = "support/cutting.rs"]
mod cutting;
mod support;
use cutting::{
    Cut, Frame, Method, check_calls, cut, model_frames, read_by_methods, strip_cr, trickled,
};

/// Upper bound for one case's IO: only a hang reaches it.
const LIMIT: Duration = Duration::from_secs(10);

/// Runs `cases` cases of `test` on inputs from `strategy`, all on one
/// runtime made for the test (a runtime kept in a thread-local cannot be
/// dropped at thread exit: see the report on issue 5). Fails with the
/// smallest failing input.
fn check<S: Strategy>(
    cases: u32,
    strategy: S,
    test: impl Fn(&Runtime, S::Value) -> Result<(), TestCaseError>,
) {
    let rt = Runtime::new().expect("runtime");
    let mut runner = TestRunner::new(ProptestConfig::with_cases(cases));
    if let Err(e) = runner.run(&strategy, |value| test(&rt, value)) {
        panic!("{e}");
    }
}

/// Content bytes of lines: ASCII, a lone `\r`, a two-byte character and a
/// byte that is never UTF-8.
fn token() -> impl Strategy<Value = &'static [u8]> {
    prop_oneof![
        6 => Just(&b"a"[..]),
        2 => Just(&b"b"[..]),
        2 => Just(&b"\r"[..]),
        1 => Just("\u{e9}".as_bytes()),
        1 => Just(&b"\xff"[..]),
    ]
}

/// Lines around `max` bytes long, ending in `\n`, `\r\n` or nothing (so
/// the next one joins it, or the payload ends without newline).
fn lines_payload(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let line = (
        prop::collection::vec(token(), 0..=2 * max + 2),
        prop_oneof![3 => Just(&b"\n"[..]), 2 => Just(&b"\r\n"[..]), 1 => Just(&b""[..])],
    );
    prop::collection::vec(line, 0..10).prop_map(|lines| {
        let mut out = Vec::new();
        for (tokens, end) in lines {
            tokens.iter().for_each(|t| out.extend_from_slice(t));
            out.extend_from_slice(end);
        }
        out
    })
}

/// Chunk sizes the peer sends in, cycled.
fn chunks() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..=20, 1..6)
}

fn method() -> impl Strategy<Value = Method> {
    let delim = || prop::sample::select(&b"\n\ra"[..]);
    prop_oneof![
        3 => Just(Method::NextLine),
        3 => Just(Method::ReadLine),
        2 => Just(Method::LinesNext),
        1 => delim().prop_map(Method::NextUntil),
        1 => delim().prop_map(Method::ReadUntil),
        1 => delim().prop_map(Method::SplitNext),
    ]
}

/// A case of line reading: the payload, how it is sent, how it is read.
#[derive(Debug, Clone)]
struct LinesCase {
    max: usize,
    payload: Vec<u8>,
    chunks: Vec<usize>,
    capacity: usize,
    methods: Vec<Method>,
}

fn lines_case() -> impl Strategy<Value = LinesCase> {
    (1usize..12).prop_flat_map(|max| {
        (
            lines_payload(max),
            chunks(),
            1usize..24,
            prop::collection::vec(method(), 1..8),
        )
            .prop_map(move |(payload, chunks, capacity, methods)| LinesCase {
                max,
                payload,
                chunks,
                capacity,
                methods,
            })
    })
}

/// Each call returns what the model cuts at that point of the payload,
/// whatever the chunking, the capacity and the mix of methods on one
/// reader. A too-long record, or invalid UTF-8 for `read_line`, is
/// `InvalidData` with nothing consumed (its bytes stay buffered and the
/// next call, maybe with another delimiter, starts there). Every call that
/// does not fail consumes a byte or ends the stream, so a call per byte, one
/// per method and two more reach the end unless every method is stuck.
#[test]
fn line_methods_agree_with_the_model() {
    check(2500, lines_case(), |rt, case| {
        let (calls, rest) = run_on(rt, LIMIT, async {
            let (socket, writer) = trickled(&case.payload, &case.chunks)?;
            let mut reader = BufReader::with_capacity(case.capacity, socket);
            reader.set_max_record_len(case.max);
            let bound = case.payload.len() + case.methods.len() + 2;
            let out = read_by_methods(reader, &case.methods, bound).await?;
            writer.await??;
            Ok(out)
        });
        check_calls(&case.payload, &case.methods, case.max, &calls, &rest)
            .map_err(TestCaseError::fail)
    });
}

/// `lines()` yields the model's lines as `String`s; invalid UTF-8 is an
/// error for that line only, a too-long line ends the stream.
#[test]
fn lines_stream_agrees_with_the_model() {
    check(1500, lines_case(), |rt, case| {
        let got = run_on(rt, LIMIT, async {
            let (socket, writer) = trickled(&case.payload, &case.chunks)?;
            let mut reader = BufReader::with_capacity(case.capacity, socket);
            reader.set_max_record_len(case.max);
            let mut lines = reader.lines();
            let mut got = Vec::new();
            while let Some(item) = lines.next().await {
                // A too-long line stays buffered: the stream repeats it.
                let stop = matches!(&item, Err(e) if e.to_string().contains("longer"));
                got.push(item.map_err(|e| e.kind()));
                if stop || got.len() > case.payload.len() + 1 {
                    break;
                }
            }
            let mut rest = Vec::new();
            lines.into_inner().read_to_end(&mut rest).await?;
            writer.await??;
            Ok((got, rest))
        });
        let (got, rest) = got;
        let mut want = Vec::new();
        let mut pos = 0;
        loop {
            let rest = &case.payload[pos..];
            match cut(rest, b'\n', true, case.max) {
                Cut::End => break,
                Cut::TooLong => {
                    want.push(Err(ErrorKind::InvalidData));
                    break;
                }
                Cut::Record { len, consume } => {
                    let text = String::from_utf8(strip_cr(rest, len, consume).to_vec());
                    want.push(text.map_err(|_| ErrorKind::InvalidData));
                    pos += consume;
                }
            }
        }
        prop_assert_eq!(got, want);
        prop_assert_eq!(&case.payload[pos..], &rest[..], "the rest after the lines");
        Ok(())
    });
}

/// A case of frame reading.
#[derive(Debug, Clone)]
struct FramesCase {
    max: usize,
    wire: Vec<u8>,
    chunks: Vec<usize>,
    capacity: usize,
}

fn frames_case() -> impl Strategy<Value = FramesCase> {
    (5usize..40).prop_flat_map(|max| {
        let frame = prop::collection::vec(any::<u8>(), 0..=max + 4);
        (
            prop::collection::vec(frame, 0..6),
            any::<prop::sample::Index>(),
            any::<bool>(),
            chunks(),
            1usize..48,
        )
            .prop_map(move |(frames, cut, truncate, chunks, capacity)| {
                let mut wire = Vec::new();
                for f in &frames {
                    wire.extend_from_slice(&(f.len() as u32).to_be_bytes());
                    wire.extend_from_slice(f);
                }
                if truncate {
                    wire.truncate(cut.index(wire.len() + 1));
                }
                FramesCase {
                    max,
                    wire,
                    chunks,
                    capacity,
                }
            })
    })
}

/// Frames come out byte-exact and in order whatever the chunking and
/// capacity; a frame over the maximum and a truncated stream are errors that
/// end the stream, which then stays ended.
///
/// The limit counts a frame's header, whatever the chunking (found here: it
/// used to count it only when decoded in the same call as the payload). Only
/// a truncated frame that announced more than the limit may end either way:
/// refused as too long, or reported truncated at the end.
#[test]
fn frames_agree_with_the_model() {
    check(2500, frames_case(), |rt, case| {
        let (got, ended) = run_on(rt, LIMIT, async {
            let (socket, writer) = trickled(&case.wire, &case.chunks)?;
            let reader = BufReader::with_capacity(case.capacity, socket);
            let mut frames = reader.frames(LengthDelimitedCodec::new());
            frames.set_max_frame_len(case.max);
            let mut got: Vec<Result<BytesMut, ErrorKind>> = Vec::new();
            while let Some(item) = frames.next().await {
                got.push(item.map_err(|e| e.kind()));
                if got.len() > case.wire.len() + 1 {
                    break;
                }
            }
            let ended = frames.next().await.is_none();
            // Read the rest, so the peer never waits for room.
            let mut rest = Vec::new();
            frames.into_parts().0.read_to_end(&mut rest).await?;
            assert!(
                case.wire.ends_with(&rest),
                "the rest is not the stream's end"
            );
            writer.await??;
            Ok((got, ended))
        });
        prop_assert!(ended, "the stream yields after its end");
        let want = model_frames(&case.wire, case.max);
        let mut got = got.into_iter();
        for w in &want {
            match (w, got.next()) {
                (Frame::Item(want), Some(Ok(frame))) => {
                    prop_assert_eq!(&frame[..], &want[..]);
                }
                (Frame::TooLong | Frame::TooLongOrTruncated, Some(Err(ErrorKind::InvalidData))) => {
                    break;
                }
                (Frame::TooLongOrTruncated, Some(Err(ErrorKind::Other)) | None) => break,
                (Frame::Truncated, Some(Err(ErrorKind::Other))) => break,
                (w, g) => {
                    let msg = format!("want {w:?}, got {g:?}; model {want:?}");
                    return Err(TestCaseError::fail(msg));
                }
            }
        }
        let extra: Vec<_> = got.collect();
        prop_assert!(extra.is_empty(), "items past the model's: {:?}", extra);
        Ok(())
    });
}
