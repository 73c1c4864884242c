//! The kernel queue.
//!
//! One [`Driver`] per runtime. It owns a backend and the in-flight
//! [`Table`](table::Table), and is the only place that talks to the kernel.
//! Everything above it goes through four calls:
//!
//! * [`Driver::submit`]: take ownership of an operation's data and hand the
//!   operation to the backend; return its [`OpId`];
//! * [`Driver::poll_op`]: collect the completion;
//! * [`Driver::release`]: the waiting future went away (the entry becomes
//!   abandoned and, for operations that may never complete, is cancelled);
//! * [`Driver::turn`]: one trip to the kernel that submits what is queued,
//!   waits if asked, and moves completions into the table.
//!
//! # Backends
//!
//! The backend is chosen once, when the runtime starts ([`Kind`]); nothing
//! above this module knows which one runs. A backend (the [`Backend`] trait)
//! must provide:
//!
//! * `adopt` (has a default): take an operation's data as it enters the
//!   table; only a decorating backend wraps it;
//! * `reserve`: make sure one more operation can be taken without failing;
//! * `submit`: hand table entry `id` to the kernel. io_uring queues its
//!   submission entry ([`Owned::entry`]) for the next turn; epoll performs
//!   the system call at once without blocking ([`Owned::attempt`]) and, if it
//!   would block, waits for readiness;
//! * `cancel`: end entry `id` early (its completion still arrives);
//! * `turn`: submit, wait up to a timeout, and complete entries in the table;
//!   it must not block if it completed anything earlier in the same turn
//!   (wakes on the runtime thread do not touch the eventfd);
//! * `busy`: whether the kernel still holds anything outside the table;
//! * `completion_fd`: an fd readable while completions wait.
//!
//! Tests add two more implementations: the fault-injection decorator
//! (`faults.rs`, feature `fault-injection`), which wraps the real backend
//! when a fault plan is given, and the in-memory fake (`fake.rs`, unit tests
//! only), with which a test plays the kernel. A decorator must forward every
//! method, defaults included.
//!
//! Both backends complete entries the same way: a raw result (`>= 0` or
//! `-errno`) turned into a [`CqeResult`] by [`CqeResult::new`], the one place
//! a negative result becomes an `io::Error`.

mod caps;
mod epoll;
pub(crate) mod eventfd;
#[cfg(test)]
pub(crate) mod fake;
#[cfg(feature = "fault-injection")]
pub(crate) mod faults;
mod fd;
mod pool;
mod probe;
mod table;
mod uring;

use eventfd::drain as drain_eventfd;

use std::cell::RefCell;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub(crate) use caps::Cap;
pub(crate) use fd::SharedFd;
pub(crate) use pool::{Inbox, Mode as PoolMode, Pool};
pub use pool::{PoolConfig, PoolStats};
pub use probe::Probe;
pub(crate) use probe::recv_poll_first;
pub(crate) use table::{OpId, Owned, Released};

use table::Table;

/// The outcome of one completion: the kernel's result and its flags.
#[derive(Debug)]
pub(crate) struct CqeResult {
    /// Non-negative result, or the error the kernel returned.
    pub(crate) result: io::Result<u32>,
    /// `IORING_CQE_F_*` flags (always 0 on epoll).
    pub(crate) flags: u32,
}

impl CqeResult {
    /// The one place a raw completion becomes a result.
    pub(crate) fn new(res: i32, flags: u32) -> CqeResult {
        let result = if res < 0 {
            Err(io::Error::from_raw_os_error(-res))
        } else {
            Ok(res as u32)
        };
        CqeResult { result, flags }
    }

    /// More completions follow for this (multishot) entry.
    pub(crate) fn more(&self) -> bool {
        io_uring::cqueue::more(self.flags)
    }
}

/// What an operation did when the epoll backend tried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Finished, with the result a completion would carry (`>= 0` or `-errno`).
    Done(i32),
    /// Would block: try again once `fd` is ready for the direction.
    Wait(RawFd, Interest),
    /// Finished with `res` bytes received into pool buffer `bid` (a
    /// receive that picks its buffer from the runtime's pool).
    Selected {
        /// The result, as for `Done`.
        res: i32,
        /// The buffer the bytes are in.
        bid: u16,
    },
    /// Finishes at this instant with `-ETIME` (a timeout).
    Until(Instant),
}

