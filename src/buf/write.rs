//! A writer's buffer.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

/// Bytes accepted from the caller and not yet written by the kernel, apart
/// from those in the operation in flight (which owns its segments).
///
/// ```text
///   leftover (sent first)          buf (accepting)
///  ┌────────┐┌────────┐          ┌───────────────┬──────────┐
///  │ seg    ││ seg    │   then   │ accepted      │ room     │
///  └────────┘└────────┘          └───────────────┴──────────┘
/// ```
///
/// Invariant: `leftover_len` is the sum of the lengths in `leftover`.
#[derive(Debug)]
pub(crate) struct WriteBuffer {
    /// Segments handed to the kernel before but not written (a short write,
    /// or an error): they go out first.
    leftover: VecDeque<Bytes>,
    /// Total bytes in `leftover`.
    leftover_len: usize,
    /// Bytes accepted and not yet handed to the kernel.
    buf: BytesMut,
    /// Bytes the buffer accepts before `write` waits.
    capacity: usize,
}

impl WriteBuffer {
    /// A buffer accepting up to `capacity` bytes; memory is taken at the
    /// first write.
    pub(crate) fn new(capacity: usize) -> WriteBuffer {
        WriteBuffer {
            leftover: VecDeque::new(),
            leftover_len: 0,
            buf: BytesMut::new(),
            capacity: capacity.max(1),
        }
    }

    /// Bytes accepted before `write` waits.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes waiting to be handed to the kernel.
    pub(crate) fn len(&self) -> usize {
        self.leftover_len + self.buf.len()
    }

    /// Nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many more bytes `accept` takes now.
    pub(crate) fn room(&self) -> usize {
        self.capacity.saturating_sub(self.len())
    }

    /// The bytes not yet handed to the kernel, in order, as one slice when
    /// there is no leftover (else only the accepting part).
    pub(crate) fn unsent(&self) -> &[u8] {
        &self.buf
    }

    /// Copies in as much of `src` as there is room for.
    pub(crate) fn accept(&mut self, src: &[u8]) -> usize {
        let n = src.len().min(self.room());
        self.extend(&src[..n]);
        n
    }

    /// Copies in all of `src`, past the capacity if need be.
    pub(crate) fn extend(&mut self, src: &[u8]) {
        if self.buf.capacity() - self.buf.len() < src.len() {
            self.buf.reserve(
                src.len()
                    .max(self.capacity - self.buf.len().min(self.capacity)),
            );
        }
        self.buf.extend_from_slice(src);
    }

    /// Takes up to `max` segments for one vectored write: leftovers first,
    /// then everything accepted (frozen, so later copies never touch it).
    pub(crate) fn take_segments(&mut self, max: usize) -> Vec<Bytes> {
        let mut segs = Vec::with_capacity(self.leftover.len().min(max) + 1);
        while segs.len() < max {
            match self.leftover.pop_front() {
                Some(s) => {
                    self.leftover_len -= s.len();
                    segs.push(s);
                }
                None => break,
            }
        }
        if segs.len() < max && !self.buf.is_empty() {
            segs.push(self.buf.split().freeze());
        }
        segs
    }

    /// The kernel wrote `n` bytes of `segs`: the rest goes back to the front.
    pub(crate) fn written(&mut self, segs: Vec<Bytes>, mut n: usize) {
        let mut rest = Vec::new();
        for mut seg in segs {
            if n >= seg.len() {
                n -= seg.len();
                continue;
            }
            seg.advance(n);
            n = 0;
            rest.push(seg);
        }
        self.restore(rest);
    }

    /// Returns all of `segs`, unwritten (after an error), in front of what is
    /// still waiting.
    pub(crate) fn restore(&mut self, segs: Vec<Bytes>) {
        for seg in segs.into_iter().rev() {
            self.leftover_len += seg.len();
            self.leftover.push_front(seg);
        }
    }

    /// Everything not yet written, in order, as one buffer.
    pub(crate) fn take_all(&mut self) -> BytesMut {
        let mut out = BytesMut::with_capacity(self.len());
        for seg in self.leftover.drain(..) {
            out.extend_from_slice(&seg);
        }
        self.leftover_len = 0;
        out.extend_from_slice(&self.buf);
        self.buf.clear();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_write_resends_the_rest_first_in_order() {
        let mut w = WriteBuffer::new(8);
        assert_eq!(w.accept(b"hello world"), 8);
        let segs = w.take_segments(4);
        assert_eq!(segs.len(), 1);
        w.accept(b"XY");
        w.written(segs, 3);
        let again = w.take_segments(4);
        let all: Vec<u8> = again.iter().flat_map(|b| b.to_vec()).collect();
        assert_eq!(all, b"lo woXY");
    }

    #[test]
    fn restore_after_error_keeps_order() {
        let mut w = WriteBuffer::new(16);
        w.accept(b"abc");
        let segs = w.take_segments(4);
        w.accept(b"def");
        w.restore(segs);
        assert_eq!(&w.take_all()[..], b"abcdef");
    }
}
