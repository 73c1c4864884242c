//! The reading calls of the drop-safety tests: each reads a whole stream
//! with one method, alternating a call given `k` polls (see
//! [`Dropper::attempt`]) with a normal call, and rebuilds the bytes that
//! came out so they can be compared with the payload sent.

use std::io;

use bytes::{BufMut, BytesMut};
use futures_util::StreamExt;
use tokio_util::codec::LengthDelimitedCodec;
use uring_bufio::ReadSource;
use uring_bufio::io::BufReader;

use super::Rng;
use super::dropping::{
    Dropper, binary_payload, frame_payload, join_records, text_payload, utf8_payload,
};

/// The reading calls under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMethod {
    /// `fill_buf` and `consume` of a random amount.
    FillBuf,
    /// `read` into random-sized buffers.
    Read,
    /// `read_exact` of random sizes.
    ReadExact,
    /// `fill_at_least` of random sizes, then `consume`.
    FillAtLeast,
    /// `next_line`, lines joined back with `\n`.
    NextLine,
    /// `read_line` into one `String`.
    ReadLine,
    /// `next_until(b';')`.
    NextUntil,
    /// `read_until(b';')` into one `Vec`.
    ReadUntil,
    /// The `lines()` stream.
    Lines,
    /// The `frames()` stream with `LengthDelimitedCodec`.
    Frames,
    /// The `split(b';')` stream.
    Split,
    /// `read_to_end` into one `Vec`, cut short again and again.
    ReadToEnd,
    /// `read_to_string` of multi-byte UTF-8 into one `String`, cut short
    /// again and again (characters arrive split across reads).
    ReadToString,
}

/// Capacities the readers are built with: from one byte per read up.
pub const READ_CAPACITIES: &[usize] = &[1, 3, 16, 64, 4096];

/// Payload size of one reader run.
pub const READ_PAYLOAD: usize = 6 * 1024;

/// Runs per reader test (each with its own seed, capacity and payload); up
/// to three times as many while some `k` has dropped fewer than
/// [`MIN_DROPS`] futures (interleavings depend on timing).
pub const READ_RUNS: u64 = 4;

impl ReadMethod {
    /// A payload this method can rebuild exactly.
    pub fn payload(self, rng: &mut Rng) -> Vec<u8> {
        match self {
            ReadMethod::FillBuf
            | ReadMethod::Read
            | ReadMethod::ReadExact
            | ReadMethod::FillAtLeast => binary_payload(rng, READ_PAYLOAD),
            ReadMethod::NextLine | ReadMethod::ReadLine | ReadMethod::Lines => {
                text_payload(rng, READ_PAYLOAD, b'\n')
            }
            ReadMethod::NextUntil | ReadMethod::ReadUntil => text_payload(rng, READ_PAYLOAD, b';'),
            ReadMethod::Frames => frame_payload(rng, READ_PAYLOAD),
            ReadMethod::Split => text_payload(rng, READ_PAYLOAD, b';'),
            ReadMethod::ReadToEnd => binary_payload(rng, READ_PAYLOAD),
            ReadMethod::ReadToString => utf8_payload(rng, READ_PAYLOAD),
        }
    }
}

/// Reads the whole stream with `method`, alternating a call given `k` polls
/// with a normal call; returns the bytes rebuilt from what was read.
pub async fn read_with<S: ReadSource>(
    method: ReadMethod,
    reader: BufReader<S>,
    d: &mut Dropper,
    payload: &[u8],
) -> Vec<u8> {
    let mut r = reader;
    match method {
        ReadMethod::FillBuf => read_fill_buf(&mut r, d).await,
        ReadMethod::Read => read_read(&mut r, d).await,
        ReadMethod::ReadExact => read_read_exact(&mut r, d, payload.len()).await,
        ReadMethod::FillAtLeast => read_fill_at_least(&mut r, d, payload.len()).await,
        ReadMethod::NextLine => {
            let lines = read_next_line(&mut r, d).await;
            join_records(&lines, b'\n', payload.ends_with(b"\n"))
        }
        ReadMethod::ReadLine => read_read_line(&mut r, d).await,
        ReadMethod::NextUntil => {
            let records = read_next_until(&mut r, d).await;
            join_records(&records, b';', payload.ends_with(b";"))
        }
        ReadMethod::ReadUntil => read_read_until(&mut r, d).await,
        ReadMethod::Lines => {
            let lines = read_lines(r, d).await;
            join_records(&lines, b'\n', payload.ends_with(b"\n"))
        }
        ReadMethod::Frames => read_frames(r, d).await,
        ReadMethod::Split => {
            let records = read_split(r, d).await;
            join_records(&records, b';', payload.ends_with(b";"))
        }
        ReadMethod::ReadToEnd => read_read_to_end(&mut r, d).await,
        ReadMethod::ReadToString => read_read_to_string(&mut r, d).await,
    }
}

