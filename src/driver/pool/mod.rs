//! The runtime's shared receive buffers: the kernel picks one only when data
//! arrives, so an idle connection holds no buffer memory.
//!
//! On io_uring the free buffers sit in a provided buffer ring
//! (`IORING_REGISTER_PBUF_RING`, Linux 5.19) whose memory we allocate
//! ourselves (not the kernel-mapped kind, see CVE-2024-0582). A receive that
//! selects from it names the buffer it filled by its id in the completion.
//! On epoll the free buffers sit in a list, and a receive takes one at the
//! moment the socket is readable; its completion names it the same way, so
//! the reader above handles both alike.
//!
//! ```text
//!                      give_back (reader drained it)
//!   ┌────────────────┐ ◄────────────────────────────── ┌──────────────────┐
//!   │ free: in ring  │                                 │ lent to a reader │
//!   │ (or epoll list)│ ── data arrives: kernel picks ─► │ (inbox, buffer)  │
//!   └────────────────┘    receive() books it at reap   └──────────────────┘
//! ```
//!
//! Files: `config.rs` (sizing and counters), `ring.rs` (the ring memory),
//! `inbox.rs` (a reader's queue of received buffers).
//!
//! A buffer is a `BytesMut`, so a reader lends out of it and a decoder cuts
//! frames off it without a copy. When the reader is done with it the
//! allocation goes back into the ring if nothing else (a frame) still
//! refers to it; otherwise the frame keeps it and a fresh allocation takes
//! its id.

mod config;
mod inbox;
mod ring;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;

pub use config::{PoolConfig, PoolStats};
pub(crate) use inbox::Inbox;

use config::MAX_RING;
use ring::Ring;

/// Where a buffer id is.
enum Slot {
    /// Free: in the ring (io_uring) or the free list (epoll). The kernel may
    /// write into it at any time. With incremental consumption this is
    /// what is left of the buffer after the bytes already received.
    Free(BytesMut),
    /// epoll: taken by a receive that is running now.
    Picked(BytesMut),
    /// Holding received bytes in a reader; comes back through `give_back`.
    Lent,
    /// Not part of the pool (it shrank); `grow_to` may reuse the id.
    Retired,
}

/// How the kernel consumes the ring's buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// One buffer per completion (and the epoll list).
    Plain,
    /// Several receives share a buffer, each taking what it got.
    Incremental,
    /// One completion may fill several buffers, in ring order.
    Bundles,
}

/// The runtime's receive buffers. Shared (`Rc`) by the driver, the receives
/// in flight and the readers.
pub(crate) struct Pool {
    /// Everything that changes.
    inner: RefCell<Inner>,
    /// Multishot receives carry a byte limit (`IORING_RECV_MSHOT_LIM`,
    /// Linux 6.17): on until a kernel refuses it with `EINVAL`.
    byte_limit: std::cell::Cell<bool>,
    /// The buffer group id the ring is registered under.
    bgid: u16,
    /// How the kernel consumes buffers.
    mode: Mode,
}

