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
//! Files: `config.rs` (sizing and counters), `policy.rs` (when to grow and
//! shrink: plain counters, tested without a kernel), `slots.rs` (buffers
//! by id: publishing and taking), `ring.rs` (the ring memory), `inbox.rs`
//! (a reader's queue of received buffers).
//!
//! A buffer is a `BytesMut`, so a reader lends out of it and a decoder cuts
//! frames off it without a copy. When the reader is done with it the
//! allocation goes back into the ring if nothing else (a frame) still
//! refers to it; otherwise the frame keeps it and a fresh allocation takes
//! its id.

mod config;
mod inbox;
mod policy;
mod ring;
mod slots;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::task::{Context, Poll};

use bytes::BytesMut;

pub use config::{PoolConfig, PoolStats};
pub(crate) use inbox::Inbox;

use config::MAX_RING;
use policy::{Growth, Return};
use ring::Ring;
use slots::{Inner, Slot};

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
    /// Everything that changes: the buffers and the policy (`slots.rs`).
    inner: RefCell<Inner>,
    /// Multishot receives carry a byte limit (`IORING_RECV_MSHOT_LIM`,
    /// Linux 6.17): on (io_uring only) until a kernel refuses it with
    /// `EINVAL`, then off for good.
    byte_limit: Cell<bool>,
    /// The buffer group id the ring is registered under (0 on epoll).
    bgid: u16,
    /// How the kernel consumes buffers; `Plain` on epoll.
    mode: Mode,
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
        Pool::with_buffers(config, None, 0, Mode::Plain)
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
        Ok(Pool::with_buffers(config, Some(ring), bgid, mode))
    }

    /// A pool with its initial buffers published to `ring` (or the free
    /// list, without one).
    fn with_buffers(config: PoolConfig, ring: Option<Ring>, bgid: u16, mode: Mode) -> Pool {
        let kernel_ring = ring.is_some();
        let mut inner = Inner::new(config, ring);
        inner.stats.kernel_ring = kernel_ring;
        inner.stats.incremental = mode == Mode::Incremental;
        inner.stats.bundles = mode == Mode::Bundles;
        let initial = inner.policy.live();
        inner.add(initial);
        Pool {
            inner: RefCell::new(inner),
            byte_limit: Cell::new(kernel_ring),
            bgid,
            mode,
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
        let live = inner.policy.live();
        PoolStats {
            buffers: live,
            free: inner.free,
            out: live - inner.free,
            ..inner.stats
        }
    }

    /// A receive found no free buffer: grow if the policy says so.
    /// Returns whether buffers are free now (so the receive can be issued
    /// again at once).
    pub(crate) fn exhausted(&self) -> bool {
        let mut inner = self.inner.borrow_mut();
        inner.stats.exhausted += 1;
        if let Growth::Grow(n) = inner.policy.dry() {
            inner.stats.grown += 1;
            inner.add(n);
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
        if len == 0 {
            // Nothing landed: the buffer stays (or goes back) in the pool.
            if let Some(Slot::Picked(_)) = inner.slots.get(usize::from(bid)) {
                drop(inner);
                self.unselect(bid);
            }
            return;
        }
        inner.stats.receives += 1;
        inner.policy.booked();
        match self.mode {
            Mode::Incremental => {
                let more = io_uring::cqueue::buffer_more(flags);
                inner.stats.partial += u64::from(more);
                out.push_back(inner.take_front(bid, len, more));
            }
            Mode::Bundles => inner.take_bundle(bid, len, out),
            Mode::Plain => out.push_back(inner.take_front(bid, len.min(size), false)),
        }
    }

    /// A reader is done with a buffer `receive` handed out. Its allocation
    /// is reused if nothing else refers to it; else a fresh one takes its
    /// id.
    pub(crate) fn give_back(&self, buf: BytesMut) {
        let mut inner = self.inner.borrow_mut();
        let Some(bid) = inner.lent.pop() else {
            // A piece of a buffer still partly in the ring (incremental):
            // the allocation is freed when its last piece goes.
            return;
        };
        let free = inner.free;
        match inner.policy.returned(free) {
            // The pool grew for a burst that is over: this buffer leaves
            // it (its memory is freed with `buf`). Buffers already in the
            // ring stay until they come back.
            Return::Retire => inner.retire(bid),
            Return::Keep => {
                inner.recycle(bid, buf);
                inner.wake_waiters();
            }
        }
    }

    /// The runtime is going away: the ring was (or is about to be)
    /// unregistered, so nothing more is published to it.
    pub(crate) fn close(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.closed = true;
        inner.policy.close();
        inner.wake_waiters();
    }

    /// The kernel may still write into free buffers (shutdown timed out):
    /// leak them and the ring rather than free memory it may touch.
    pub(crate) fn leak(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.closed = true;
        inner.policy.close();
        for slot in inner.slots.drain(..) {
            std::mem::forget(slot);
        }
        inner.lent.clear();
        inner.free = 0;
        if let Some(ring) = inner.ring.take() {
            std::mem::forget(ring);
        }
    }
}

/// The buffer id a completion carries, if it filled one (io-uring's
/// reading of `IORING_CQE_F_BUFFER` and the id above it).
pub(crate) fn completion_buffer(flags: u32) -> Option<u16> {
    io_uring::cqueue::buffer_select(flags)
}

/// The flags of a completion that filled buffer `bid`, as the kernel posts
/// them, for the epoll backend to build: the same layout
/// `completion_buffer` reads (a test checks the round trip). io-uring
/// reads this layout but does not export its constants, hence these.
pub(crate) fn buffer_flags(bid: u16) -> u32 {
    /// `IORING_CQE_F_BUFFER`: the completion names the buffer it filled.
    const CQE_F_BUFFER: u32 = 1;
    /// `IORING_CQE_BUFFER_SHIFT`: where the buffer id sits in the flags.
    const CQE_BUFFER_SHIFT: u32 = 16;
    CQE_F_BUFFER | (u32::from(bid) << CQE_BUFFER_SHIFT)
}

#[cfg(test)]
mod tests;
