//! A reader's buffer.

use bytes::{Buf, BytesMut};

/// Result of looking for a record in the filled bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// The delimiter is at this index of `filled()`.
    At(usize),
    /// No delimiter yet; more bytes are needed.
    NeedMore,
    /// No delimiter within the maximum record length.
    TooLong,
}

/// The filled bytes of a reader and the spare room for the next read.
///
/// Consuming only moves `head`; the `BytesMut` is advanced past consumed
/// bytes lazily, when a read or a decoder needs it, so a record costs an
/// integer add rather than buffer bookkeeping.
///
/// Invariants: `lent <= head <= data.len()`; `scanned <= filled().len()`;
/// while a read is in flight, `data.capacity() == data.len()` (the spare part
/// belongs to the operation).
#[derive(Debug)]
pub(crate) struct ReadBuffer {
    /// Filled bytes from its start; spare capacity receives the next read.
    data: BytesMut,
    /// Leading bytes of `data` consumed but not yet advanced out of it.
    head: usize,
    /// The last `lent` bytes before `head` were lent out by a borrowing call
    /// (`next_line`...) and stay readable until the next call.
    lent: usize,
    /// Leading bytes of `filled()` already searched for `scan_delim`
    /// without finding it, so a growing record is scanned once.
    scanned: usize,
    /// The delimiter `scanned` refers to (a search for another starts over).
    scan_delim: u8,
    /// Size the buffer is filled up to by one read.
    capacity: usize,
}

impl ReadBuffer {
    /// An empty buffer that reads up to `capacity` bytes at a time; memory is
    /// taken at the first read.
    pub(crate) fn new(capacity: usize) -> ReadBuffer {
        ReadBuffer {
            data: BytesMut::new(),
            head: 0,
            lent: 0,
            scanned: 0,
            scan_delim: b'\n',
            capacity: capacity.max(1),
        }
    }

    /// Every filled byte is consumed and no loan is out.
    #[inline]
    pub(crate) fn is_drained(&self) -> bool {
        self.head == self.data.len() && self.lent == 0
    }

    /// Whether the buffer holds memory (filled, consumed or spare).
    #[inline]
    pub(crate) fn has_memory(&self) -> bool {
        self.data.capacity() > 0
    }

    /// Puts `data` in place of the memory and returns the old memory. The
    /// filled bytes become `data`'s bytes, which must start with the
    /// current filled bytes (so a search's progress stays valid), and no
    /// loan is out afterwards.
    pub(crate) fn replace(&mut self, data: BytesMut) -> BytesMut {
        debug_assert!(
            data.starts_with(self.filled()),
            "replace drops filled bytes"
        );
        self.head = 0;
        self.lent = 0;
        std::mem::replace(&mut self.data, data)
    }

    /// Appends `bytes` to the filled bytes (consumed bytes are dropped
    /// first, so only the unconsumed ones and `bytes` stay).
    pub(crate) fn append(&mut self, bytes: &[u8]) {
        self.compact();
        self.data.extend_from_slice(bytes);
    }

    /// Size of one read.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes filled and not consumed.
    #[inline]
    pub(crate) fn filled(&self) -> &[u8] {
        &self.data[self.head..]
    }

    /// The bytes lent out by the last borrowing call.
    #[inline]
    pub(crate) fn lent(&self) -> &[u8] {
        &self.data[self.head - self.lent..self.head]
    }

    /// Ends the loan of the last borrowing call.
    #[inline]
    pub(crate) fn settle(&mut self) {
        self.lent = 0;
    }

    /// Marks `n` filled bytes consumed (clamped to what is filled).
    #[inline]
    pub(crate) fn consume(&mut self, n: usize) {
        self.lent = 0;
        let n = n.min(self.data.len() - self.head);
        self.head += n;
        self.scanned = self.scanned.saturating_sub(n);
    }

    /// Consumes `n` filled bytes but lends them out: they stay readable
    /// through [`ReadBuffer::lent`] until the next call.
    #[inline]
    pub(crate) fn lend(&mut self, n: usize) {
        self.consume(n);
        self.lent = n.min(self.head);
        self.scanned = 0;
    }

    /// Drops consumed bytes from the front of `data`.
    fn compact(&mut self) {
        self.lent = 0;
        if self.head > 0 {
            self.data.advance(self.head);
            self.head = 0;
        }
    }

    /// The filled bytes as the `BytesMut` a decoder works on.
    pub(crate) fn bytes_mut(&mut self) -> &mut BytesMut {
        self.compact();
        self.scanned = 0;
        &mut self.data
    }

