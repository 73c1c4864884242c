//! The model of record and frame cutting, computed from a payload alone:
//! what `BufReader`'s line and record methods and `frames()` with
//! tokio-util's `LengthDelimitedCodec` must return, whatever the chunking
//! of the stream and the reader's capacity; and the harness that drives a
//! real reader: a socket fed in chunks ([`trickled`]), one call of each
//! method ([`call`]), a run of them checked against the model
//! ([`read_by_methods`], [`check_calls`]). Shared by
//! `tests/prop_cutting.rs` and the fuzz targets in `fuzz/`.

use std::future::poll_fn;
use std::io::{self, ErrorKind};
use std::net::Shutdown;
use std::task::Poll;

use bytes::Bytes;
use futures_util::StreamExt;
use uring_bufio::io::BufReader;
use uring_bufio::net::UnixStream;
use uring_bufio::{JoinHandle, ReadSource};

/// tokio-util's `LengthDelimitedCodec` default maximum frame length: a
/// larger length in a header is refused as soon as the header is read.
pub const CODEC_MAX: usize = 8 * 1024 * 1024;

/// Where the next record of a stream ends, as the reader must cut it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// A record of `len` bytes without its delimiter, spanning `consume`
    /// bytes with it (equal for a last record without delimiter).
    Record {
        /// Length without the delimiter.
        len: usize,
        /// Length with the delimiter.
        consume: usize,
    },
    /// Longer than the maximum: an `InvalidData` error, nothing consumed.
    TooLong,
    /// End of stream.
    End,
}

/// The record at the start of `rest` (all that is left of the stream): up
/// to the first `delim`; its length without the delimiter (and, for a
/// `line`, without a `\r` before it) must not exceed `max`. A last record
/// without delimiter gets no `\r` allowance.
pub fn cut(rest: &[u8], delim: u8, line: bool, max: usize) -> Cut {
    if rest.is_empty() {
        return Cut::End;
    }
    match rest.iter().position(|&b| b == delim) {
        Some(i) => {
            let cr = line && i > 0 && rest[i - 1] == b'\r';
            if i - usize::from(cr) > max {
                Cut::TooLong
            } else {
                Cut::Record {
                    len: i,
                    consume: i + 1,
                }
            }
        }
        None if rest.len() > max => Cut::TooLong,
        None => Cut::Record {
            len: rest.len(),
            consume: rest.len(),
        },
    }
}

/// A line's text as `next_line` and `lines()` give it: a `\r` before the
/// `\n` removed (not at the end of a last line without `\n`).
pub fn strip_cr(rest: &[u8], len: usize, consume: usize) -> &[u8] {
    let line = &rest[..len];
    match line {
        [head @ .., b'\r'] if consume > len => head,
        _ => line,
    }
}

/// What a `frames()` stream yields next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A frame whose encoding (with its 4-byte header) fits the maximum.
    Item(Vec<u8>),
    /// `InvalidData`: more than the maximum for one frame, header included,
    /// however the stream was chunked; the stream ends.
    TooLong,
    /// `Other` ("bytes remaining on stream"): a truncated frame; the stream
    /// ends.
    Truncated,
    /// A truncated frame whose header announced more than the maximum: it
    /// is refused as `InvalidData` once the reader sees that (when the
    /// decoder reserves room for it, or enough of it waits), or reported
    /// truncated at the end if the stream ends first. Either is accepted.
    TooLongOrTruncated,
}

/// What `frames(LengthDelimitedCodec::new())` with `set_max_frame_len(max)`
/// yields over `wire`, which may end inside a frame.
pub fn model_frames(wire: &[u8], max: usize) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut rest = wire;
    while !rest.is_empty() {
        let Some((head, body)) = rest.split_first_chunk::<4>() else {
            // Part of a header: more than a frame may take if `max` < 4.
            out.push(if rest.len() >= max {
                Frame::TooLong
            } else {
                Frame::Truncated
            });
            break;
        };
        let n = u32::from_be_bytes(*head) as usize;
        if n > CODEC_MAX {
            out.push(Frame::TooLong);
            break;
        }
        if body.len() < n {
            // Truncated: too long once `max` bytes of it wait; a header
            // alone at the end is dropped silently by tokio-util's
            // `decode_eof`, which then sees an empty buffer.
            match body.len() {
                d if d + 4 >= max => out.push(Frame::TooLong),
                _ if n + 4 > max => out.push(Frame::TooLongOrTruncated),
                0 => {}
                _ => out.push(Frame::Truncated),
            }
            break;
        }
        let item = body[..n].to_vec();
        if n + 4 <= max {
            out.push(Frame::Item(item));
        } else {
            out.push(Frame::TooLong);
            break;
        }
        rest = &body[n..];
    }
    out
}

