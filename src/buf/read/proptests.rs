//! Random sequences of the buffer's operations against a model: the filled
//! bytes are a `Vec<u8>`, a lend remembers what it consumed, a "kernel"
//! writes into the spare part split off by `take_spare` while the caller
//! keeps consuming, finding and decoding, and frames split off by a decoder
//! stay alive across later reads.

use bytes::{Buf, Bytes, BytesMut};
use proptest::prelude::*;

use super::{Found, ReadBuffer};

/// One call on the buffer, as the reader makes it.
#[derive(Debug, Clone)]
enum Op {
    /// A whole read: `take_spare(min)`, the kernel writes, `put_back`
    /// (when no other read is in flight).
    Read(usize, Vec<u8>),
    /// `take_spare(min)`, when no read is in flight.
    TakeSpare(usize),
    /// The kernel writes these bytes (as far as there is room) into the
    /// part split off for the read in flight.
    KernelWrite(Vec<u8>),
    /// The read completes: `put_back`.
    PutBack,
    /// `consume(n)`; `n` may exceed what is filled (clamped).
    Consume(usize),
    /// `lend(n)` with `n` taken modulo the filled length plus one.
    Lend(usize),
    /// `settle()`.
    Settle,
    /// `find(delim, max)`.
    Find(u8, usize),
    /// `lend_record(delim, max)`.
    LendRecord(u8, usize),
    /// `bytes_mut()`, then what a decoder does to it.
    Decode(Decode),
    /// `discard()`, as `into_inner` does: a read in flight is abandoned
    /// to the kernel first.
    Discard,
}

/// What a decoder does with the `BytesMut` it is handed.
#[derive(Debug, Clone)]
enum Decode {
    /// Nothing (it needs more bytes).
    Nothing,
    /// Splits a frame off the front (modulo the length plus one) and
    /// keeps it alive.
    SplitTo(usize),
    /// Skips bytes at the front (a header).
    Advance(usize),
    /// Reserves room for the frame it expects.
    Reserve(usize),
}

/// Bytes from a small alphabet, so delimiters are frequent.
fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(&b"ab\n\r\0"[..]), 0..max)
}

/// Longer runs with delimiters far apart, so searches cross the 64-byte
/// blocks of the buffer's delimiter masks.
fn sparse_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let alphabet = b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab\n\0";
    prop::collection::vec(prop::sample::select(&alphabet[..]), 0..max)
}

/// Records of a few hundred bytes (a delimiter in about 300), so the fast
/// path reads past its masks into `memchr` and switches to its `long`
/// mode and back.
fn long_records(max: usize) -> impl Strategy<Value = Vec<u8>> {
    (0..max).prop_flat_map(|len| {
        prop::collection::vec(
            (0u32..300).prop_map(|r| if r == 0 { b'\n' } else { b'a' }),
            len,
        )
    })
}

/// A delimiter to look for and a maximum record length, small or large.
fn search() -> impl Strategy<Value = (u8, usize)> {
    (
        prop::sample::select(&b"\n\n\n\na\0"[..]),
        prop_oneof![3 => 0usize..24, 1 => 0usize..300, 1 => 0usize..1200],
    )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..48, bytes(40)).prop_map(|(min, b)| Op::Read(min, b)),
        2 => (0usize..300, sparse_bytes(300)).prop_map(|(min, b)| Op::Read(min, b)),
        1 => (0usize..900, long_records(900)).prop_map(|(min, b)| Op::Read(min, b)),
        3 => (0usize..48).prop_map(Op::TakeSpare),
        3 => bytes(40).prop_map(Op::KernelWrite),
        1 => sparse_bytes(200).prop_map(Op::KernelWrite),
        3 => Just(Op::PutBack),
        3 => prop_oneof![4 => 0usize..4, 1 => 0usize..48].prop_map(Op::Consume),
        2 => any::<usize>().prop_map(Op::Lend),
        1 => Just(Op::Settle),
        4 => search().prop_map(|(d, m)| Op::Find(d, m)),
        3 => search().prop_map(|(d, m)| Op::LendRecord(d, m)),
        2 => prop_oneof![
            Just(Decode::Nothing),
            any::<usize>().prop_map(Decode::SplitTo),
            (0usize..8).prop_map(Decode::Advance),
            (0usize..64).prop_map(Decode::Reserve),
        ]
        .prop_map(Op::Decode),
        1 => Just(Op::Discard),
    ]
}

/// The model, and the memory the buffer handed out.
#[derive(Default)]
struct Model {
    /// Filled, unconsumed bytes.
    filled: Vec<u8>,
    /// What the last `lend` consumed, until the loan ends.
    lent: Vec<u8>,
    /// The spare part of the read in flight.
    tail: Option<BytesMut>,
    /// Spare parts of reads abandoned to the kernel, which may still
    /// write into them.
    abandoned: Vec<BytesMut>,
    /// Frames a decoder split off, with the bytes they must still hold.
    frames: Vec<(Bytes, Vec<u8>)>,
}

/// The naive search: the first `delim`, if within `max`; else too long
/// once more than `max` bytes are filled.
fn naive_find(filled: &[u8], delim: u8, max: usize) -> Found {
    match filled.iter().position(|&b| b == delim) {
        Some(i) if i <= max => Found::At(i),
        _ if filled.len() > max => Found::TooLong,
        _ => Found::NeedMore,
    }
}

/// Address range of memory.
fn range(ptr: *const u8, len: usize) -> std::ops::Range<usize> {
    ptr as usize..ptr as usize + len
}

fn disjoint(a: &std::ops::Range<usize>, b: &std::ops::Range<usize>) -> bool {
    a.is_empty() || b.is_empty() || a.end <= b.start || b.end <= a.start
}

