//! A writer's buffer.

use std::collections::VecDeque;
use std::io::IoSlice;

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
    /// Empty; its memory holds the next write's segments (the list comes
    /// back with the write's result), so a flush allocates nothing.
    spare_segs: Vec<Bytes>,
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
            spare_segs: Vec::new(),
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
        let mut segs = std::mem::take(&mut self.spare_segs);
        segs.reserve(self.leftover.len().min(max) + 1);
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
    pub(crate) fn written(&mut self, mut segs: Vec<Bytes>, mut n: usize) {
        for seg in &mut segs {
            let k = n.min(seg.len());
            seg.advance(k);
            n -= k;
        }
        segs.retain(|seg| !seg.is_empty());
        self.restore(segs);
    }

    /// The first up to `N` pieces of what waits, in order (leftovers, then
    /// the accepting part), for a send straight from the buffer; how many.
    pub(crate) fn slices<'a, const N: usize>(&'a self, out: &mut [IoSlice<'a>; N]) -> usize {
        let mut n = 0;
        let rest = self.leftover.iter().map(|s| &s[..]);
        for piece in rest.chain(std::iter::once(&self.buf[..])) {
            if n == N {
                break;
            }
            if !piece.is_empty() {
                out[n] = IoSlice::new(piece);
                n += 1;
            }
        }
        n
    }

    /// The kernel took the first `n` bytes of what waits (a send straight
    /// from the buffer, [`slices`](WriteBuffer::slices)).
    pub(crate) fn consume(&mut self, mut n: usize) {
        while n > 0
            && let Some(seg) = self.leftover.front_mut()
        {
            let k = n.min(seg.len());
            seg.advance(k);
            self.leftover_len -= k;
            n -= k;
            if seg.is_empty() {
                self.leftover.pop_front();
            }
        }
        self.buf.advance(n);
    }

    /// Returns all of `segs`, unwritten (after an error), in front of what is
    /// still waiting; the emptied list is kept for the next write.
    pub(crate) fn restore(&mut self, mut segs: Vec<Bytes>) {
        for seg in segs.drain(..).rev() {
            self.leftover_len += seg.len();
            self.leftover.push_front(seg);
        }
        if segs.capacity() > self.spare_segs.capacity() {
            self.spare_segs = segs;
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
    fn consume_takes_leftovers_first_then_the_accepted_bytes() {
        let mut w = WriteBuffer::new(16);
        w.accept(b"abc");
        let segs = w.take_segments(4);
        w.accept(b"defg");
        w.written(segs, 1);
        let mut io = [IoSlice::new(&[]); 4];
        let n = w.slices(&mut io);
        let all: Vec<u8> = io[..n].iter().flat_map(|s| s.to_vec()).collect();
        assert_eq!(all, b"bcdefg");
        w.consume(3);
        assert_eq!(w.len(), 3);
        assert_eq!(&w.take_all()[..], b"efg");
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

/// Random sequences of the writer's bookkeeping against a model: what the
/// "kernel" wrote, plus what is in flight, plus what is left, is always
/// everything accepted, in order, with nothing lost or duplicated.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    /// One call on the buffer, as the writer makes it.
    #[derive(Debug, Clone)]
    enum Op {
        /// `accept(bytes)`: takes what fits.
        Accept(Vec<u8>),
        /// `extend(bytes)`: takes all (`write_all`).
        Extend(Vec<u8>),
        /// `take_segments(max)`, when no write is in flight.
        Take(usize),
        /// The write in flight completes with this many bytes (modulo its
        /// length plus one): `written`.
        Written(usize),
        /// The write in flight fails: `restore`.
        Restore,
        /// `take_all`, when no write is in flight (`into_parts`).
        TakeAll,
        /// A send straight from the buffer (`slices`, then `consume` of
        /// this many bytes modulo their length plus one), when no write is
        /// in flight.
        SendNow(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        let bytes = || prop::collection::vec(any::<u8>(), 0..24);
        prop_oneof![
            4 => bytes().prop_map(Op::Accept),
            2 => bytes().prop_map(Op::Extend),
            3 => (1usize..5).prop_map(Op::Take),
            3 => any::<usize>().prop_map(Op::Written),
            1 => Just(Op::Restore),
            1 => Just(Op::TakeAll),
            2 => any::<usize>().prop_map(Op::SendNow),
        ]
    }

    /// The model.
    #[derive(Default)]
    struct Model {
        /// Every byte accepted, in order.
        accepted: Vec<u8>,
        /// Every byte the kernel wrote (or `take_all` handed back), in order.
        out: Vec<u8>,
        /// The segments of the write in flight.
        inflight: Option<Vec<Bytes>>,
    }

    impl Model {
        fn inflight_len(&self) -> usize {
            self.inflight.iter().flatten().map(Bytes::len).sum()
        }
    }

    fn concat(segs: &[Bytes]) -> Vec<u8> {
        segs.iter().flat_map(|s| s.iter().copied()).collect()
    }

    /// Applies one operation to the buffer and the model.
    fn step(w: &mut WriteBuffer, m: &mut Model, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Accept(src) => {
                let room = w.capacity().saturating_sub(w.len());
                let n = w.accept(&src);
                prop_assert_eq!(n, src.len().min(room));
                m.accepted.extend_from_slice(&src[..n]);
            }
            Op::Extend(src) => {
                w.extend(&src);
                m.accepted.extend_from_slice(&src);
            }
            Op::Take(max) => {
                if m.inflight.is_some() {
                    return Ok(()); // one write in flight at a time
                }
                let segs = w.take_segments(max);
                prop_assert!(segs.len() <= max);
                let from = m.out.len();
                let sent = concat(&segs);
                prop_assert_eq!(&sent[..], &m.accepted[from..from + sent.len()]);
                m.inflight = Some(segs);
            }
            Op::Written(n) => {
                if let Some(segs) = m.inflight.take() {
                    let sent = concat(&segs);
                    // The segments did not change while more was copied in.
                    let from = m.out.len();
                    prop_assert_eq!(&sent[..], &m.accepted[from..from + sent.len()]);
                    let n = n % (sent.len() + 1);
                    m.out.extend_from_slice(&sent[..n]);
                    w.written(segs, n);
                }
            }
            Op::Restore => {
                if let Some(segs) = m.inflight.take() {
                    w.restore(segs);
                }
            }
            Op::SendNow(n) => {
                if m.inflight.is_none() {
                    let mut io = [IoSlice::new(&[]); 2];
                    let k = w.slices(&mut io);
                    let sent: Vec<u8> = io[..k].iter().flat_map(|s| s.to_vec()).collect();
                    let from = m.out.len();
                    prop_assert_eq!(&sent[..], &m.accepted[from..from + sent.len()]);
                    let n = n % (sent.len() + 1);
                    m.out.extend_from_slice(&sent[..n]);
                    w.consume(n);
                }
            }
            Op::TakeAll => {
                if m.inflight.is_none() {
                    let rest = w.take_all();
                    prop_assert_eq!(&rest[..], &m.accepted[m.out.len()..]);
                    m.out.extend_from_slice(&rest);
                    prop_assert!(w.is_empty());
                }
            }
        }
        check(w, m)
    }

    /// What must hold after every operation.
    fn check(w: &WriteBuffer, m: &Model) -> Result<(), TestCaseError> {
        let waiting = m.accepted.len() - m.out.len() - m.inflight_len();
        prop_assert_eq!(w.len(), waiting);
        prop_assert_eq!(w.is_empty(), waiting == 0);
        prop_assert_eq!(w.room(), w.capacity().saturating_sub(waiting));
        prop_assert!(
            m.accepted.ends_with(w.unsent()),
            "unsent is the newest bytes"
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Written, in flight and waiting bytes always add up to everything
        /// accepted, in order; draining at the end gives back the rest.
        #[test]
        fn matches_the_model(cap in 1usize..48, ops in prop::collection::vec(op(), 1..60)) {
            let mut w = WriteBuffer::new(cap);
            let mut m = Model::default();
            for op in ops {
                step(&mut w, &mut m, op)?;
            }
            if let Some(segs) = m.inflight.take() {
                w.restore(segs);
            }
            let rest = w.take_all();
            m.out.extend_from_slice(&rest);
            prop_assert_eq!(&m.out, &m.accepted);
        }
    }
}