/// A call that cuts the next record out of a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `next_line`: borrowed, `\n` or `\r\n` removed.
    NextLine,
    /// `read_line`: appended to a `String`, newline kept.
    ReadLine,
    /// `next_until(delim)`: borrowed, delimiter removed.
    NextUntil(u8),
    /// `read_until(delim)`: appended to a `Vec`, delimiter kept.
    ReadUntil(u8),
    /// `lines().next()`: an owned `String`, `\n` or `\r\n` removed.
    LinesNext,
    /// `split(delim).next()`: an owned `Vec`, delimiter removed.
    SplitNext(u8),
}

/// What one call returned: the record's bytes as the method gives them, the
/// end of the stream, or an error's kind.
pub type Got = Result<Option<Vec<u8>>, ErrorKind>;

/// What `method` returns when `rest` is what is left of the stream, and how
/// many bytes it consumes (`None`: an error that leaves the bytes
/// buffered, so the next call sees them again).
pub fn expect(rest: &[u8], method: Method, max: usize) -> (Got, Option<usize>) {
    let (delim, line) = match method {
        Method::NextLine | Method::ReadLine | Method::LinesNext => (b'\n', true),
        Method::NextUntil(d) | Method::ReadUntil(d) | Method::SplitNext(d) => (d, false),
    };
    let (len, consume) = match cut(rest, delim, line, max) {
        Cut::End => return (Ok(None), Some(0)),
        Cut::TooLong => return (Err(ErrorKind::InvalidData), None),
        Cut::Record { len, consume } => (len, consume),
    };
    let bytes = match method {
        Method::NextLine | Method::LinesNext => strip_cr(rest, len, consume),
        Method::NextUntil(_) | Method::SplitNext(_) => &rest[..len],
        Method::ReadLine | Method::ReadUntil(_) => &rest[..consume],
    };
    match method {
        // Nothing appended or consumed.
        Method::ReadLine if std::str::from_utf8(bytes).is_err() => {
            (Err(ErrorKind::InvalidData), None)
        }
        // The line is consumed; only its item is an error.
        Method::LinesNext if std::str::from_utf8(bytes).is_err() => {
            (Err(ErrorKind::InvalidData), Some(consume))
        }
        _ => (Ok(Some(bytes.to_vec())), Some(consume)),
    }
}

/// Makes one `method` call on `reader` (by value, since `lines()` and
/// `split()` take it; they hand it back with `into_inner`).
pub async fn call<S: ReadSource>(reader: BufReader<S>, method: Method) -> (BufReader<S>, Got) {
    let mut reader = reader;
    let got = match method {
        Method::LinesNext => {
            let mut lines = reader.lines();
            let item = lines.next().await;
            reader = lines.into_inner();
            item.transpose()
                .map(|s| s.map(String::into_bytes))
                .map_err(|e| e.kind())
        }
        Method::SplitNext(d) => {
            let mut split = reader.split(d);
            let item = split.next().await;
            reader = split.into_inner();
            item.transpose().map_err(|e| e.kind())
        }
        _ => call_borrowed(&mut reader, method).await,
    };
    (reader, got)
}

/// Makes one `method` call on a borrowed `reader`, so the future can be
/// dropped midway and the reader used again. Panics for `LinesNext` and
/// `SplitNext` (use [`call`]), or if a method appended to its output
/// although it failed, or returned a length other than what it appended.
pub async fn call_borrowed<S: ReadSource>(reader: &mut BufReader<S>, method: Method) -> Got {
    match method {
        Method::NextLine => match reader.next_line().await {
            Ok(r) => Ok(r.map(<[u8]>::to_vec)),
            Err(e) => Err(e.kind()),
        },
        Method::NextUntil(d) => match reader.next_until(d).await {
            Ok(r) => Ok(r.map(<[u8]>::to_vec)),
            Err(e) => Err(e.kind()),
        },
        Method::ReadLine => {
            let mut out = String::from("kept:");
            let r = reader.read_line(&mut out).await;
            appended(r.map_err(|e| e.kind()), out.into_bytes())
        }
        Method::ReadUntil(d) => {
            let mut out = b"kept:".to_vec();
            let r = reader.read_until(d, &mut out).await;
            appended(r.map_err(|e| e.kind()), out)
        }
        Method::LinesNext | Method::SplitNext(_) => {
            unreachable!("lines() and split() take the reader: use `call`")
        }
    }
}

