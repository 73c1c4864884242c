//! The pooled mode of [`BufReader`]: receives land in buffers the kernel
//! picks from the runtime's pool when data arrives.
//!
//! One multishot receive stays armed while the caller wants bytes; each
//! completion names a pool buffer. Into an empty reader the pool buffer
//! itself becomes the reader's buffer, so `fill_buf` lends from it and a
//! frame cut from it leaves without a copy; a record that spans buffers is
//! joined in a spill buffer. A drained buffer goes back to the pool at once.
//!
//! Completions not yet collected queue in the driver, at most
//! [`PoolConfig::per_reader`](crate::PoolConfig::per_reader) of them: at the
//! cap the receive is cancelled and armed again only when the caller asks
//! for more. Running out of buffers (`ENOBUFS`) grows the pool, or waits for
//! a buffer to come back, and arms again: bytes wait in the socket
//! meanwhile, so nothing is lost and the connection stays up.

use std::io;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use super::{BufReader, is_retry};
use crate::driver::{Pool, completion_buffer};
use crate::op::{Multishot, RecvPool};
use crate::source::ReadSource;

/// A pooled reader's receive.
#[derive(Debug)]
pub(crate) struct Pooled {
    /// The runtime's pool.
    pool: Rc<Pool>,
    /// The armed receive, if any.
    recv: Option<Multishot<RecvPool>>,
    /// The last receive ended for want of buffers: wait for one first.
    starved: bool,
}

impl Pooled {
    /// The pooled mode over `pool`.
    pub(crate) fn new(pool: Rc<Pool>) -> Pooled {
        Pooled {
            pool,
            recv: None,
            starved: false,
        }
    }
}

impl<S: ReadSource> BufReader<S> {
    /// `poll_fill` of the pooled mode: at least `n` bytes, the end of the
    /// stream, or an error.
    pub(super) fn poll_fill_pooled(
        &mut self,
        cx: &mut Context<'_>,
        n: usize,
    ) -> Poll<io::Result<()>> {
        loop {
            self.buf.release_drained();
            if self.buf.filled().len() >= n {
                return Poll::Ready(Ok(()));
            }
            if let Some(e) = self.error.take() {
                return Poll::Ready(Err(e));
            }
            if self.eof {
                return Poll::Ready(Ok(()));
            }
            let fd = self.source.shared_fd().clone();
            let Some(p) = self.pooled.as_mut() else {
                unreachable!("poll_fill_pooled without the pooled mode")
            };
            if p.recv.is_none() {
                if p.starved {
                    ready!(p.pool.poll_free(cx));
                    p.starved = false;
                }
                p.recv = Some(Multishot::submit(RecvPool::new(fd, p.pool.clone())));
            }
            let recv = p.recv.as_mut().expect("armed just above");
            let Some((res, last)) = ready!(recv.poll_next(cx)) else {
                p.recv = None;
                continue;
            };
            if last {
                p.recv = None;
            }
            let bid = completion_buffer(res.flags);
            match res.result {
                Ok(len) if len > 0 => {
                    let Some(bid) = bid else {
                        self.error = Some(io::Error::other(
                            "a pooled receive completed without naming its buffer",
                        ));
                        continue;
                    };
                    let pool = p.pool.clone();
                    match pool.take(bid, len as usize) {
                        Ok(chunk) => self.buf.push_pooled(chunk, &pool),
                        Err(e) => self.error = Some(e),
                    }
                }
                Ok(_) => {
                    if let Some(bid) = bid {
                        p.pool.recycle(bid);
                    }
                    self.eof = true;
                }
                Err(e) => {
                    if let Some(bid) = bid {
                        p.pool.recycle(bid);
                    }
                    match e.raw_os_error() {
                        // Out of buffers: grow, or wait for one to come back.
                        Some(libc::ENOBUFS) => p.starved = !p.pool.exhausted(),
                        // Paused at the per-reader cap: arm again now that
                        // the caller asks for more.
                        Some(libc::ECANCELED) => {}
                        _ if is_retry(&e) => {}
                        _ => self.error = Some(e),
                    }
                }
            }
        }
    }
}