    /// Spare capacity after the filled bytes.
    #[inline]
    pub(crate) fn spare(&self) -> usize {
        self.data.capacity() - self.data.len()
    }

    /// Looks for `delim` in the filled bytes, within `max` bytes of the start.
    #[inline]
    pub(crate) fn find(&mut self, delim: u8, max: usize) -> Found {
        if delim != self.scan_delim {
            self.scan_delim = delim;
            self.scanned = 0;
        }
        let filled = &self.data[self.head..];
        let limit = filled.len().min(max.saturating_add(1));
        let from = self.scanned.min(limit);
        match memchr::memchr(delim, &filled[from..limit]) {
            Some(i) => Found::At(from + i),
            None if filled.len() > max => Found::TooLong,
            None => {
                self.scanned = limit;
                Found::NeedMore
            }
        }
    }

    /// Splits off spare room of at least `min` bytes (and at least one read's
    /// worth when the buffer is empty) for a read; returns an empty
    /// `BytesMut` whose capacity is the room. Give it back with
    /// [`ReadBuffer::put_back`].
    pub(crate) fn take_spare(&mut self, min: usize) -> BytesMut {
        self.compact();
        let want = if self.data.is_empty() {
            self.capacity.max(min)
        } else {
            min.max(1)
        };
        if self.spare() < want {
            // Reclaims consumed room in place when the buffer is not shared
            // (no read in flight, no frame alive); else allocates anew. Memory
            // an operation owns is never moved: it holds its own handle.
            self.data.reserve(want);
        }
        self.data.split_off(self.data.len())
    }

    /// Joins a read's buffer back (O(1) when it is still adjacent).
    pub(crate) fn put_back(&mut self, tail: BytesMut) {
        self.data.unsplit(tail);
    }

    /// Drops every filled byte (for `into_inner`-like paths); returns how
    /// many there were.
    pub(crate) fn discard(&mut self) -> usize {
        let n = self.data.len() - self.head;
        self.data.clear();
        self.head = 0;
        self.lent = 0;
        self.scanned = 0;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled_with(bytes: &[u8], cap: usize) -> ReadBuffer {
        let mut b = ReadBuffer::new(cap);
        let mut tail = b.take_spare(bytes.len());
        tail.extend_from_slice(bytes);
        b.put_back(tail);
        b
    }

    #[test]
    fn find_scans_incrementally_and_bounds_records() {
        let mut b = filled_with(b"abc", 16);
        assert_eq!(b.find(b'\n', 8), Found::NeedMore);
        let mut tail = b.take_spare(4);
        tail.extend_from_slice(b"d\nxy");
        b.put_back(tail);
        assert_eq!(b.find(b'\n', 8), Found::At(4));
        b.lend(5);
        assert_eq!(b.lent(), b"abcd\n");
        assert_eq!(b.filled(), b"xy");
        b.settle();
        assert_eq!(b.find(b'\n', 1), Found::TooLong);
    }

    #[test]
    fn take_spare_never_shares_room_with_filled_bytes() {
        let mut b = filled_with(b"hello", 8);
        let tail = b.take_spare(8);
        assert!(tail.capacity() >= 8);
        assert_eq!(
            b.spare(),
            0,
            "spare room belongs to the read while in flight"
        );
        b.put_back(tail);
        assert_eq!(b.filled(), b"hello");
    }

    #[test]
    fn consume_clamps() {
        let mut b = filled_with(b"abc", 8);
        b.consume(10);
        assert!(b.filled().is_empty());
    }
}

/// Random sequences of the buffer's operations against a model: the filled
/// bytes are a `Vec<u8>`, a lend remembers what it consumed, a "kernel"
/// writes into the spare part split off by `take_spare` while the caller
/// keeps consuming, finding and decoding, and frames split off by a decoder
/// stay alive across later reads.
#[cfg(test)]
mod proptests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;

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

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0usize..48, bytes(40)).prop_map(|(min, b)| Op::Read(min, b)),
            3 => (0usize..48).prop_map(Op::TakeSpare),
            3 => bytes(40).prop_map(Op::KernelWrite),
            3 => Just(Op::PutBack),
            3 => prop_oneof![4 => 0usize..4, 1 => 0usize..48].prop_map(Op::Consume),
            2 => any::<usize>().prop_map(Op::Lend),
            1 => Just(Op::Settle),
            4 => (prop::sample::select(&b"\n\n\n\na\0"[..]), 0usize..24)
                .prop_map(|(d, m)| Op::Find(d, m)),
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
            Op::TakeSpare(min) => {
                if m.tail.is_some() {
                    return Ok(()); // one read in flight at a time
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
            }
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
            Op::Decode(d) => {
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
            }
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
}