/// A readiness direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Readable (or closed, or in error).
    Read,
    /// Writable (or closed, or in error).
    Write,
}

/// Which kernel interface a runtime drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// io_uring: completion-based, batched submissions.
    IoUring,
    /// epoll with non-blocking system calls, where io_uring is refused.
    Epoll,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::IoUring => "io_uring",
            Kind::Epoll => "epoll",
        })
    }
}

/// The interface each backend implements; see the module docs. (`Any`, so
/// that a test can find its decorator or fake behind the `dyn`.)
pub(crate) trait Backend: std::any::Any {
    /// Which backend this is.
    fn kind(&self) -> Kind;
    /// What the kernel supports.
    fn probe(&self) -> &Probe;
    /// Takes an operation's data as it enters the table; a decorating
    /// backend may wrap it (the fault injection's quarantine does). Real
    /// backends hand it back.
    fn adopt(&mut self, data: Box<dyn Owned>) -> Box<dyn Owned> {
        data
    }
    /// Makes sure `submit` can take one more operation.
    fn reserve(&mut self, table: &mut Table) -> io::Result<()>;
    /// Hands entry `id` to the kernel.
    fn submit(&mut self, table: &mut Table, id: OpId);
    /// Asks the kernel to end entry `id` early.
    fn cancel(&mut self, table: &mut Table, id: OpId);
    /// Submits, waits (if `wait`, up to `timeout`), completes entries.
    fn turn(&mut self, table: &mut Table, wait: bool, timeout: Option<Duration>) -> io::Result<()>;
    /// The kernel still holds something outside the table.
    fn busy(&self) -> bool;
    /// Stops watching the runtime's wake-up eventfd (at shutdown).
    fn stop_wake(&mut self);
    /// An fd readable while completions wait.
    fn completion_fd(&mut self) -> io::Result<RawFd>;
    /// Registers a provided buffer ring of `entries` at `addr` as group
    /// `bgid` with `IOU_PBUF_RING_*` `flags` (io_uring only).
    fn register_buf_ring(
        &mut self,
        addr: u64,
        entries: u16,
        bgid: u16,
        flags: u16,
    ) -> io::Result<()> {
        let _ = (addr, entries, bgid, flags);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this backend has no provided buffer rings",
        ))
    }
    /// Unregisters group `bgid` (only once nothing in flight can use it).
    fn unregister_buf_ring(&mut self, bgid: u16) {
        let _ = bgid;
    }
}

/// Settings a runtime passes down when it builds its driver.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// io_uring submission queue entries (rounded up to a power of two).
    pub(crate) entries: u32,
    /// The backend to use; `None` chooses: io_uring where it works.
    pub(crate) kind: Option<Kind>,
    /// Sizing of the receive buffer pool, built at first use.
    pub(crate) pool: PoolConfig,
    /// Faults to inject (tests only).
    #[cfg(feature = "fault-injection")]
    pub(crate) faults: Option<faults::FaultPlan>,
}

/// The driver: a backend and the table of operations in flight.
pub(crate) struct Driver {
    /// Mutable state; never borrowed across an await or a user callback.
    inner: RefCell<Inner>,
}

/// Mutable driver state.
struct Inner {
    /// The kernel interface.
    backend: Box<dyn Backend>,
    /// Every operation the kernel may still touch.
    table: Table,
    /// Sizing of the buffer pool.
    pool_config: PoolConfig,
    /// The receive buffer pool, once a pooled reader asked for it; `None`
    /// inside also when the kernel cannot pick buffers (ordinary reads).
    pool: Option<Option<Rc<Pool>>>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.inner.try_borrow() {
            Ok(inner) => f
                .debug_struct("Driver")
                .field("kind", &inner.backend.kind())
                .field("in_flight", &inner.table.live())
                .finish(),
            Err(_) => f.debug_struct("Driver").finish_non_exhaustive(),
        }
    }
}