/// One call's result, and after an error what stayed buffered.
pub type Call = (Got, Option<Vec<u8>>);

/// Makes calls with `methods` (cycled) on `reader` until the end of the
/// stream, at most `bound` of them, then reads whatever is left (so a peer
/// still sending never waits for room). Returns the calls and the rest.
pub async fn read_by_methods<S: ReadSource>(
    reader: BufReader<S>,
    methods: &[Method],
    bound: usize,
) -> io::Result<(Vec<Call>, Vec<u8>)> {
    let mut reader = reader;
    let mut calls = Vec::new();
    for &method in methods.iter().cycle().take(bound) {
        let (r, got) = call(reader, method).await;
        reader = r;
        let end = got == Ok(None);
        let left = got.is_err().then(|| reader.buffer().to_vec());
        calls.push((got, left));
        if end {
            break;
        }
    }
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).await?;
    Ok((calls, rest))
}

/// Checks what [`read_by_methods`] returned for `payload` against the
/// model: each call's result; after an error that consumes nothing, its
/// bytes still buffered; an end only after the whole payload; and the rest
/// read afterwards exactly the bytes no call consumed.
pub fn check_calls(
    payload: &[u8],
    methods: &[Method],
    max: usize,
    calls: &[Call],
    rest: &[u8],
) -> Result<(), String> {
    let mut pos = 0;
    for (i, (&method, (got, left))) in methods.iter().cycle().zip(calls).enumerate() {
        let (want, consumed) = expect(&payload[pos..], method, max);
        if *got != want {
            return Err(format!(
                "call {i} ({method:?}) at byte {pos}: got {got:?}, want {want:?}"
            ));
        }
        match consumed {
            Some(n) => pos += n,
            None if left.as_ref().is_some_and(|l| !l.is_empty()) => {}
            None => {
                return Err(format!(
                    "call {i} ({method:?}) failed and consumed its bytes"
                ));
            }
        }
        if let Some(left) = left
            && !payload[pos..].starts_with(left)
        {
            return Err(format!(
                "call {i} ({method:?}): buffered {left:?} at byte {pos}"
            ));
        }
    }
    if payload[pos..] != *rest {
        return Err(format!("after byte {pos} the stream held {rest:?}"));
    }
    Ok(())
}

/// The result of a call that appends to `out`, which held `kept:` before.
fn appended(r: Result<usize, ErrorKind>, out: Vec<u8>) -> Got {
    let new = out
        .strip_prefix(b"kept:")
        .expect("the output's earlier bytes kept");
    match r {
        Ok(0) if new.is_empty() => Ok(None),
        Ok(n) if new.len() == n => Ok(Some(new.to_vec())),
        Ok(n) => panic!("returned {n} but appended {new:?}"),
        Err(e) if new.is_empty() => Err(e),
        Err(e) => panic!("failed ({e:?}) but appended {new:?}"),
    }
}

/// Gives the other tasks (and the kernel) a turn.
pub async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

/// A socket whose peer, a task on the current runtime, sends `payload` in
/// chunks of the sizes in `chunks` (cycled; 0 counts as 1, none as one
/// chunk), yielding after each, then shuts down writing. Read the stream to
/// its end (tiny chunks fill the socket's buffer after a few hundred), then
/// await the handle.
pub fn trickled(
    payload: &[u8],
    chunks: &[usize],
) -> io::Result<(UnixStream, JoinHandle<io::Result<()>>)> {
    let (reader, writer) = UnixStream::pair()?;
    let data = Bytes::copy_from_slice(payload);
    let mut chunks: Vec<usize> = chunks.iter().map(|&c| c.max(1)).collect();
    if chunks.is_empty() {
        chunks.push(usize::MAX);
    }
    let task = uring_bufio::spawn(async move {
        let mut at = 0;
        for &n in chunks.iter().cycle() {
            if at == data.len() {
                break;
            }
            let n = n.min(data.len() - at);
            writer.write_all(data.slice(at..at + n)).await.0?;
            at += n;
            yield_now().await;
        }
        writer.shutdown(Shutdown::Write).await
    });
    Ok((reader, task))
}
