//! Finding records in a [`ReadBuffer`]: the general search
//! ([`find`](ReadBuffer::find)) and the fast path of the borrowing calls
//! ([`lend_record`](ReadBuffer::lend_record)).
//!
//! Both read the bytes through 64-byte delimiter masks (`delim.rs`) where
//! they can: one mask costs about 20 instructions and answers every record
//! that ends within its 64 bytes, where a `memchr` call costs about 75
//! before its first compare. A mask is cached (`hits`, `hits_at`) until
//! the bytes move; a search that runs past it takes the next 64 bytes
//! (masks tile the buffer instead of restarting at each record), and only
//! a record longer than [`LONG`] bytes goes to `memchr`. After
//! such a long record the next search starts with `memchr` (`long`): on
//! 1 KiB lines masks would only add to its work.
//!
//! ```text
//!  data:  ... consumed │ record\n record\n rec ...│ord\n ...        filled
//!                      ^ head + scanned          │
//!                 hits_at ─► [ 64 bytes masked ] ─► [ next 64 ] ─► memchr
//! ```

use super::delim::{self, BLOCK};
use super::{Found, NO_HITS, ReadBuffer};

/// Bytes of a record the fast path reads through masks before it leaves
/// the rest to `memchr` (whose wider loop wins past a few blocks): a record
/// at least this long is `long`.
const LONG: usize = 4 * BLOCK;

impl ReadBuffer {
    /// The fast path of a borrowing record search: ends the last loan and,
    /// when the filled bytes hold `delim` within `max` bytes of their start,
    /// lends out the record through it and returns its length without the
    /// delimiter (read it with [`lent_record`](ReadBuffer::lent_record)).
    /// `None` changes nothing but the loan and the search's progress; the
    /// caller then takes the general path.
    #[inline]
    pub(crate) fn lend_record(&mut self, delim: u8, max: usize) -> Option<usize> {
        let Some(i) = self.find_record(delim, max) else {
            self.lent = 0;
            return None;
        };
        // `find_record` returns `i < filled().len()`, so `head` stays in
        // bounds.
        self.head += i + 1;
        self.lent = i + 1;
        self.scanned = 0;
        Some(i)
    }

    /// Where the next `delim` is, within `max` bytes of the filled bytes'
    /// start. The common case inline: the 64 bytes from where the search
    /// starts are masked (cached, or masked now); the rest out of line.
    #[inline]
    fn find_record(&mut self, delim: u8, max: usize) -> Option<usize> {
        let start = self.head + self.scanned;
        let ahead = if delim != self.scan_delim {
            return self.find_far(delim, max);
        } else if start.wrapping_sub(self.hits_at) < BLOCK {
            // `hits_at <= start < hits_at + BLOCK` (never for `NO_HITS`).
            self.hits >> (start - self.hits_at)
        } else if self.long {
            return self.find_past(start, max);
        } else if let Some(block) = self.data.get(start..start + BLOCK) {
            let block: &[u8; BLOCK] = block.try_into().expect("BLOCK bytes");
            self.hits = delim::mask(block, delim);
            self.hits_at = start;
            self.hits
        } else {
            return self.find_far(delim, max);
        };
        if ahead == 0 {
            return self.find_past(self.hits_at + BLOCK, max);
        }
        let i = start - self.head + ahead.trailing_zeros() as usize;
        (i <= max).then_some(i)
    }

    /// No `scan_delim` from the search's start to `from` (an index into
    /// `data`): reads on with masks up to [`LONG`] bytes into the record
    /// (unless the last record was `long`), then with `memchr`, within
    /// `max`. Records the progress when there is no delimiter, and whether
    /// the record was long.
    #[inline(never)]
    fn find_past(&mut self, mut from: usize, max: usize) -> Option<usize> {
        let len = self.data.len() - self.head;
        let end = self.head + len.min(max.saturating_add(1));
        let masks_end = if self.long { 0 } else { self.head + LONG };
        while from < masks_end {
            let Some(block) = self
                .data
                .get(from..end)
                .and_then(|b| b.first_chunk::<BLOCK>())
            else {
                break;
            };
            self.hits = delim::mask(block, self.scan_delim);
            self.hits_at = from;
            if self.hits != 0 {
                return Some(from - self.head + self.hits.trailing_zeros() as usize);
            }
            from += BLOCK;
        }
        let Some(i) = memchr::memchr(
            self.scan_delim,
            self.data.get(from..end).unwrap_or_default(),
        ) else {
            self.scanned = end - self.head;
            return None;
        };
        let i = from + i - self.head;
        self.long = i >= LONG;
        Some(i)
    }

    /// The general search, for what the fast path does not cover.
    #[inline(never)]
    fn find_far(&mut self, delim: u8, max: usize) -> Option<usize> {
        match self.find(delim, max) {
            Found::At(i) => Some(i),
            Found::NeedMore | Found::TooLong => None,
        }
    }

    /// Looks for `delim` in the filled bytes, within `max` bytes of the start.
    #[inline]
    pub(crate) fn find(&mut self, delim: u8, max: usize) -> Found {
        if delim != self.scan_delim {
            self.scan_delim = delim;
            self.scanned = 0;
            self.hits_at = NO_HITS;
        }
        let len = self.data.len() - self.head;
        let limit = len.min(max.saturating_add(1));
        let from = self.scanned.min(limit);
        match self.search(self.head + from, self.head + limit) {
            Some(at) => Found::At(at - self.head),
            None if len > max => Found::TooLong,
            None => {
                self.scanned = limit;
                Found::NeedMore
            }
        }
    }

    /// Index into `data` of the first `scan_delim` in `data[start..end]`.
    /// The 64 bytes from `start` are read through a block mask (the cached
    /// one, or one made now when that many are filled), the rest with
    /// `memchr`.
    #[inline]
    fn search(&mut self, start: usize, end: usize) -> Option<usize> {
        let delim = self.scan_delim;
        let cached =
            self.hits_at != NO_HITS && (self.hits_at..self.hits_at + BLOCK).contains(&start);
        if !cached {
            let Some(block) = self.data[start..].first_chunk::<BLOCK>() else {
                let i = memchr::memchr(delim, &self.data[start..end])?;
                return Some(start + i);
            };
            self.hits = delim::mask(block, delim);
            self.hits_at = start;
        }
        let ahead = self.hits >> (start - self.hits_at);
        if ahead != 0 {
            let at = start + ahead.trailing_zeros() as usize;
            return (at < end).then_some(at);
        }
        let next = self.hits_at + BLOCK;
        if next >= end {
            return None;
        }
        let i = memchr::memchr(delim, &self.data[next..end])?;
        Some(next + i)
    }
}