impl Driver {
    /// Starts the chosen backend (or io_uring, falling back to epoll).
    /// `wake_fd` is an eventfd other threads write to wake the runtime.
    pub(crate) fn new(config: &Config, wake_fd: RawFd) -> io::Result<Driver> {
        let backend: Box<dyn Backend> = match config.kind {
            Some(Kind::IoUring) => Box::new(uring::Uring::new(config.entries, wake_fd)?),
            Some(Kind::Epoll) => Box::new(epoll::Epoll::new(wake_fd)?),
            None => match uring::Uring::new(config.entries, wake_fd) {
                Ok(ring) => Box::new(ring),
                Err(_) => Box::new(epoll::Epoll::new(wake_fd)?),
            },
        };
        #[cfg(feature = "fault-injection")]
        let backend = faults::wrap(backend, config.faults.clone());
        Ok(Driver::with_backend(backend, config.pool))
    }

    /// A driver over `backend` (the runtime's, or a fake in unit tests).
    pub(crate) fn with_backend(backend: Box<dyn Backend>, pool_config: PoolConfig) -> Driver {
        Driver {
            inner: RefCell::new(Inner {
                backend,
                table: Table::default(),
                pool_config,
                pool: None,
            }),
        }
    }

    /// Which backend runs.
    pub(crate) fn kind(&self) -> Kind {
        self.inner.borrow().backend.kind()
    }

    /// Whether this runtime's kernel interface has `cap`.
    pub(crate) fn has(&self, cap: Cap) -> bool {
        let inner = self.inner.borrow();
        let probe = inner.backend.probe();
        match (inner.backend.kind(), cap) {
            (Kind::Epoll, _) => false,
            (Kind::IoUring, Cap::BufRing) => probe.buf_ring,
            (Kind::IoUring, Cap::MultishotRecv) => probe.multishot_recv,
            (Kind::IoUring, Cap::RecvLimit) => probe.kernel >= (6, 17),
            (Kind::IoUring, Cap::RecvBundle) => probe.recv_bundle,
            (Kind::IoUring, Cap::BufRingInc) => probe.buf_ring_inc,
            (Kind::IoUring, Cap::MultishotAccept) => probe.multishot_accept,
            (Kind::IoUring, Cap::DeferTaskrun) => probe.defer_taskrun,
            (Kind::IoUring, Cap::PollFirst) => probe::recv_poll_first(),
        }
    }

    /// What the kernel supports, probed once at start.
    pub(crate) fn probe(&self) -> Probe {
        self.inner.borrow().backend.probe().clone()
    }

    /// An fd readable while completions wait, so another event loop can
    /// watch it and call [`Driver::turn`] without waiting.
    pub(crate) fn completion_fd(&self) -> io::Result<RawFd> {
        self.inner.borrow_mut().backend.completion_fd()
    }

    /// The runtime's receive buffer pool, built at the first call: a
    /// provided buffer ring on io_uring (where the kernel has them, with
    /// multishot receive), a user-space list on epoll. `None` where
    /// io_uring lacks them: pooled readers then read the ordinary way.
    pub(crate) fn pool(&self) -> Option<Rc<Pool>> {
        let mut inner = self.inner.borrow_mut();
        if let Some(pool) = &inner.pool {
            return pool.clone();
        }
        let config = inner.pool_config;
        let pool = match inner.backend.kind() {
            Kind::Epoll => Some(Rc::new(Pool::user(config))),
            Kind::IoUring if inner.backend.probe().multishot_recv => {
                let probe = inner.backend.probe();
                let mode = if config.get_incremental() && probe.buf_ring_inc {
                    PoolMode::Incremental
                } else if config.get_bundles() && probe.recv_bundle {
                    PoolMode::Bundles
                } else {
                    PoolMode::Plain
                };
                let flags = if mode == PoolMode::Incremental {
                    io_uring::types::IOU_PBUF_RING_INC as u16
                } else {
                    0
                };
                let backend = &mut inner.backend;
                Pool::kernel(config, POOL_GROUP, mode, |addr, entries| {
                    backend.register_buf_ring(addr, entries, POOL_GROUP, flags)
                })
                .ok()
                .map(Rc::new)
            }
            Kind::IoUring => None,
        };
        inner.pool = Some(pool.clone());
        pool
    }

