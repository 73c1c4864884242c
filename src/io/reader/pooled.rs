//! The pooled mode of [`BufReader`]: receives land in buffers the kernel
//! picks from the runtime's pool when data arrives.
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
//! cap the receive is cancelled and armed again only when the caller asks
//! for more. Running out of buffers (`ENOBUFS`) grows the pool, or waits for
//! a buffer to come back, and arms again: bytes wait in the socket
//! meanwhile, so nothing is lost and the connection stays up.

use std::io;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::{BufReader, is_retry};
use crate::driver::{CqeResult, Inbox, Pool, SharedFd};
use crate::op::{Multishot, RecvPool};
use crate::source::ReadSource;

/// A pooled reader's receive.
#[derive(Debug)]
pub(crate) struct Pooled {
    /// The runtime's pool.
    pool: Rc<Pool>,
    /// Buffers received and not yet taken, booked as completions are reaped.
    inbox: Rc<Inbox>,
    /// The armed receive, if any.
    recv: Option<Multishot<RecvPool>>,
    /// The last receive ended for want of buffers: wait for one first.
    starved: bool,
}

impl Pooled {
    /// The pooled mode over `pool`.
    pub(crate) fn new(pool: Rc<Pool>) -> Pooled {
        Pooled {
            inbox: Rc::new(Inbox::new(pool.clone())),
            pool,
            recv: None,
            starved: false,
        }
    }

    /// Arms a receive for what is left of this reader's share: at most
    /// `per_reader` buffers held in the inbox and in flight together.
    fn arm(&mut self, fd: SharedFd) {
        let share = self.pool.config().get_per_reader();
        let left = share.saturating_sub(self.inbox.len()).max(1);
        self.recv = Some(Multishot::submit(RecvPool::new(
            fd,
            self.inbox.clone(),
            left,
        )));
    }

    /// Takes in one completion of the receive (its bytes are already in
    /// the inbox): an end of stream or an error is noted for when the inbox
    /// is drained; running dry, a cap cancel or a retry only lead to arming
    /// again.
    fn settle(&mut self, res: CqeResult, eof: &mut bool, error: &mut Option<io::Error>) {
        match res.result {
            // Its bytes are in the inbox.
            Ok(len) if len > 0 => {}
            Ok(_) => *eof = true,
            Err(e) => match e.raw_os_error() {
                // Out of buffers: grow, or wait for one to come back.
                Some(libc::ENOBUFS) => self.starved = !self.pool.exhausted(),
                // Paused at the per-reader cap: arm again when the caller
                // asks for more.
                Some(libc::ECANCELED) => {}
                // A kernel without byte limits on multishot receives: arm
                // again without one.
                Some(libc::EINVAL) if self.pool.refuse_limit() => {}
                _ if is_retry(&e) => {}
                _ => *error = Some(e),
            },
        }
    }
}

impl<S: ReadSource> BufReader<S> {
    /// `poll_fill` of the pooled mode: at least `n` bytes, the end of the
    /// stream, or an error; `delim` is the delimiter a record search looks
    /// for, if it is one.
    pub(super) fn poll_fill_pooled(
        &mut self,
        cx: &mut Context<'_>,
        n: usize,
        delim: Option<u8>,
    ) -> Poll<io::Result<()>> {
        loop {
            self.buf.release_drained();
            if self.buf.filled().len() >= n {
                self.read_ahead_pooled(cx);
                return Poll::Ready(Ok(()));
            }
            let Some(p) = self.pooled.as_mut() else {
                unreachable!("poll_fill_pooled without the pooled mode")
            };
            // Completions book their buffers into the inbox when reaped, so
            // bytes are there before (and in the order of) the completions
            // that report them, and before any end or error after them.
            if let Some(mut chunk) = p.inbox.pop() {
                let have = self.buf.filled().len();
                if have == 0 {
                    self.buf.push_pooled(chunk, &p.pool);
                    continue;
                }
                // A record spans buffers: join only what it needs of this
                // one (through the delimiter a record search looks for, or
                // the bytes asked for); the rest stays a pool buffer, lent
                // without a copy once the joined record is consumed.
                let want = match delim {
                    Some(d) => memchr::memchr(d, &chunk).map_or(chunk.len(), |i| i + 1),
                    None => chunk.len(),
                };
                let take = want.max((n - have).min(chunk.len()));
                self.buf.join(&chunk[..take]);
                if take < chunk.len() {
                    bytes::Buf::advance(&mut chunk, take);
                    p.inbox.push_front(chunk);
                } else {
                    p.pool.give_back(chunk);
                }
                continue;
            }
            if let Some(e) = self.error.take() {
                return Poll::Ready(Err(e));
            }
            if self.eof {
                return Poll::Ready(Ok(()));
            }
            if p.recv.is_none() {
                if p.starved {
                    if p.pool.poll_free(cx).is_pending() {
                        self.buf.unpool();
                        return Poll::Pending;
                    }
                    p.starved = false;
                }
                p.arm(self.source.shared_fd().clone());
            }
            let recv = p.recv.as_mut().expect("armed just above");
            let Poll::Ready(next) = recv.poll_next(cx) else {
                // Never wait while holding a pool buffer (see `unpool`).
                self.buf.unpool();
                return Poll::Pending;
            };
            let Some((res, last)) = next else {
                p.recv = None;
                continue;
            };
            if last {
                p.recv = None;
            }
            p.settle(res, &mut self.eof, &mut self.error);
        }
    }

    /// Read-ahead of the pooled mode, while the caller works on filled
    /// bytes: takes in completions that already arrived and, if the receive
    /// has ended (its byte limit reached) and the reader holds less than
    /// its share, arms the next one, so the socket is never left without a
    /// receive while the caller catches up.
    fn read_ahead_pooled(&mut self, cx: &mut Context<'_>) {
        let Some(p) = self.pooled.as_mut() else {
            return;
        };
        while let Some(recv) = p.recv.as_mut() {
            match recv.poll_next(cx) {
                Poll::Pending => break,
                Poll::Ready(None) => p.recv = None,
                Poll::Ready(Some((res, last))) => {
                    if last {
                        p.recv = None;
                    }
                    p.settle(res, &mut self.eof, &mut self.error);
                }
            }
        }
        let idle = p.recv.is_none() && !p.starved && !self.eof && self.error.is_none();
        if idle && p.inbox.len() < p.pool.config().get_per_reader() {
            p.arm(self.source.shared_fd().clone());
        }
    }
}
