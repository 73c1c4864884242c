//! The pooled mode of [`BufReader`](super::BufReader): receives land in
//! buffers the kernel picks from the runtime's pool when data arrives.
//!
//! One multishot receive stays armed while the caller wants bytes; each
//! completion names a pool buffer. Into an empty reader the pool buffer
//! itself becomes the reader's buffer, so `fill_buf` lends from it and a
//! frame cut from it leaves without a copy; a record that spans buffers is
//! joined in memory of the reader's own, taking from the next buffer only
//! what the record needs (through the delimiter a record search looks for),
//! so the rest of that buffer is still lent without a copy afterwards. A
//! drained buffer goes back to the pool at once.
//!
//! A reader about to wait for more bytes moves the unconsumed part of a
//! pool buffer into memory of its own first (the copy that joining the
//! record would make anyway), so a reader waiting on its peer holds no pool
//! buffer, and readers holding parts of records cannot keep the pool dry
//! for each other.
//!
//! Completions not yet collected queue in the driver, at most
//! [`PoolConfig::per_reader`](crate::PoolConfig::per_reader) of them: at the
//! cap the receive is paused and armed again only when the caller asks for
//! more. Running out of buffers grows the pool, or waits for a buffer to
//! come back, and arms again: bytes wait in the socket meanwhile, so
//! nothing is lost and the connection stays up.

use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::BytesMut;

use super::fill::Stop;
use crate::buf::{PooledBuffer, ReadBuffer};
use crate::driver::{Inbox, Pool};
use crate::op::{Multishot, RecvOutcome, RecvPool, Spare};
use crate::source::ReadSource;

/// A pooled reader's buffer and receive.
/// `repr(C)` with the buffer first field (see `Fill`).
#[derive(Debug)]
#[repr(C)]
pub(super) struct PooledFill {
    /// The filled bytes, in a pool buffer or the reader's own memory.
    buf: PooledBuffer,
    /// The runtime's pool.
    pool: Rc<Pool>,
    /// Buffers received and not yet taken into `buf`, booked as
    /// completions are reaped (so in the order, and ahead of, the
    /// completions that report them).
    inbox: Rc<Inbox>,
    /// The armed receive; `None` once it ended (arm again for more).
    recv: Option<Multishot<RecvPool>>,
    /// The memory of the last receive, for the next.
    spare: Spare<RecvPool>,
    /// The last receive ended for want of buffers: wait for a free one
    /// before arming again. Only set while `recv` is `None`.
    starved: bool,
}

impl PooledFill {
    /// The pooled mode over `pool`, reading into `buf` (empty).
    pub(super) fn new(buf: ReadBuffer, pool: Rc<Pool>) -> PooledFill {
        PooledFill {
            buf: PooledBuffer::new(buf),
            inbox: Rc::new(Inbox::new(pool.clone())),
            pool,
            recv: None,
            spare: Spare::new(),
            starved: false,
        }
    }

    /// The buffer.
    #[inline]
    pub(super) fn buf(&self) -> &ReadBuffer {
        &self.buf
    }

    /// The buffer, mutably.
    #[inline]
    pub(super) fn buf_mut(&mut self) -> &mut ReadBuffer {
        &mut self.buf
    }

    /// Marks `n` bytes consumed; a drained pool buffer goes back at once.
    #[inline]
    pub(super) fn consume(&mut self, n: usize) {
        self.buf.consume(n);
    }

    /// Moves received buffers from the inbox into the buffer until it
    /// holds `n` bytes or the inbox is empty; `delim` is the delimiter a
    /// record search looks for, if it is one.
    pub(super) fn gather(&mut self, n: usize, delim: Option<u8>) {
        loop {
            self.buf.release_drained();
            let have = self.buf.filled().len();
            if have >= n {
                return;
            }
            let Some(chunk) = self.inbox.pop() else {
                return;
            };
            if have == 0 {
                self.buf.push(chunk, &self.pool);
            } else {
                self.join(chunk, n - have, delim);
            }
        }
    }

    /// A record spans buffers: joins only what it needs of `chunk` (through
    /// the delimiter a record search looks for, or the `need` bytes asked
    /// for); the rest stays a pool buffer, lent without a copy once the
    /// joined record is consumed.
    fn join(&mut self, mut chunk: BytesMut, need: usize, delim: Option<u8>) {
        let take = record_part(&chunk, need, delim);
        self.buf.join(&chunk[..take]);
        if take < chunk.len() {
            bytes::Buf::advance(&mut chunk, take);
            self.inbox.push_front(chunk);
        } else {
            self.pool.give_back(chunk);
        }
    }