/// Appends up to `src.len()` bytes without growing `dst`: the kernel
/// writes only into the room it was given.
fn kernel_write(dst: &mut BytesMut, src: &[u8]) {
    let n = src.len().min(dst.capacity() - dst.len());
    let before = dst.as_ptr();
    dst.extend_from_slice(&src[..n]);
    assert_eq!(dst.as_ptr(), before, "a kernel write never moves memory");
}

/// Applies one operation to the buffer and the model.
fn step(b: &mut ReadBuffer, m: &mut Model, op: Op) -> Result<(), TestCaseError> {
    match op {
        Op::Read(min, bytes) => {
            if m.tail.is_none() {
                step(b, m, Op::TakeSpare(min))?;
                step(b, m, Op::KernelWrite(bytes))?;
                step(b, m, Op::PutBack)?;
            }
        }
        Op::TakeSpare(min) => take_spare(b, m, min)?,
        Op::KernelWrite(bytes) => {
            for t in &mut m.abandoned {
                kernel_write(t, &[0xEE; 16]);
            }
            if let Some(t) = m.tail.as_mut() {
                kernel_write(t, &bytes);
            }
        }
        Op::PutBack => {
            if let Some(t) = m.tail.take() {
                m.filled.extend_from_slice(&t);
                b.put_back(t);
            }
        }
        Op::Consume(n) => {
            b.consume(n);
            m.filled.drain(..n.min(m.filled.len()));
            m.lent.clear();
        }
        Op::Lend(n) => {
            let n = n % (m.filled.len() + 1);
            b.lend(n);
            m.lent = m.filled.drain(..n).collect();
        }
        Op::Settle => {
            b.settle();
            m.lent.clear();
        }
        Op::Find(delim, max) => {
            prop_assert_eq!(b.find(delim, max), naive_find(&m.filled, delim, max));
        }
        Op::LendRecord(delim, max) => {
            let got = b.lend_record(delim, max);
            m.lent.clear();
            if let Found::At(i) = naive_find(&m.filled, delim, max) {
                prop_assert_eq!(got, Some(i));
                m.lent = m.filled.drain(..=i).collect();
            } else {
                prop_assert_eq!(got, None);
            }
        }
        Op::Decode(d) => decode(b, m, d)?,
        Op::Discard => {
            if let Some(t) = m.tail.take() {
                m.abandoned.push(t);
            }
            prop_assert_eq!(b.discard(), m.filled.len());
            m.filled.clear();
            m.lent.clear();
        }
    }
    check(b, m)
}

/// `take_spare(min)`, when no read is in flight (one at a time).
fn take_spare(b: &mut ReadBuffer, m: &mut Model, min: usize) -> Result<(), TestCaseError> {
    if m.tail.is_some() {
        return Ok(());
    }
    let want = if m.filled.is_empty() {
        b.capacity().max(min)
    } else {
        min.max(1)
    };
    let tail = b.take_spare(min);
    prop_assert!(tail.is_empty());
    prop_assert!(tail.capacity() >= want, "room {} < {want}", tail.capacity());
    prop_assert_eq!(b.spare(), 0, "the spare part belongs to the read");
    m.lent.clear();
    m.tail = Some(tail);
    Ok(())
}

/// `bytes_mut()`, then what a decoder does to it.
fn decode(b: &mut ReadBuffer, m: &mut Model, d: Decode) -> Result<(), TestCaseError> {
    let data = b.bytes_mut();
    prop_assert_eq!(&data[..], &m.filled[..]);
    m.lent.clear();
    match d {
        Decode::Nothing => {}
        Decode::SplitTo(k) => {
            let k = k % (data.len() + 1);
            let frame = data.split_to(k).freeze();
            let expect: Vec<u8> = m.filled.drain(..k).collect();
            m.frames.push((frame, expect));
        }
        Decode::Advance(k) => {
            let k = k.min(data.len());
            data.advance(k);
            m.filled.drain(..k);
        }
        Decode::Reserve(k) => data.reserve(k),
    }
    Ok(())
}

/// What must hold after every operation.
fn check(b: &ReadBuffer, m: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(b.filled(), &m.filled[..]);
    prop_assert_eq!(b.lent(), &m.lent[..]);
    for (frame, expect) in &m.frames {
        prop_assert_eq!(&frame[..], &expect[..], "a frame handed out changed");
    }
    // Memory the kernel may write is never part of the reader's buffer.
    let own = range(b.filled().as_ptr(), b.filled().len() + b.spare());
    let lent = range(b.lent().as_ptr(), b.lent().len());
    for t in m.tail.iter().chain(&m.abandoned) {
        let kernel = range(t.as_ptr(), t.capacity());
        prop_assert!(disjoint(&own, &kernel), "read room overlaps the buffer");
        prop_assert!(disjoint(&lent, &kernel), "read room overlaps a loan");
        for (frame, _) in &m.frames {
            let f = range(frame.as_ptr(), frame.len());
            prop_assert!(disjoint(&f, &kernel), "read room overlaps a frame");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Whatever the order of reads, consumes, loans, searches and
    /// decodes, the buffer holds exactly the model's bytes.
    #[test]
    fn matches_the_model(cap in 1usize..32, ops in prop::collection::vec(op(), 1..60)) {
        let mut b = ReadBuffer::new(cap);
        let mut m = Model::default();
        for op in ops {
            step(&mut b, &mut m, op)?;
        }
        if let Some(t) = m.tail.take() {
            m.filled.extend_from_slice(&t);
            b.put_back(t);
        }
        prop_assert_eq!(b.filled(), &m.filled[..]);
    }
}
