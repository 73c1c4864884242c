//! A pooled reader's buffer: the reader's filled bytes, lying either in a
//! buffer lent by the runtime's pool (no copy) or in memory of the
//! reader's own (a record joined across pool buffers).
//!
//! ```text
//!   inbox ──push──► pool buffer ──drained──► back to the pool
//!                       │
//!        record spans   │ unpool / join: the unconsumed bytes move to the
//!        or reader waits▼ reader's own memory, the pool buffer goes back
//!                   own memory ──drained──► freed
//! ```

use std::ops::{Deref, DerefMut};
use std::rc::Rc;

use bytes::BytesMut;

use super::ReadBuffer;
use crate::driver::Pool;

/// A [`ReadBuffer`] whose memory is, at times, a buffer lent by the pool.
/// Read it through `Deref`; its own methods are the ones that may hand a
/// pool buffer back.
///
/// `repr(C)` with `buf` first: a reader's fill mode finds the buffer at the
/// same place in every mode, without a branch (`io/reader/fill.rs`).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct PooledBuffer {
    /// The filled bytes, as in any reader.
    buf: ReadBuffer,
    /// `Some`: `buf`'s memory is a buffer lent by this pool, given back once
    /// drained, before the reader waits, or when this is dropped. `None`:
    /// the memory is the reader's own, or there is none.
    origin: Option<Rc<Pool>>,
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        self.buf.discard();
        self.give_back(BytesMut::new());
    }
}

impl Deref for PooledBuffer {
    type Target = ReadBuffer;

    fn deref(&self) -> &ReadBuffer {
        &self.buf
    }
}

impl DerefMut for PooledBuffer {
    fn deref_mut(&mut self) -> &mut ReadBuffer {
        &mut self.buf
    }
}

impl PooledBuffer {
    /// `buf`, holding no pool buffer yet.
    pub(crate) fn new(buf: ReadBuffer) -> PooledBuffer {
        PooledBuffer { buf, origin: None }
    }

    /// Whether the filled bytes lie in a pool buffer.
    pub(crate) fn holds_pool_buffer(&self) -> bool {
        self.origin.is_some()
    }

    /// Puts `data` in place of the memory (which must start with the
    /// filled bytes) and hands a pool buffer it replaces back.
    fn give_back(&mut self, data: BytesMut) {
        let old = self.buf.replace(data);
        if let Some(pool) = self.origin.take() {
            pool.give_back(old);
        }
    }

    /// Marks `n` bytes consumed; memory drained by it is released at once.
    #[inline]
    pub(crate) fn consume(&mut self, n: usize) {
        self.buf.consume(n);
        self.release_drained();
    }

    /// After the caller consumed everything: a pool buffer goes back to
    /// the pool at once, and memory of the reader's own is freed, so an
    /// idle reader holds no memory.
    pub(crate) fn release_drained(&mut self) {
        if self.buf.is_drained() && self.buf.has_memory() {
            self.give_back(BytesMut::new());
        }
    }

    /// The reader is about to wait for more bytes: unconsumed bytes still
    /// in a pool buffer move to memory of the reader's own (only those
    /// bytes), and the buffer goes back. A reader waiting on its peer
    /// mid-record then holds no pool buffer, and readers that each hold
    /// part of a record cannot keep the pool dry for one another. The copy
    /// is the one joining the record would make anyway.
    pub(crate) fn unpool(&mut self) {
        if self.holds_pool_buffer() {
            let own = BytesMut::from(self.buf.filled());
            self.give_back(own);
        }
    }

    /// Takes a received pool buffer as the reader's memory, with no copy;
    /// everything before must be consumed. It goes back to `pool` once
    /// drained.
    pub(crate) fn push(&mut self, chunk: BytesMut, pool: &Rc<Pool>) {
        debug_assert!(self.buf.filled().is_empty(), "push onto unconsumed bytes");
        self.buf.settle();
        self.give_back(chunk);
        self.origin = Some(pool.clone());
    }

    /// Joins `bytes` (the front of the next received buffer) to the
    /// unconsumed bytes of a record that spans buffers. The record is
    /// joined in memory of the reader's own, which holds only the record:
    /// the caller passes no more of the next buffer than the record needs.
    pub(crate) fn join(&mut self, bytes: &[u8]) {
        self.unpool();
        self.buf.append(bytes);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::driver::PoolConfig;

    /// A user-space pool of four 8-byte buffers.
    fn pool() -> Rc<Pool> {
        Rc::new(Pool::user(
            PoolConfig::new().buffer_size(8).buffers(4).max_buffers(4),
        ))
    }

    /// A pool buffer holding `bytes`, as a receive hands it out.
    fn received(pool: &Pool, bytes: &[u8]) -> BytesMut {
        let (bid, ptr, len) = pool.select().expect("a free buffer");
        assert!(bytes.len() <= len);
        // SAFETY: `ptr` is valid for `len` bytes and picked for this
        // receive alone until it is booked just below.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, bytes.len()) };
        let mut out = VecDeque::new();
        // IORING_CQE_F_BUFFER, with the buffer id in the upper half.
        pool.receive(1 | u32::from(bid) << 16, bytes.len(), &mut out);
        out.pop_front().expect("the booked buffer")
    }

    /// Buffers lent out of the pool.
    fn out(pool: &Pool) -> usize {
        pool.stats().out
    }

    #[test]
    fn a_drained_pool_buffer_goes_back_at_once() {
        let pool = pool();
        let mut b = PooledBuffer::new(ReadBuffer::new(16));
        b.push(received(&pool, b"hello"), &pool);
        assert_eq!((b.filled(), out(&pool)), (&b"hello"[..], 1));
        assert!(b.holds_pool_buffer());
        b.consume(4);
        assert_eq!(out(&pool), 1, "one byte is still unconsumed");
        b.consume(1);
        assert_eq!(out(&pool), 0);
        assert!(!b.holds_pool_buffer() && !b.has_memory());
    }

    #[test]
    fn unpool_keeps_the_bytes_and_returns_the_buffer() {
        let pool = pool();
        let mut b = PooledBuffer::new(ReadBuffer::new(16));
        b.push(received(&pool, b"abc"), &pool);
        b.consume(1);
        b.unpool();
        assert_eq!((b.filled(), out(&pool)), (&b"bc"[..], 0));
        assert!(!b.holds_pool_buffer());
        b.consume(2);
        assert!(!b.has_memory(), "own memory is freed once drained");
    }

    #[test]
    fn join_copies_only_the_record() {
        let pool = pool();
        let mut b = PooledBuffer::new(ReadBuffer::new(16));
        b.push(received(&pool, b"xab"), &pool);
        b.consume(1);
        let mut next = received(&pool, b"c\nde");
        b.join(&next[..2]);
        bytes::Buf::advance(&mut next, 2);
        assert_eq!(b.filled(), b"abc\n");
        assert_eq!(out(&pool), 1, "only the next buffer is still lent");
        b.consume(4);
        b.push(next, &pool);
        assert_eq!(b.filled(), b"de");
        drop(b);
        assert_eq!(out(&pool), 0, "dropping gives the pool buffer back");
    }
}