/// `fill_buf` + `consume` of a random amount (0 allowed for the cut-short
/// call, at least 1 for the normal one).
pub async fn read_fill_buf<S: ReadSource>(r: &mut BufReader<S>, d: &mut Dropper) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        if let Some(res) = d.attempt(r.fill_buf()).await {
            let buf = res.expect("fill_buf");
            if buf.is_empty() {
                break;
            }
            let n = d.rng.range(0, buf.len());
            out.extend_from_slice(&buf[..n]);
            r.consume(n);
        }
        let buf = r.fill_buf().await.expect("fill_buf");
        if buf.is_empty() {
            break;
        }
        let n = d.rng.range(1, buf.len());
        out.extend_from_slice(&buf[..n]);
        r.consume(n);
    }
    assert!(r.fill_buf().await.expect("fill_buf at end").is_empty());
    out
}

/// `read` into buffers of 1..=64 bytes.
pub async fn read_read<S: ReadSource>(r: &mut BufReader<S>, d: &mut Dropper) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut buf = vec![0; d.rng.range(1, 64)];
        if let Some(res) = d.attempt(r.read(&mut buf)).await {
            let n = res.expect("read");
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        let mut buf = vec![0; d.rng.range(1, 64)];
        let n = r.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert_eq!(r.read(&mut [0; 8]).await.expect("read at end"), 0);
    out
}

/// `read_exact` of 1..=64 bytes (never past the end); then one byte past
/// the end is `UnexpectedEof`.
pub async fn read_read_exact<S: ReadSource>(
    r: &mut BufReader<S>,
    d: &mut Dropper,
    total: usize,
) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < total {
        let mut buf = vec![0; d.rng.range(1, 64).min(total - out.len())];
        if let Some(res) = d.attempt(r.read_exact(&mut buf)).await {
            res.expect("read_exact");
            out.extend_from_slice(&buf);
            if out.len() == total {
                break;
            }
        }
        let mut buf = vec![0; d.rng.range(1, 64).min(total - out.len())];
        r.read_exact(&mut buf).await.expect("read_exact");
        out.extend_from_slice(&buf);
    }
    let err = r
        .read_exact(&mut [0])
        .await
        .expect_err("read_exact past the end");
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    out
}

/// `fill_at_least(1..=64)` (never past the end), then `consume` of a random
/// amount; at the end `fill_at_least(1)` is `UnexpectedEof`.
pub async fn read_fill_at_least<S: ReadSource>(
    r: &mut BufReader<S>,
    d: &mut Dropper,
    total: usize,
) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < total {
        let want = d.rng.range(1, 64).min(total - out.len());
        if let Some(res) = d.attempt(r.fill_at_least(want)).await {
            let buf = res.expect("fill_at_least");
            assert!(
                buf.len() >= want,
                "fill_at_least({want}) gave {}",
                buf.len()
            );
            let n = d.rng.range(0, buf.len());
            out.extend_from_slice(&buf[..n]);
            r.consume(n);
            if out.len() == total {
                break;
            }
        }
        let want = d.rng.range(1, 64).min(total - out.len());
        let buf = r.fill_at_least(want).await.expect("fill_at_least");
        assert!(
            buf.len() >= want,
            "fill_at_least({want}) gave {}",
            buf.len()
        );
        let n = d.rng.range(want, buf.len());
        out.extend_from_slice(&buf[..n]);
        r.consume(n);
    }
    let err = r
        .fill_at_least(1)
        .await
        .expect_err("fill_at_least past the end");
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    out
}

/// `next_line`: the lines, without their `\n`.
pub async fn read_next_line<S: ReadSource>(r: &mut BufReader<S>, d: &mut Dropper) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    loop {
        if let Some(res) = d.attempt(r.next_line()).await {
            match res.expect("next_line") {
                Some(line) => lines.push(line.to_vec()),
                None => break,
            }
        }
        match r.next_line().await.expect("next_line") {
            Some(line) => lines.push(line.to_vec()),
            None => break,
        }
    }
    assert_eq!(r.next_line().await.expect("next_line at end"), None);
    lines
}

/// `read_line` appending to one `String`.
pub async fn read_read_line<S: ReadSource>(r: &mut BufReader<S>, d: &mut Dropper) -> Vec<u8> {
    let mut text = String::new();
    loop {
        if let Some(res) = d.attempt(r.read_line(&mut text)).await
            && res.expect("read_line") == 0
        {
            break;
        }
        if r.read_line(&mut text).await.expect("read_line") == 0 {
            break;
        }
    }
    assert_eq!(r.read_line(&mut text).await.expect("read_line at end"), 0);
    text.into_bytes()
}

