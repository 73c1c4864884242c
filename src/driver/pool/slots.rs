//! The pool's buffers by id: where each one is, publishing free ones to the
//! kernel ring (or the epoll free list), taking received ones out.

use std::collections::VecDeque;
use std::task::Waker;

use bytes::BytesMut;

use super::config::{PoolConfig, PoolStats};
use super::policy::Policy;
use super::ring::Ring;

/// Where a buffer id is.
pub(super) enum Slot {
    /// Free: in the ring (io_uring) or the free list (epoll). The kernel may
    /// write into it at any time. With incremental consumption this is
    /// what is left of the buffer after the bytes already received.
    Free(BytesMut),
    /// epoll: taken by a receive that is running now.
    Picked(BytesMut),
    /// Holding received bytes in a reader; comes back through `give_back`.
    Lent,
    /// Not part of the pool (it shrank); `add` may reuse the id.
    Retired,
}

/// The pool's mutable state: its buffers and what decides their number.
pub(super) struct Inner {
    /// Sizing; fixed for the pool's life.
    pub(super) config: PoolConfig,
    /// The registered ring (io_uring): every `Slot::Free` buffer is
    /// published in it. `None` on epoll (see `free_list`), and after `leak`.
    pub(super) ring: Option<Ring>,
    /// Every buffer id's state, indexed by id, retired ids included: ids are
    /// never removed, so `slots.len() <= MAX_BUFFERS` and ids fit a `u16`.
    pub(super) slots: Vec<Slot>,
    /// Ring position each id was last published at; `pos_of.len() ==
    /// slots.len()`. Read for bundles, which take buffers in ring order.
    pub(super) pos_of: Vec<u16>,
    /// epoll: exactly the ids in `Slot::Free`; always empty on io_uring
    /// (the kernel keeps the order there).
    pub(super) free_list: Vec<u16>,
    /// Number of ids in `Slot::Free`: `free <= policy.live()`.
    pub(super) free: usize,
    /// While open, exactly the ids in `Slot::Lent`. Any of them is taken
    /// for a buffer given back: lent ids are interchangeable.
    pub(super) lent: Vec<u16>,
    /// Ids in `Slot::Retired` that `add` may reuse.
    pub(super) retired: Vec<u16>,
    /// When to grow and shrink. While open, `policy.live() ==
    /// slots.len() - retired.len()` (the ids not retired).
    pub(super) policy: Policy,
    /// Readers that met `ENOBUFS` and wait for a free buffer (or `closed`);
    /// all are woken when a buffer comes back or the pool closes.
    pub(super) waiters: Vec<Waker>,
    /// Counters; `buffers`, `free` and `out` are filled in when read.
    pub(super) stats: PoolStats,
    /// The ring was unregistered (runtime gone): nothing is published
    /// again, and the policy never grows the pool.
    pub(super) closed: bool,
}

impl Inner {
    /// The pool's state before any buffer was added (the policy already
    /// counts the initial ones: `add` them next).
    pub(super) fn new(config: PoolConfig, ring: Option<Ring>) -> Inner {
        Inner {
            config,
            ring,
            slots: Vec::new(),
            pos_of: Vec::new(),
            free_list: Vec::new(),
            free: 0,
            lent: Vec::new(),
            retired: Vec::new(),
            policy: Policy::new(config.get_buffers(), config.get_max_buffers()),
            waiters: Vec::new(),
            stats: PoolStats {
                buffer_size: config.size,
                ..PoolStats::default()
            },
            closed: false,
        }
    }

    /// Publishes `n` fresh buffers the policy already counts live, reusing
    /// retired ids first.
    pub(super) fn add(&mut self, n: usize) {
        for _ in 0..n {
            let bid = match self.retired.pop() {
                Some(bid) => bid,
                None => {
                    self.slots.push(Slot::Retired);
                    self.pos_of.push(0);
                    (self.slots.len() - 1) as u16
                }
            };
            let buf = BytesMut::with_capacity(self.config.size);
            self.release(bid, buf);
        }
        self.stats.peak = self.stats.peak.max(self.policy.live());
    }

