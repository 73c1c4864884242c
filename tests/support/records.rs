//! Text with records of every shape, the records std makes of it, and every
//! way of reading a whole stream through a `BufReader` (`next_line`,
//! `read_line`, `read_until`, `lines()`, `fill_buf`, `read`,
//! `read_to_end`), so a test compares what a reader gave with what std
//! computes from the bytes alone.

use std::io::{self, ErrorKind};

use futures_util::StreamExt;
use uring_bufio::ReadSource;
use uring_bufio::io::BufReader;

use super::Rng;

/// Line content: ASCII, multi-byte characters and a stray `\r`.
pub const PIECES: [&str; 16] = [
    "a", "b", "e", "k", "s", "z", "Q", "7", " ", "-", "é", "ß", "€", "ह", "𝄞", "\r",
];

/// How long generated lines are: mostly up to `short`, one in `long_every`
/// up to `longest` bytes.
#[derive(Clone, Copy)]
pub struct Shape {
    /// Most lines are up to this long.
    pub short: usize,
    /// The long ones are up to this long.
    pub longest: usize,
    /// One line in this many may be long.
    pub long_every: usize,
}

impl Shape {
    pub fn line_len(self, rng: &mut Rng) -> usize {
        let top = if rng.below(self.long_every) == 0 {
            self.longest
        } else {
            self.short
        };
        rng.below(top + 1)
    }
}

/// Random UTF-8 text of exactly `size` bytes: lines shaped by `shape`,
/// ending in `\n` or `\r\n` at random; the last line may be cut anywhere.
pub fn text(rng: &mut Rng, size: usize, shape: Shape) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    let mut line_start = 0;
    let mut target = shape.line_len(rng);
    while out.len() < size {
        let ending: &[u8] = if rng.below(2) == 0 { b"\n" } else { b"\r\n" };
        let mut piece = if out.len() - line_start >= target {
            ending
        } else {
            PIECES[rng.below(PIECES.len())].as_bytes()
        };
        if piece.len() > size - out.len() {
            piece = b"x";
        }
        out.extend_from_slice(piece);
        if piece.ends_with(b"\n") {
            line_start = out.len();
            target = shape.line_len(rng);
        }
    }
    out
}

/// How generated data ends.
#[derive(Clone, Copy, Debug)]
pub enum End {
    /// Wherever the generator stopped.
    AsIs,
    /// With a `\n`.
    Newline,
    /// With a byte that is not a line ending.
    NoNewline,
}

/// [`text`] of `size` bytes ending as `end` says, with no record of exactly
/// `max` bytes before a `\r\n` (see [`dodge_crlf_at_max`]).
pub fn text_ending(rng: &mut Rng, size: usize, shape: Shape, end: End, max: usize) -> Vec<u8> {
    let mut data = match end {
        End::AsIs => text(rng, size, shape),
        _ if size == 0 => Vec::new(),
        End::Newline => [text(rng, size - 1, shape), b"\n".to_vec()].concat(),
        End::NoNewline => [text(rng, size - 1, shape), b"x".to_vec()].concat(),
    };
    dodge_crlf_at_max(&mut data, max);
    data
}

/// Turns the `\n` of every `\r\n` line of exactly `max` bytes before its
/// `\r\n` into `x` (merging it with the next record, which keeps size and
/// UTF-8). For such a line the line methods and `read_until` disagree on
/// whether it is too long (see `crlf_line_of_max_bytes_is_accepted`), so
/// the randomized tests stay clear of it.
pub fn dodge_crlf_at_max(data: &mut [u8], max: usize) {
    let mut start = 0;
    for i in 0..data.len() {
        if data[i] != b'\n' {
            continue;
        }
        if i - start == max + 1 && data[i - 1] == b'\r' {
            data[i] = b'x';
        } else {
            start = i + 1;
        }
    }
}

/// A record: its bytes, or for one longer than the maximum the first
/// `max + 1` bytes that stay buffered.
pub type Rec = Result<Vec<u8>, Vec<u8>>;