/// Mutable pool state.
struct Inner {
    /// Sizing.
    config: PoolConfig,
    /// The registered ring (io_uring), or `None` (epoll: `free_list`).
    ring: Option<Ring>,
    /// Every buffer id's state, retired ids included.
    slots: Vec<Slot>,
    /// Ring position each buffer id was last published at.
    pos_of: Vec<u16>,
    /// Free ids (epoll only; the kernel keeps the order on io_uring).
    free_list: Vec<u16>,
    /// Number of `Slot::Free`.
    free: usize,
    /// Ids in `Slot::Lent`: waiting for any buffer to come back (ids are
    /// interchangeable).
    lent: Vec<u16>,
    /// Ids in `Slot::Retired`.
    retired: Vec<u16>,
    /// Dry moments (`ENOBUFS` met) since the pool last grew.
    dry_since_growth: usize,
    /// `stats.receives` at the last dry moment.
    receives_at_dry: u64,
    /// Buffers given back since the last `ENOBUFS`.
    returns_since_dry: usize,
    /// Buffers in the pool: `slots.len()` less the retired ones.
    live: usize,
    /// Readers waiting for buffers after `ENOBUFS`.
    waiters: Vec<Waker>,
    /// Counters.
    stats: PoolStats,
    /// The ring was unregistered (runtime gone): nothing is published again.
    closed: bool,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Pool {
    /// A pool whose free buffers sit in a user-space list (epoll).
    pub(crate) fn user(config: PoolConfig) -> Pool {
        let pool = Pool::empty(config, None, 0, Mode::Plain);
        pool.grow_to(config.initial);
        pool
    }

    /// A pool whose free buffers sit in a provided buffer ring consumed in
    /// `mode`; `register` registers the ring memory `(address, entries)`
    /// with the kernel under `bgid` (with `IOU_PBUF_RING_INC` for the
    /// incremental mode).
    pub(crate) fn kernel(
        config: PoolConfig,
        bgid: u16,
        mode: Mode,
        register: impl FnOnce(u64, u16) -> io::Result<()>,
    ) -> io::Result<Pool> {
        // Twice the buffers (see `MAX_BUFFERS`): a bundle's positions are
        // read when its completion is reaped, not published over by then.
        let entries = (config.max * 2).next_power_of_two().min(MAX_RING) as u16;
        let ring = Ring::new(entries)?;
        register(ring.base as u64, entries)?;
        let pool = Pool::empty(config, Some(ring), bgid, mode);
        {
            let mut inner = pool.inner.borrow_mut();
            inner.stats.kernel_ring = true;
            inner.stats.incremental = mode == Mode::Incremental;
            inner.stats.bundles = mode == Mode::Bundles;
        }
        pool.grow_to(config.initial);
        Ok(pool)
    }

    /// A pool with no buffers yet.
    fn empty(config: PoolConfig, ring: Option<Ring>, bgid: u16, mode: Mode) -> Pool {
        let ring_is_some = ring.is_some();
        Pool {
            inner: RefCell::new(Inner {
                config,
                ring,
                slots: Vec::new(),
                pos_of: Vec::new(),
                free_list: Vec::new(),
                free: 0,
                lent: Vec::new(),
                retired: Vec::new(),
                dry_since_growth: 0,
                receives_at_dry: 0,
                returns_since_dry: 0,
                live: 0,
                waiters: Vec::new(),
                stats: PoolStats {
                    buffer_size: config.size,
                    ..PoolStats::default()
                },
                closed: false,
            }),
            bgid,
            mode,
            byte_limit: std::cell::Cell::new(ring_is_some),
        }
    }

    /// The byte limit of a multishot receive that may fill `buffers`
    /// buffers (what its reader may still take of its `per_reader` share),
    /// or `None` where the kernel has no limits.
    pub(crate) fn receive_limit(&self, buffers: usize) -> Option<u32> {
        if !self.byte_limit.get() {
            return None;
        }
        let config = self.inner.borrow().config;
        let bytes = buffers.max(1).saturating_mul(config.size);
        Some(u32::try_from(bytes).unwrap_or(u32::MAX).max(1))
    }

    /// A receive with a byte limit was refused (`EINVAL`): this kernel
    /// predates them; receives go without from now on (the per-reader cap
    /// then rests on cancelling). Returns whether a limit was in use.
    pub(crate) fn refuse_limit(&self) -> bool {
        self.byte_limit.replace(false)
    }

    /// The buffer group id receives select from.
    pub(crate) fn bgid(&self) -> u16 {
        self.bgid
    }

    /// How the kernel consumes buffers.
    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    /// Sizing.
    pub(crate) fn config(&self) -> PoolConfig {
        self.inner.borrow().config
    }

    /// Counters.
    pub(crate) fn stats(&self) -> PoolStats {
        let inner = self.inner.borrow();
        PoolStats {
            buffers: inner.live,
            free: inner.free,
            out: inner.live - inner.free,
            ..inner.stats
        }
    }

    /// Adds fresh buffers until the pool has `n`.
    fn grow_to(&self, n: usize) {
        let mut inner = self.inner.borrow_mut();
        let n = n.min(inner.config.max);
        while inner.live < n && !inner.closed {
            let bid = match inner.retired.pop() {
                Some(bid) => bid,
                None => {
                    inner.slots.push(Slot::Retired);
                    inner.pos_of.push(0);
                    (inner.slots.len() - 1) as u16
                }
            };
            inner.live += 1;
            inner.stats.peak = inner.stats.peak.max(inner.live);
            let buf = BytesMut::with_capacity(inner.config.size);
            inner.release(bid, buf);
        }
    }

    /// A receive found no free buffer: grow if allowed. Returns whether
    /// buffers are free now (so the receive can be issued again at once).
    pub(crate) fn exhausted(&self) -> bool {
        let mut inner = self.inner.borrow_mut();
        inner.stats.exhausted += 1;
        // Every reader of a busy runtime meets a dry ring at the same
        // moment, so one moment must count once, not once per reader: a
        // dry moment counts only if some receive was booked since the last
        // one (bookings happen as completions are reaped, between moments).
        // Two dry moments since the pool last grew double it.
        if inner.stats.receives != inner.receives_at_dry {
            inner.receives_at_dry = inner.stats.receives;
            inner.dry_since_growth += 1;
        }
        inner.returns_since_dry = 0;
        let (len, max) = (inner.live, inner.config.max);
        if inner.dry_since_growth >= 2 && len < max && !inner.closed {
            inner.dry_since_growth = 0;
            inner.stats.grown += 1;
            drop(inner);
            self.grow_to(len * 2);
            inner = self.inner.borrow_mut();
        }
        inner.free > 0
    }

    /// Ready once a buffer is free (after `ENOBUFS`).
    pub(crate) fn poll_free(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.inner.borrow_mut();
        if inner.free > 0 || inner.closed {
            return Poll::Ready(());
        }
        if !inner.waiters.iter().any(|w| w.will_wake(cx.waker())) {
            inner.waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// epoll: takes a free buffer for a receive about to run; returns its id
    /// and where to write (`size` bytes).
    pub(crate) fn select(&self) -> Option<(u16, *mut u8, usize)> {
        let mut inner = self.inner.borrow_mut();
        let bid = inner.free_list.pop()?;
        let size = inner.config.size;
        inner.free -= 1;
        let slot = &mut inner.slots[usize::from(bid)];
        let Slot::Free(mut buf) = std::mem::replace(slot, Slot::Lent) else {
            unreachable!("free list holds a buffer that is not free")
        };
        let ptr = buf.as_mut_ptr();
        *slot = Slot::Picked(buf);
        Some((bid, ptr, size))
    }

    /// epoll: a receive that took buffer `bid` got nothing; it goes back.
    pub(crate) fn unselect(&self, bid: u16) {
        let mut inner = self.inner.borrow_mut();
        let Some(slot) = inner.slots.get_mut(usize::from(bid)) else {
            return;
        };
        if let Slot::Picked(_) = slot {
            let Slot::Picked(buf) = std::mem::replace(slot, Slot::Lent) else {
                unreachable!("matched Picked above")
            };
            inner.release(bid, buf);
        }
    }

    /// A completion was reaped that says `len` bytes landed in the buffer
    /// (or, for a bundle, buffers) its `flags` name: takes them out of the
    /// pool, in order, into `out`. Called once per completion, when it is
    /// reaped, so buffers are booked before anything is published again.
    pub(crate) fn receive(&self, flags: u32, len: usize, out: &mut VecDeque<BytesMut>) {
        let Some(bid) = completion_buffer(flags) else {
            return;
        };
        let mut inner = self.inner.borrow_mut();
        let size = inner.config.size;
        if len > 0 {
            inner.stats.receives += 1;
        }
        if len == 0 {
            // Nothing landed: the buffer stays (or goes back) in the pool.
            if let Some(Slot::Picked(_)) = inner.slots.get(usize::from(bid)) {
                drop(inner);
                self.unselect(bid);
            }
            return;
        }
        match self.mode {
            Mode::Incremental => {
                let more = io_uring::cqueue::buffer_more(flags);
                inner.stats.partial += u64::from(more);
                out.push_back(inner.take_front(bid, len, more));
            }
            Mode::Bundles => {
                let first = inner.pos_of.get(usize::from(bid)).copied().unwrap_or(0);
                inner.stats.bundled += u64::from(len > size);
                let mut left = len;
                let mut pos = first;
                while left > 0 {
                    let bid = inner.ring.as_ref().map_or(bid, |ring| ring.bid_at(pos));
                    let n = left.min(size);
                    out.push_back(inner.take_front(bid, n, false));
                    left -= n;
                    pos = pos.wrapping_add(1);
                }
            }
            Mode::Plain => out.push_back(inner.take_front(bid, len.min(size), false)),
        }
    }

    /// A reader is done with a buffer `receive` handed out. Its allocation
    /// is reused if nothing else refers to it; else a fresh one takes its
    /// id.
    pub(crate) fn give_back(&self, mut buf: BytesMut) {
        let mut inner = self.inner.borrow_mut();
        let size = inner.config.size;
        let Some(bid) = inner.lent.pop() else {
            // A piece of a buffer still partly in the ring (incremental):
            // the allocation is freed when its last piece goes.
            return;
        };
        inner.returns_since_dry += 1;
        let calm = inner.returns_since_dry >= 8 * inner.live;
        if calm && inner.live > inner.config.initial && inner.free * 2 >= inner.live {
            // The pool grew for a burst that is over: it has not run dry
            // for twice its size in returns and half of it is free, so this
            // buffer leaves it (and its memory is freed). Buffers already
            // in the ring stay until they come back.
            inner.slots[usize::from(bid)] = Slot::Retired;
            inner.retired.push(bid);
            inner.live -= 1;
            inner.stats.retired += 1;
            return;
        }
        buf.clear();
        // `try_reclaim` succeeds only when this handle is the allocation's
        // sole owner, so memory a frame (or the ring) still refers to is
        // never reused.
        if !buf.try_reclaim(size) || buf.capacity() > 2 * size {
            buf = BytesMut::with_capacity(size);
            inner.stats.replaced += 1;
        }
        inner.release(bid, buf);
        inner.wake_waiters();
    }

    /// The runtime is going away: the ring was (or is about to be)
    /// unregistered, so nothing more is published to it.
    pub(crate) fn close(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.closed = true;
        inner.wake_waiters();
    }

    /// The kernel may still write into free buffers (shutdown timed out):
    /// leak them and the ring rather than free memory it may touch.
    pub(crate) fn leak(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.closed = true;
        for slot in inner.slots.drain(..) {
            std::mem::forget(slot);
        }
        inner.lent.clear();
        inner.free = 0;
        inner.live = 0;
        if let Some(ring) = inner.ring.take() {
            std::mem::forget(ring);
        }
    }
}

impl Inner {
    /// Makes buffer `bid` free: publishes it to the kernel ring or the list.
    fn release(&mut self, bid: u16, mut buf: BytesMut) {
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

    /// Takes the first `len` bytes the kernel wrote into buffer `bid`. With
    /// `more` the rest stays in the ring for later receives; else the
    /// buffer is lent until given back.
    fn take_front(&mut self, bid: u16, len: usize, more: bool) -> BytesMut {
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
    fn wake_waiters(&mut self) {
        for w in self.waiters.drain(..) {
            w.wake();
        }
    }
}

/// `IORING_CQE_F_BUFFER`: the completion names the buffer it filled.
const CQE_F_BUFFER: u32 = 1;
/// `IORING_CQE_BUFFER_SHIFT`: where the buffer id sits in the flags.
const CQE_BUFFER_SHIFT: u32 = 16;

/// The buffer id a completion carries, if it filled one.
pub(crate) fn completion_buffer(flags: u32) -> Option<u16> {
    (flags & CQE_F_BUFFER != 0).then_some((flags >> CQE_BUFFER_SHIFT) as u16)
}

/// The flags of a completion that filled buffer `bid`, as the kernel posts
/// them (the epoll backend builds these).
pub(crate) fn buffer_flags(bid: u16) -> u32 {
    CQE_F_BUFFER | (u32::from(bid) << CQE_BUFFER_SHIFT)
}