/// `next_until(b';')`: the records, without their `;`.
pub async fn read_next_until<S: ReadSource>(r: &mut BufReader<S>, d: &mut Dropper) -> Vec<Vec<u8>> {
    let mut records = Vec::new();
    loop {
        if let Some(res) = d.attempt(r.next_until(b';')).await {
            match res.expect("next_until") {
                Some(rec) => records.push(rec.to_vec()),
                None => break,
            }
        }
        match r.next_until(b';').await.expect("next_until") {
            Some(rec) => records.push(rec.to_vec()),
            None => break,
        }
    }
    assert_eq!(r.next_until(b';').await.expect("next_until at end"), None);
    records
}

/// `read_until(b';')` appending to one `Vec`.
pub async fn read_read_until<S: ReadSource>(r: &mut BufReader<S>, d: &mut Dropper) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        if let Some(res) = d.attempt(r.read_until(b';', &mut out)).await
            && res.expect("read_until") == 0
        {
            break;
        }
        if r.read_until(b';', &mut out).await.expect("read_until") == 0 {
            break;
        }
    }
    assert_eq!(
        r.read_until(b';', &mut out)
            .await
            .expect("read_until at end"),
        0
    );
    out
}

/// The `lines()` stream: the lines, without their `\n`.
pub async fn read_lines<S: ReadSource>(r: BufReader<S>, d: &mut Dropper) -> Vec<Vec<u8>> {
    let mut stream = r.lines();
    let mut lines = Vec::new();
    loop {
        if let Some(item) = d.attempt(stream.next()).await {
            match item {
                Some(line) => lines.push(line.expect("lines").into_bytes()),
                None => break,
            }
        }
        match stream.next().await {
            Some(line) => lines.push(line.expect("lines").into_bytes()),
            None => break,
        }
    }
    assert!(stream.next().await.is_none(), "lines after the end");
    lines
}

/// The `frames()` stream: the frames encoded back as length + body.
pub async fn read_frames<S: ReadSource>(r: BufReader<S>, d: &mut Dropper) -> Vec<u8> {
    let mut frames = r.frames(LengthDelimitedCodec::new());
    let mut out = BytesMut::new();
    let mut push = |frame: BytesMut| {
        out.put_u32(frame.len() as u32);
        out.extend_from_slice(&frame);
    };
    loop {
        if let Some(item) = d.attempt(frames.next()).await {
            match item {
                Some(frame) => push(frame.expect("frame")),
                None => break,
            }
        }
        match frames.next().await {
            Some(frame) => push(frame.expect("frame")),
            None => break,
        }
    }
    assert!(frames.next().await.is_none(), "frames after the end");
    out.to_vec()
}

/// The `split(b';')` stream: the records, without their `;`.
pub async fn read_split<S: ReadSource>(r: BufReader<S>, d: &mut Dropper) -> Vec<Vec<u8>> {
    let mut stream = r.split(b';');
    let mut records = Vec::new();
    loop {
        if let Some(item) = d.attempt(stream.next()).await {
            match item {
                Some(rec) => records.push(rec.expect("split")),
                None => break,
            }
        }
        match stream.next().await {
            Some(rec) => records.push(rec.expect("split")),
            None => break,
        }
    }
    assert!(stream.next().await.is_none(), "records after the end");
    records
}

/// `read_to_end` into one `Vec`: only cut-short calls until one finishes
/// (a normal call would read everything at once). After a dropped call the
/// `Vec` holds everything consumed so far.
pub async fn read_read_to_end<S: ReadSource>(r: &mut BufReader<S>, d: &mut Dropper) -> Vec<u8> {
    let mut out = Vec::new();
    while d.attempt(r.read_to_end(&mut out)).await.is_none() {}
    assert_eq!(
        r.read_to_end(&mut out).await.expect("read_to_end at end"),
        0
    );
    out
}

/// `read_to_string` into one `String`, as [`read_read_to_end`].
pub async fn read_read_to_string<S: ReadSource>(r: &mut BufReader<S>, d: &mut Dropper) -> Vec<u8> {
    let mut text = String::new();
    loop {
        match d.attempt(r.read_to_string(&mut text)).await {
            Some(res) => {
                res.expect("read_to_string");
                break;
            }
            None => assert!(text.is_char_boundary(text.len())),
        }
    }
    assert_eq!(
        r.read_to_string(&mut text)
            .await
            .expect("read_to_string at end"),
        0
    );
    text.into_bytes()
}