/// The records of `data` as std sees them: each up to and including a `\n`,
/// a last one without it if non-empty; more than `max` bytes before the
/// `\n` (the maximum does not count the delimiter) is too long.
pub fn reference(data: &[u8], max: usize) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let (rec, tail) = rest.split_at(end);
        let content = rec.len() - usize::from(rec.ends_with(b"\n"));
        out.push(if content <= max {
            Ok(rec.to_vec())
        } else {
            Err(rec[..=max].to_vec())
        });
        rest = tail;
    }
    out
}

/// A record without its `\n`, and without one `\r` before that `\n`.
pub fn strip(rec: Rec) -> Rec {
    rec.map(|mut r| {
        if r.ends_with(b"\n") {
            r.pop();
            if r.ends_with(b"\r") {
                r.pop();
            }
        }
        r
    })
}

/// After an `InvalidData` for a too-long record: checks that at least
/// `max + 1` of its bytes are still buffered and returns them, then consumes
/// through the next `\n` so reading can go on.
pub async fn skip_record<S: ReadSource>(r: &mut BufReader<S>) -> io::Result<Vec<u8>> {
    let max = r.max_record_len();
    let kept = r.buffer().len();
    assert!(
        kept > max,
        "too-long record not kept: {kept} bytes buffered, max {max}"
    );
    let prefix = r.buffer()[..=max].to_vec();
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(prefix);
        }
        let (n, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        r.consume(n);
        if done {
            return Ok(prefix);
        }
    }
}

/// A way of reading a whole stream.
#[derive(Clone, Copy, Debug)]
pub enum Method {
    NextLine,
    ReadLine,
    ReadUntil,
    Lines,
    FillBuf,
    Read,
    ReadToEnd,
}

pub const ALL: [Method; 7] = [
    Method::NextLine,
    Method::ReadLine,
    Method::ReadUntil,
    Method::Lines,
    Method::FillBuf,
    Method::Read,
    Method::ReadToEnd,
];

/// What a method yields: records or a byte stream.
#[derive(PartialEq)]
pub enum Outcome {
    Records(Vec<Rec>),
    Bytes(Vec<u8>),
}

/// What `m` must yield for `data` with records of at most `max` bytes.
pub fn expected(data: &[u8], max: usize, m: Method) -> Outcome {
    match m {
        Method::NextLine | Method::Lines => {
            Outcome::Records(reference(data, max).into_iter().map(strip).collect())
        }
        Method::ReadLine | Method::ReadUntil => Outcome::Records(reference(data, max)),
        Method::FillBuf | Method::Read | Method::ReadToEnd => Outcome::Bytes(data.to_vec()),
    }
}