    /// Counters of the buffer pool, if it was built.
    pub(crate) fn pool_stats(&self) -> Option<PoolStats> {
        let inner = self.inner.borrow();
        inner.pool.as_ref()?.as_ref().map(|p| p.stats())
    }

    /// Takes ownership of `data` and hands the operation to the backend.
    ///
    /// The table keeps `data` at its heap address until the kernel is done
    /// with it. On error `data` is returned untouched: it never reached the
    /// kernel.
    pub(crate) fn submit<T: Owned>(
        &self,
        data: Box<T>,
        multishot: bool,
    ) -> Result<OpId, (Box<T>, io::Error)> {
        let mut inner = self.inner.borrow_mut();
        let Inner { backend, table, .. } = &mut *inner;
        // Make room first so that a failure leaves nothing behind.
        if let Err(e) = backend.reserve(table) {
            return Err((data, e));
        }
        let id = table.insert(backend.adopt(data), multishot);
        backend.submit(table, id);
        Ok(id)
    }

    /// Faults injected so far (tests only).
    #[cfg(feature = "fault-injection")]
    pub(crate) fn fault_stats(&self) -> faults::FaultStats {
        faults::stats(&*self.inner.borrow().backend)
    }

    /// Polls a single-shot entry.
    pub(crate) fn poll_op(
        &self,
        id: OpId,
        cx: &mut Context<'_>,
    ) -> Poll<(Box<dyn Owned>, CqeResult)> {
        self.inner.borrow_mut().table.poll(id, cx)
    }

    /// Polls a multishot entry for its next completion; `true` with it
    /// means it was the last and the entry is gone.
    pub(crate) fn poll_multishot(&self, id: OpId, cx: &mut Context<'_>) -> Poll<(CqeResult, bool)> {
        self.inner.borrow_mut().table.poll_multishot(id, cx)
    }

    /// The future waiting on `id` went away. If the kernel still owns the
    /// entry and `cancel` is set, the backend is asked to end it.
    pub(crate) fn release(&self, id: OpId, cancel: bool) {
        let mut inner = self.inner.borrow_mut();
        let Inner { backend, table, .. } = &mut *inner;
        if let Released::StillInFlight = table.release(id)
            && cancel
        {
            backend.cancel(table, id);
        }
    }

    /// One trip to the kernel: submit everything queued, wait for at least
    /// one completion if `wait` (up to `timeout`), and complete entries.
    pub(crate) fn turn(&self, wait: bool, timeout: Option<Duration>) -> io::Result<()> {
        let mut inner = self.inner.borrow_mut();
        let Inner { backend, table, .. } = &mut *inner;
        backend.turn(table, wait, timeout)
    }

    /// Cancels everything in flight and waits (up to `limit`) for the kernel
    /// to give it all back. Entries still in flight after that are leaked,
    /// never freed: the kernel may still write them.
    pub(crate) fn shutdown(&self, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        let mut inner = self.inner.borrow_mut();
        let Inner { backend, table, .. } = &mut *inner;
        table.drop_finished();
        for id in table.in_flight() {
            backend.cancel(table, id);
        }
        backend.stop_wake();
        while table.live() > 0 || backend.busy() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let _ = backend.turn(table, true, Some(deadline - now));
            table.drop_finished();
        }
        let pool = inner.pool.take().flatten();
        let Inner { backend, table, .. } = &mut *inner;
        if table.live() > 0 || backend.busy() {
            if let Some(pool) = pool {
                pool.leak();
            }
            table.leak_remaining()
        } else {
            // Nothing in flight can pick a buffer any more.
            if let Some(pool) = pool {
                backend.unregister_buf_ring(pool.bgid());
                pool.close();
            }
            0
        }
    }
}

/// The buffer group id of the runtime's pool.
const POOL_GROUP: u16 = 0;

/// The driver of the runtime current on this thread (see `rt::context`).
pub(crate) use crate::rt::context::current_driver as current;