    /// Lent id `bid` leaves the pool (the policy retired it); its buffer is
    /// dropped by the caller.
    pub(super) fn retire(&mut self, bid: u16) {
        self.slots[usize::from(bid)] = Slot::Retired;
        self.retired.push(bid);
        self.stats.retired += 1;
    }

    /// Puts a buffer a reader gave back under lent id `bid` again: its
    /// allocation if nothing else refers to it, else a fresh one.
    pub(super) fn recycle(&mut self, bid: u16, mut buf: BytesMut) {
        let size = self.config.size;
        buf.clear();
        // `try_reclaim` succeeds only when this handle is the allocation's
        // sole owner, so memory a frame (or the ring) still refers to is
        // never reused.
        if !buf.try_reclaim(size) || buf.capacity() > 2 * size {
            buf = BytesMut::with_capacity(size);
            self.stats.replaced += 1;
        }
        self.release(bid, buf);
    }

    /// Makes buffer `bid` free: publishes it to the kernel ring or the list.
    pub(super) fn release(&mut self, bid: u16, mut buf: BytesMut) {
        let size = self.config.size;
        if self.closed {
            // Nothing will receive into it again.
            return;
        }
        if let Some(ring) = self.ring.as_mut() {
            self.pos_of[usize::from(bid)] = ring.push(bid, &mut buf, size);
        } else {
            self.free_list.push(bid);
        }
        self.slots[usize::from(bid)] = Slot::Free(buf);
        self.free += 1;
    }

    /// A bundle's `len` bytes, filled into buffers in ring order from the
    /// position `bid` was published at: takes each one out, into `out`.
    pub(super) fn take_bundle(&mut self, bid: u16, len: usize, out: &mut VecDeque<BytesMut>) {
        let size = self.config.size;
        self.stats.bundled += u64::from(len > size);
        let mut pos = self.pos_of.get(usize::from(bid)).copied().unwrap_or(0);
        let mut left = len;
        while left > 0 {
            let bid = self.ring.as_ref().map_or(bid, |ring| ring.bid_at(pos));
            let n = left.min(size);
            out.push_back(self.take_front(bid, n, false));
            left -= n;
            pos = pos.wrapping_add(1);
        }
    }

    /// Takes the first `len` bytes the kernel wrote into buffer `bid`. With
    /// `more` the rest stays in the ring for later receives; else the
    /// buffer is lent until given back.
    pub(super) fn take_front(&mut self, bid: u16, len: usize, more: bool) -> BytesMut {
        let slot = &mut self.slots[usize::from(bid)];
        let (mut buf, was_free) = match std::mem::replace(slot, Slot::Lent) {
            Slot::Free(buf) => (buf, true),
            Slot::Picked(buf) => (buf, false),
            Slot::Lent | Slot::Retired => {
                panic!("the kernel reported buffer {bid}, which is not in the pool")
            }
        };
        assert!(
            len <= buf.capacity(),
            "the kernel reported more bytes than buffer {bid} holds"
        );
        // SAFETY: the kernel (or the epoll receive) initialised the first
        // `len` bytes of this buffer's free part (within its capacity,
        // checked above).
        unsafe { buf.set_len(len) };
        if more {
            // The rest is still the kernel's (it continues where it stopped):
            // split it off, so the reader's piece has no room of its own.
            let chunk = buf.split_to(len);
            *slot = Slot::Free(buf);
            return chunk;
        }
        if was_free {
            self.free -= 1;
        }
        self.lent.push(bid);
        buf
    }

    /// Wakes readers that waited for a free buffer.
    pub(super) fn wake_waiters(&mut self) {
        for w in self.waiters.drain(..) {
            w.wake();
        }
    }
}