/// Reads all of `r` with `m`; random sizes come from `seed`.
/// Gives the reader back, so the caller can check how it read.
pub async fn outcome<S: ReadSource>(
    mut r: BufReader<S>,
    m: Method,
    seed: u64,
) -> io::Result<(Outcome, BufReader<S>)> {
    let mut rng = Rng::new(seed);
    let mut recs = Vec::new();
    let mut bytes = Vec::new();
    match m {
        Method::NextLine => loop {
            match r.next_line().await {
                Ok(Some(line)) => recs.push(Ok(line.to_vec())),
                Ok(None) => break,
                Err(e) if e.kind() == ErrorKind::InvalidData => {
                    recs.push(Err(skip_record(&mut r).await?))
                }
                Err(e) => return Err(e),
            }
        },
        Method::ReadLine => loop {
            let mut s = String::from("prefix");
            match r.read_line(&mut s).await {
                Ok(0) => break,
                Ok(n) => {
                    assert_eq!(n + 6, s.len(), "read_line's count");
                    recs.push(Ok(s.as_bytes()[6..].to_vec()));
                }
                Err(e) if e.kind() == ErrorKind::InvalidData => {
                    assert_eq!(s, "prefix", "read_line appended to a failed line");
                    recs.push(Err(skip_record(&mut r).await?));
                }
                Err(e) => return Err(e),
            }
        },
        Method::ReadUntil => loop {
            let mut v = Vec::new();
            match r.read_until(b'\n', &mut v).await {
                Ok(0) => break,
                Ok(n) => {
                    assert_eq!(n, v.len(), "read_until's count");
                    recs.push(Ok(v));
                }
                Err(e) if e.kind() == ErrorKind::InvalidData => {
                    assert!(v.is_empty(), "read_until appended to a failed record");
                    recs.push(Err(skip_record(&mut r).await?));
                }
                Err(e) => return Err(e),
            }
        },
        Method::Lines => {
            let (recs, r) = by_lines(r, &mut rng).await?;
            return Ok((Outcome::Records(recs), r));
        }
        Method::FillBuf => loop {
            let buf = r.fill_buf().await?;
            if buf.is_empty() {
                break;
            }
            let n = 1 + rng.below(buf.len());
            bytes.extend_from_slice(&buf[..n]);
            r.consume(n);
        },
        Method::Read => loop {
            let mut dst = vec![0; 1 + rng.below(2 * r.capacity())];
            let n = r.read(&mut dst).await?;
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&dst[..n]);
        },
        Method::ReadToEnd => {
            let n = r.read_to_end(&mut bytes).await?;
            assert_eq!(n, bytes.len(), "read_to_end's count");
        }
    }
    let got = match m {
        Method::FillBuf | Method::Read | Method::ReadToEnd => Outcome::Bytes(bytes),
        _ => Outcome::Records(recs),
    };
    Ok((got, r))
}

/// Reads all lines with `lines()`, alternating `StreamExt::next` and
/// `Lines::next_line`; skips too-long lines through `into_inner`. Gives the
/// reader back.
pub async fn by_lines<S: ReadSource>(
    mut r: BufReader<S>,
    rng: &mut Rng,
) -> io::Result<(Vec<Rec>, BufReader<S>)> {
    let mut out = Vec::new();
    loop {
        let mut lines = r.lines();
        let err = loop {
            let next = if rng.below(2) == 0 {
                lines.next().await.transpose()
            } else {
                lines.next_line().await
            };
            match next {
                Ok(Some(line)) => out.push(Ok(line.into_bytes())),
                Ok(None) => return Ok((out, lines.into_inner())),
                Err(e) => break e,
            }
        };
        if err.kind() != ErrorKind::InvalidData {
            return Err(err);
        }
        r = lines.into_inner();
        out.push(Err(skip_record(&mut r).await?));
    }
}

/// Panics at the first difference between `got` and `want`.
pub fn assert_outcome(got: &Outcome, want: &Outcome, ctx: &str) {
    match (got, want) {
        (Outcome::Records(g), Outcome::Records(w)) => {
            if let Some(i) = g.iter().zip(w).position(|(a, b)| a != b) {
                panic!("{ctx}: record {i} is {}, want {}", show(&g[i]), show(&w[i]));
            }
            assert_eq!(g.len(), w.len(), "{ctx}: record count");
        }
        (Outcome::Bytes(g), Outcome::Bytes(w)) => assert_bytes(g, w, ctx),
        _ => unreachable!("a method yields one kind of outcome"),
    }
}

/// Panics at the first byte where `got` and `want` differ.
pub fn assert_bytes(got: &[u8], want: &[u8], ctx: &str) {
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!("{ctx}: first difference at byte {i} of {}", want.len());
    }
    assert_eq!(got.len(), want.len(), "{ctx}: byte count");
}

/// A record, shortened for messages.
pub fn show(r: &Rec) -> String {
    match r {
        Ok(b) => format!(
            "Ok({} bytes: {:?})",
            b.len(),
            String::from_utf8_lossy(&b[..b.len().min(40)])
        ),
        Err(b) => format!(
            "TooLong({:?}...)",
            String::from_utf8_lossy(&b[..b.len().min(40)])
        ),
    }
}
