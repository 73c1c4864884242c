//! A reader's buffer.

use bytes::{Buf, BytesMut};

mod delim;
mod search;

use delim::BLOCK;

/// `hits_at` when no block mask is cached: no search starts at or after
/// it, and it has room for a block after it.
const NO_HITS: usize = usize::MAX - BLOCK;

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
/// belongs to the operation); unless `hits_at == NO_HITS`,
/// `hits_at + 64 <= data.len()` and `hits` marks where `scan_delim` lies in
/// `data[hits_at..hits_at + 64]` (so anything that moves or rewrites the
/// bytes of `data` drops the mask).
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
    /// The delimiter `scanned` and `hits` refer to (a search for another
    /// starts over).
    scan_delim: u8,
    /// Bit `j`: `data[hits_at + j] == scan_delim`, for the 64 bytes from
    /// `hits_at`. Records shorter than 64 bytes are found from this mask
    /// without another search.
    hits: u64,
    /// Index into `data` of the bytes `hits` covers, or `NO_HITS`.
    hits_at: usize,
    /// The last record the fast path found lay past the masks it reads
    /// first: the next search goes to `memchr` at once (records of a
    /// stream tend to be alike, and long ones gain nothing from masks). A
    /// hint only; any value is correct.
    long: bool,
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
            hits: 0,
            hits_at: NO_HITS,
            long: false,
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
        self.hits_at = NO_HITS;
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

    /// The bytes lent out by the last borrowing call (the tests' view;
    /// the reader reads them with [`lent_record`](ReadBuffer::lent_record)).
    #[cfg(test)]
    pub(crate) fn lent(&self) -> &[u8] {
        &self.data[self.head - self.lent..self.head]
    }

    /// The first `len` bytes the last borrowing call lent out (a record
    /// without its delimiter).
    #[inline]
    pub(crate) fn lent_record(&self, len: usize) -> &[u8] {
        let start = self.head - self.lent;
        &self.data[start..start + len]
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
            self.hits_at = NO_HITS;
        }
    }

    /// The filled bytes as the `BytesMut` a decoder works on.
    pub(crate) fn bytes_mut(&mut self) -> &mut BytesMut {
        self.compact();
        self.scanned = 0;
        self.hits_at = NO_HITS;
        &mut self.data
    }

    /// Spare capacity after the filled bytes.
    #[inline]
    pub(crate) fn spare(&self) -> usize {
        self.data.capacity() - self.data.len()
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
        self.hits_at = NO_HITS;
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

#[cfg(test)]
mod proptests;
