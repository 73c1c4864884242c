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
//! above this module knows which one runs. A backend (the `Backend` trait)
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
//! * `completion_fd`: an fd readable while completions wait;
//! * `caps`: the capabilities ([`Cap`]) it found when it started.
//!
//! Layers above ask [`Driver::has`] for a capability; the driver answers
//! from a set decided once, when the backend started, minus what the test
//! switch [`CAPS_OFF_ENV`] turns off (see `caps.rs`).
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

mod backend;
mod caps;
mod completion;
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
#[cfg(test)]
mod tests;
mod uring;

use eventfd::drain as drain_eventfd;

use std::cell::RefCell;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use backend::Backend;
pub use backend::Kind;
pub(crate) use caps::Caps;
pub use caps::{CAPS_OFF_ENV, Cap};
pub(crate) use completion::CqeResult;
pub use completion::{Attempt, Interest};
pub(crate) use fd::SharedFd;
pub(crate) use pool::{Inbox, Mode as PoolMode, Pool};
pub use pool::{PoolConfig, PoolStats};
pub(crate) use table::{OpId, Owned, Released};

use table::Table;

/// Settings a runtime passes down when it builds its driver.
#[derive(Clone, Debug, Default)]
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
    /// What the backend can do, minus what was switched off; fixed from
    /// start, so asking needs no borrow.
    caps: Caps,
}

/// Mutable driver state.
struct Inner {
    /// The kernel interface.
    backend: Box<dyn Backend>,
    /// Every operation the kernel may still touch.
    table: Table,
    /// Sizing of the buffer pool.
    pool_config: PoolConfig,
    /// The receive buffer pool, built when a pooled reader first asks.
    pool: PoolSlot,
}

/// The runtime's receive buffer pool, or why there is none.
enum PoolSlot {
    /// No pooled reader asked yet.
    NotBuilt,
    /// The kernel cannot pick buffers, or registering the ring failed:
    /// pooled readers read the ordinary way.
    Unavailable,
    /// Built, shared by every pooled reader of the runtime.
    Built(Rc<Pool>),
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.inner.try_borrow() {
            Ok(inner) => f
                .debug_struct("Driver")
                .field("kind", &inner.backend.kind())
                .field("caps", &self.caps)
                .field("in_flight", &inner.table.live())
                .finish(),
            Err(_) => f.debug_struct("Driver").finish_non_exhaustive(),
        }
    }
}

impl Driver {
    /// Starts the chosen backend (or io_uring, falling back to epoll),
    /// without the capabilities [`CAPS_OFF_ENV`] names. `wake_fd` is an
    /// eventfd other threads write to wake the runtime.
    pub(crate) fn new(config: &Config, wake_fd: RawFd) -> io::Result<Driver> {
        Driver::start(config, wake_fd, Caps::switched_off()?)
    }

    /// [`Driver::new`] with the capabilities in `off` switched off.
    pub(crate) fn start(config: &Config, wake_fd: RawFd, off: Caps) -> io::Result<Driver> {
        let defer = !off.has(Cap::DeferTaskrun);
        let uring = || uring::Uring::new(config.entries, wake_fd, defer);
        let backend: Box<dyn Backend> = match config.kind {
            Some(Kind::IoUring) => Box::new(uring()?),
            Some(Kind::Epoll) => Box::new(epoll::Epoll::new(wake_fd)?),
            None => match uring() {
                Ok(ring) => Box::new(ring),
                Err(_) => Box::new(epoll::Epoll::new(wake_fd)?),
            },
        };
        #[cfg(feature = "fault-injection")]
        let backend = faults::wrap(backend, config.faults.clone());
        Ok(Driver::with_backend(backend, config.pool, off))
    }

    /// A driver over `backend` (the runtime's, or a fake in unit tests),
    /// without the capabilities in `off`.
    pub(crate) fn with_backend(
        backend: Box<dyn Backend>,
        pool_config: PoolConfig,
        off: Caps,
    ) -> Driver {
        Driver {
            caps: backend.caps().without(off),
            inner: RefCell::new(Inner {
                backend,
                table: Table::default(),
                pool_config,
                pool: PoolSlot::NotBuilt,
            }),
        }
    }

    /// Which backend runs.
    pub(crate) fn kind(&self) -> Kind {
        self.inner.borrow().backend.kind()
    }

    /// Whether this runtime's kernel interface has `cap` (decided when
    /// the backend started).
    pub(crate) fn has(&self, cap: Cap) -> bool {
        self.caps.has(cap)
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
        if let PoolSlot::NotBuilt = inner.pool {
            inner.pool = match self.build_pool(&mut inner) {
                Some(pool) => PoolSlot::Built(Rc::new(pool)),
                None => PoolSlot::Unavailable,
            };
        }
        match &inner.pool {
            PoolSlot::Built(pool) => Some(pool.clone()),
            PoolSlot::NotBuilt | PoolSlot::Unavailable => None,
        }
    }

    /// Builds the pool the backend and its capabilities allow, if any.
    fn build_pool(&self, inner: &mut Inner) -> Option<Pool> {
        let config = inner.pool_config;
        if inner.backend.kind() == Kind::Epoll {
            return Some(Pool::user(config));
        }
        let mode = self.kernel_pool_mode(&config)?;
        let flags = match mode {
            PoolMode::Incremental => io_uring::types::IOU_PBUF_RING_INC as u16,
            PoolMode::Bundles | PoolMode::Plain => 0,
        };
        let backend = &mut inner.backend;
        let pool = Pool::kernel(config, POOL_GROUP, mode, |addr, entries| {
            backend.register_buf_ring(addr, entries, POOL_GROUP, flags)
        })
        .ok()?;
        if !self.has(Cap::RecvLimit) {
            // Receives then never carry a byte limit; the cap rests on
            // cancelling a receive whose queue passes it.
            pool.refuse_limit();
        }
        Some(pool)
    }

    /// How a kernel pool would hand out buffers, or `None` if the kernel
    /// cannot pick buffers for multishot receives.
    fn kernel_pool_mode(&self, config: &PoolConfig) -> Option<PoolMode> {
        if !(self.has(Cap::BufRing) && self.has(Cap::MultishotRecv)) {
            return None;
        }
        Some(if config.get_incremental() && self.has(Cap::BufRingInc) {
            PoolMode::Incremental
        } else if config.get_bundles() && self.has(Cap::RecvBundle) {
            PoolMode::Bundles
        } else {
            PoolMode::Plain
        })
    }

    /// Counters of the buffer pool, if it was built.
    pub(crate) fn pool_stats(&self) -> Option<PoolStats> {
        match &self.inner.borrow().pool {
            PoolSlot::Built(pool) => Some(pool.stats()),
            PoolSlot::NotBuilt | PoolSlot::Unavailable => None,
        }
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
        let pool = match std::mem::replace(&mut inner.pool, PoolSlot::Unavailable) {
            PoolSlot::Built(pool) => Some(pool),
            PoolSlot::NotBuilt | PoolSlot::Unavailable => None,
        };
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