    /// Receives more: arms the receive if it is not (after waiting for a
    /// free buffer if it starved) and takes in its next outcome. Never
    /// waits while holding a pool buffer (see [`PooledBuffer::unpool`]).
    pub(super) fn poll_more(
        &mut self,
        cx: &mut Context<'_>,
        source: &impl ReadSource,
    ) -> Poll<Option<Stop>> {
        if self.recv.is_none() {
            if self.starved {
                if self.pool.poll_free(cx).is_pending() {
                    self.buf.unpool();
                    return Poll::Pending;
                }
                self.starved = false;
            }
            self.arm(source);
        }
        let recv = self.recv.as_mut().expect("armed just above");
        let Poll::Ready(outcome) = recv.poll_outcome(cx, &self.pool) else {
            self.buf.unpool();
            return Poll::Pending;
        };
        Poll::Ready(self.settle(outcome))
    }

    /// While the caller works on filled bytes: takes in outcomes that
    /// already arrived and, if the receive has ended (its byte limit
    /// reached), the stream has not `stopped` and the reader holds less
    /// than its share, arms the next one, so the socket is never left
    /// without a receive while the caller catches up.
    pub(super) fn read_ahead(
        &mut self,
        cx: &mut Context<'_>,
        source: &impl ReadSource,
        stopped: bool,
    ) -> Option<Stop> {
        let mut stop = None;
        while let Some(recv) = self.recv.as_mut() {
            let Poll::Ready(outcome) = recv.poll_outcome(cx, &self.pool) else {
                break;
            };
            stop = stop.or(self.settle(outcome));
        }
        let idle = self.recv.is_none() && !self.starved && !stopped && stop.is_none();
        if idle && self.inbox.len() < self.pool.config().get_per_reader() {
            self.arm(source);
        }
        stop
    }

    /// Arms a receive for what is left of this reader's share: at most
    /// `per_reader` buffers held in the inbox and in flight together.
    fn arm(&mut self, source: &impl ReadSource) {
        let share = self.pool.config().get_per_reader();
        let left = share.saturating_sub(self.inbox.len()).max(1);
        let fd = source.shared_fd().clone();
        let recv = RecvPool::new(fd, self.inbox.clone(), left);
        self.recv = Some(Multishot::submit_in(recv, &mut self.spare));
    }

    /// Takes in one outcome of the receive (its bytes are already in the
    /// inbox): the receive is over unless it brought data; an end or an
    /// error is returned, to be reported once the inbox is drained.
    fn settle(&mut self, outcome: RecvOutcome) -> Option<Stop> {
        if !matches!(outcome, RecvOutcome::Data)
            && let Some(recv) = self.recv.take()
        {
            recv.recycle(&mut self.spare);
        }
        match outcome {
            RecvOutcome::Data | RecvOutcome::Paused => None,
            RecvOutcome::Starved => {
                self.starved = true;
                None
            }
            RecvOutcome::End => Some(Stop::End),
            RecvOutcome::Failed(e) => Some(Stop::Failed(e)),
        }
    }
}

/// How much of `chunk`, the next received buffer, a record spanning into
/// it takes: through `delim` if a record search looks for one (all of it
/// without one), else all of it; and at least the `need` bytes asked for,
/// as far as the chunk has them.
fn record_part(chunk: &[u8], need: usize, delim: Option<u8>) -> usize {
    let want = match delim {
        Some(d) => memchr::memchr(d, chunk).map_or(chunk.len(), |i| i + 1),
        None => chunk.len(),
    };
    want.max(need.min(chunk.len()))
}

#[cfg(test)]
mod tests {
    use super::record_part;

    #[test]
    fn a_spanning_record_takes_through_its_delimiter() {
        assert_eq!(
            record_part(
                b"ab
cd
",
                1,
                Some(b'\n')
            ),
            3
        );
        assert_eq!(record_part(b"abcd", 1, Some(b'\n')), 4, "no delimiter: all");
        assert_eq!(record_part(b"\nabc", 1, Some(b'\n')), 1);
    }

    #[test]
    fn a_byte_count_takes_what_is_asked_or_all() {
        assert_eq!(record_part(b"abcdef", 2, None), 6, "no delimiter: all");
        assert_eq!(
            record_part(b"a\nbcdef", 4, Some(b'\n')),
            4,
            "at least `need`"
        );
        assert_eq!(record_part(b"a\nb", 9, Some(b'\n')), 3, "at most the chunk");
    }
}
