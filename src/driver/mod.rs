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
mod coop;
mod epoll;
pub(crate) mod eventfd;
#[cfg(test)]
pub(crate) mod fake;
#[cfg(feature = "fault-injection")]
pub(crate) mod faults;
mod fd;
pub(crate) mod host;
mod pool;
mod pool_slot;
mod probe;
mod shutdown;
mod table;
#[cfg(test)]
mod tests;
mod uring;

use eventfd::{EventFd, drain as drain_eventfd};

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::RawFd;
use std::task::{Context, Poll};
use std::time::Duration;

use backend::Backend;
pub use backend::Kind;
pub(crate) use caps::Caps;
pub use caps::{CAPS_OFF_ENV, Cap};
pub(crate) use completion::CqeResult;
pub use completion::{Attempt, Interest};
pub(crate) use fd::SharedFd;
#[cfg(feature = "hosted")]
pub(crate) use host::DriverTask;
pub(crate) use pool::{Inbox, Mode as PoolMode, Pool};
pub use pool::{PoolConfig, PoolStats};
#[cfg(feature = "hosted")]
pub(crate) use shutdown::SHUTDOWN_LIMIT;
pub(crate) use table::{OpId, Owned, Released};

use pool_slot::PoolSlot;
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
    /// Smallest `write_bytes` sent with `IORING_OP_SEND_ZC`; `None`: never.
    pub(crate) zero_copy_threshold: Option<usize>,
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
    /// Smallest `write_bytes` sent zero-copy (`None`: never); see
    /// [`Driver::zero_copy_threshold`].
    zero_copy_threshold: Option<usize>,
    /// The hosted driver task's link (idle on our own runtime).
    pub(crate) host: host::Link,
    /// [`shutdown`](Driver::shutdown) ran: dropping does not run it again.
    shut: Cell<bool>,
    /// The wake-up eventfd, when the driver owns it (hosted: no scheduler
    /// owns one). Declared after `inner`: closed after the backend.
    wake: Option<EventFd>,
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
    /// Starts the chosen backend (or io_uring, falling back to epoll)
    /// without the capabilities in `off` (those [`CAPS_OFF_ENV`] names, and
    /// what the caller adds). `wake_fd` is an eventfd other threads write
    /// to wake the runtime.
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
        let mut driver = Driver::with_backend(backend, config.pool, off);
        driver.zero_copy_threshold = config.zero_copy_threshold;
        Ok(driver)
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
            zero_copy_threshold: None,
            inner: RefCell::new(Inner {
                backend,
                table: Table::default(),
                pool_config,
                pool: PoolSlot::NotBuilt,
            }),
            host: host::Link::default(),
            shut: Cell::new(false),
            wake: None,
        }
    }

    /// Which backend runs.
    pub(crate) fn kind(&self) -> Kind {
        self.inner.borrow().backend.kind()
    }

    /// Entries in the table (in flight, or completed and not collected).
    #[cfg_attr(not(feature = "hosted"), allow(dead_code))]
    pub(crate) fn live(&self) -> usize {
        self.inner.borrow().table.live()
    }

    /// Whether this runtime's kernel interface has `cap` (decided when
    /// the backend started).
    pub(crate) fn has(&self, cap: Cap) -> bool {
        self.caps.has(cap)
    }

    /// The smallest `write_bytes` buffer sent with `IORING_OP_SEND_ZC`
    /// (where [`Cap::SendZc`] is on); `None`: zero-copy sends are off.
    pub(crate) fn zero_copy_threshold(&self) -> Option<usize> {
        self.zero_copy_threshold
    }

    /// An fd readable while completions wait, so another event loop can
    /// watch it and call [`Driver::turn`] without waiting.
    pub(crate) fn completion_fd(&self) -> io::Result<RawFd> {
        self.inner.borrow_mut().backend.completion_fd()
    }

    /// The completion fd for a host watching it edge-triggered (tokio).
    #[cfg_attr(not(feature = "hosted"), allow(dead_code))]
    pub(crate) fn host_fd(&self) -> io::Result<RawFd> {
        self.inner.borrow_mut().backend.host_fd()
    }

    /// Something waits for the next turn to reach the kernel.
    pub(crate) fn queued(&self) -> bool {
        self.inner.borrow_mut().backend.queued()
    }

    /// Gives the driver the wake-up eventfd to own (hosted: no scheduler
    /// does); it is closed after the backend.
    #[cfg_attr(not(feature = "hosted"), allow(dead_code))]
    pub(crate) fn own_wake_fd(&mut self, wake: EventFd) {
        self.wake = Some(wake);
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
        let flush = self.host.wants_flush() && backend.queued();
        drop(inner);
        if flush {
            self.host.ask_flush();
        }
        Ok(id)
    }

    /// Whether a fault plan decorates the backend (tests only): whoever
    /// acts outside the driver, so past its faults, must not then.
    #[cfg(feature = "fault-injection")]
    pub(crate) fn faulted(&self) -> bool {
        let any: &dyn std::any::Any = &*self.inner.borrow().backend;
        any.is::<faults::Faulty>()
    }

    /// Faults injected so far (tests only).
    #[cfg(feature = "fault-injection")]
    pub(crate) fn fault_stats(&self) -> faults::FaultStats {
        faults::stats(&*self.inner.borrow().backend)
    }

    /// Polls a single-shot entry.
    /// Hosted, collecting a completion spends a unit of tokio's budget
    /// (see `coop.rs`).
    pub(crate) fn poll_op(
        &self,
        id: OpId,
        cx: &mut Context<'_>,
    ) -> Poll<(Box<dyn Owned>, CqeResult)> {
        self.budgeted(cx, |table, cx| table.poll(id, cx))
    }

    /// Polls a multishot entry for its next completion; with the last
    /// the entry is gone and its data comes back.
    #[allow(clippy::type_complexity, reason = "the output of a poll")]
    pub(crate) fn poll_multishot(
        &self,
        id: OpId,
        cx: &mut Context<'_>,
    ) -> Poll<(CqeResult, Option<Box<dyn Owned>>)> {
        self.budgeted(cx, |table, cx| table.poll_multishot(id, cx))
    }

    /// Runs `poll` on the table; hosted, only with budget left, which a
    /// ready result spends.
    fn budgeted<R>(
        &self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&mut Table, &mut Context<'_>) -> Poll<R>,
    ) -> Poll<R> {
        if !self.host.is_hosted() {
            return poll(&mut self.inner.borrow_mut().table, cx);
        }
        let proceed = std::task::ready!(coop::poll_proceed(cx));
        let res = poll(&mut self.inner.borrow_mut().table, cx);
        if res.is_ready() {
            proceed.made_progress();
        }
        res
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
            let flush = self.host.wants_flush() && backend.queued();
            drop(inner);
            if flush {
                self.host.ask_flush();
            }
        }
    }

    /// One trip to the kernel: submit everything queued, wait for at least
    /// one completion if `wait` (up to `timeout`), and complete entries.
    pub(crate) fn turn(&self, wait: bool, timeout: Option<Duration>) -> io::Result<()> {
        let mut inner = self.inner.borrow_mut();
        let Inner { backend, table, .. } = &mut *inner;
        backend.turn(table, wait, timeout)
    }
}

/// The driver of the runtime current on this thread (see `rt::context`).
pub(crate) use crate::rt::context::current_driver as current;
