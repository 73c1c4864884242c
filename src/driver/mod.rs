//! The kernel queue.
//!
//! One [`Driver`] per runtime. It owns the io_uring instance and the in-flight
//! [`Table`](table::Table), and is the only place that talks to the kernel's
//! queues. Everything above it goes through four calls:
//!
//! * [`Driver::submit`]: take ownership of an operation's data, push its
//!   submission entry (batched: it reaches the kernel at the next
//!   [`Driver::turn`]), return its [`OpId`];
//! * [`Driver::poll_op`] / [`Driver::poll_multishot`]: collect the completion;
//! * [`Driver::release`]: the waiting future went away (the entry becomes
//!   abandoned and, for operations that may never complete, is cancelled);
//! * [`Driver::turn`]: one `io_uring_enter` that submits everything queued and,
//!   if asked, waits; then reap completions into the table.
//!
//! A backend must provide: queueing an entry for submission, one enter call
//! that submits and optionally waits with a timeout, reaping completions as
//! `(user_data, result, flags)`, and cancelling by `user_data`. The io_uring
//! backend lives in `uring.rs`.
//!
//! Negative completion results become `io::Error` in exactly one place:
//! [`CqeResult::new`].

mod fd;
mod probe;
mod table;
mod uring;

use std::cell::RefCell;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

pub(crate) use fd::SharedFd;
pub use probe::Probe;
pub(crate) use table::{OpId, Owned, Released};

use table::Table;
use uring::Uring;

/// `user_data` of completions that belong to no table entry (async cancels).
const CANCEL_TAG: u64 = u64::MAX;
/// `user_data` of the poll on the runtime's wake-up eventfd.
const WAKE_TAG: u64 = u64::MAX - 1;

/// The outcome of one completion: the kernel's result and its flags.
#[derive(Debug)]
pub(crate) struct CqeResult {
    /// Non-negative result, or the error the kernel returned.
    pub(crate) result: io::Result<u32>,
    /// `IORING_CQE_F_*` flags.
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

/// Settings a runtime passes down when it builds its driver.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// Submission queue entries (rounded up to a power of two by the kernel).
    pub(crate) entries: u32,
}

/// The driver: the ring and the table of operations in flight.
pub(crate) struct Driver {
    /// Mutable state; never borrowed across an await or a user callback.
    inner: RefCell<Inner>,
}

/// Mutable driver state.
struct Inner {
    /// The io_uring backend.
    ring: Uring,
    /// Every operation the kernel may still touch.
    table: Table,
    /// Async cancels sent whose completion has not arrived yet.
    cancels_in_flight: usize,
    /// A poll on the wake-up eventfd is in flight.
    wake_armed: bool,
    /// The eventfd other threads write to wake this runtime.
    wake_fd: RawFd,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.inner.try_borrow() {
            Ok(inner) => f
                .debug_struct("Driver")
                .field("in_flight", &inner.table.live())
                .field("probe", inner.ring.probe())
                .finish(),
            Err(_) => f.debug_struct("Driver").finish_non_exhaustive(),
        }
    }
}

impl Driver {
    /// Builds the ring, probes the kernel and arms the wake-up poll.
    pub(crate) fn new(config: &Config, wake_fd: RawFd) -> io::Result<Driver> {
        let ring = Uring::new(config.entries)?;
        Ok(Driver {
            inner: RefCell::new(Inner {
                ring,
                table: Table::default(),
                cancels_in_flight: 0,
                wake_armed: false,
                wake_fd,
            }),
        })
    }

    /// What the kernel supports, probed once at start.
    pub(crate) fn probe(&self) -> Probe {
        self.inner.borrow().ring.probe().clone()
    }

    /// An fd readable while completions wait, so another event loop can
    /// watch it and call [`Driver::turn`] without waiting.
    pub(crate) fn completion_fd(&self) -> io::Result<RawFd> {
        self.inner.borrow_mut().ring.notify_fd()
    }

    /// Takes ownership of `data` and queues its submission entry.
    ///
    /// `build` is called once `data` sits at its final heap address; the entry
    /// it returns may point into `data`, which the table keeps alive until the
    /// completion arrives. On error `data` is returned untouched: it was never
    /// handed to the kernel.
    pub(crate) fn submit<T: Owned>(
        &self,
        data: Box<T>,
        multishot: bool,
        build: impl FnOnce(&mut T) -> io_uring::squeue::Entry,
    ) -> Result<OpId, (Box<T>, io::Error)> {
        let mut data = data;
        let entry = build(&mut data);
        let mut inner = self.inner.borrow_mut();
        // Make room first so that a failure leaves nothing behind.
        if let Err(e) = inner.make_room() {
            return Err((data, e));
        }
        let id = inner.table.insert(data, multishot);
        let entry = entry.user_data(id.user_data());
        // SAFETY: every pointer in `entry` refers to memory owned by the box
        // now held by the table entry `id`, which is freed only after the
        // kernel's completion for `id` has been reaped (table.rs); there is
        // room in the queue (make_room above), so the push cannot fail.
        unsafe { inner.ring.push(&entry) }.expect("submission queue full after make_room");
        Ok(id)
    }

    /// Polls a single-shot entry.
    pub(crate) fn poll_op(
        &self,
        id: OpId,
        cx: &mut Context<'_>,
    ) -> Poll<(Box<dyn Owned>, CqeResult)> {
        self.inner.borrow_mut().table.poll(id, cx)
    }

    /// The future waiting on `id` went away. If the kernel still owns the
    /// entry and `cancel` is set, an async cancel is queued.
    pub(crate) fn release(&self, id: OpId, cancel: bool) {
        let mut inner = self.inner.borrow_mut();
        if let Released::StillInFlight = inner.table.release(id)
            && cancel
        {
            inner.cancel(id);
        }
    }

    /// One trip to the kernel: submit everything queued, wait for at least
    /// one completion if `wait` (up to `timeout`), and reap completions.
    pub(crate) fn turn(&self, wait: bool, timeout: Option<Duration>) -> io::Result<()> {
        let mut inner = self.inner.borrow_mut();
        if wait {
            inner.arm_wake();
        }
        let res = inner.ring.enter(wait, timeout);
        inner.reap();
        res
    }

    /// Cancels everything in flight and waits (up to `limit`) for the kernel
    /// to give it all back. Entries still in flight after that are leaked,
    /// never freed: the kernel may still write them.
    pub(crate) fn shutdown(&self, limit: Duration) -> usize {
        let deadline = std::time::Instant::now() + limit;
        let mut inner = self.inner.borrow_mut();
        inner.table.drop_finished();
        for id in inner.table.in_flight() {
            inner.cancel(id);
        }
        if inner.wake_armed {
            inner.cancel_raw(WAKE_TAG);
        }
        while inner.busy() {
            let now = std::time::Instant::now();
            if now >= deadline {
                break;
            }
            let _ = inner.ring.enter(true, Some(deadline - now));
            inner.reap();
            inner.table.drop_finished();
        }
        if inner.busy() {
            inner.table.leak_remaining()
        } else {
            0
        }
    }
}

impl Inner {
    /// Anything the kernel has not given back yet.
    fn busy(&self) -> bool {
        self.table.live() > 0 || self.cancels_in_flight > 0 || self.wake_armed
    }

    /// Ensures one free submission slot, submitting (and reaping, when the
    /// kernel pushes back) as needed.
    fn make_room(&mut self) -> io::Result<()> {
        while self.ring.sq_full() {
            match self.ring.enter(false, None) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
                Err(e) => return Err(e),
            }
            // EBUSY means completions must be reaped before more submissions.
            self.reap();
        }
        Ok(())
    }

    /// Queues an async cancel of `id`.
    fn cancel(&mut self, id: OpId) {
        self.cancel_raw(id.user_data());
    }

    /// Queues an async cancel of the entry carrying `user_data`.
    fn cancel_raw(&mut self, user_data: u64) {
        if self.make_room().is_err() {
            // The queue cannot take it now; the entry stays in the table
            // (owned, never freed early) and shutdown retries the cancel.
            return;
        }
        let entry = io_uring::opcode::AsyncCancel::new(user_data)
            .build()
            .user_data(CANCEL_TAG);
        // SAFETY: an async cancel carries no pointers; room was made above.
        if unsafe { self.ring.push(&entry) }.is_ok() {
            self.cancels_in_flight += 1;
        }
    }

    /// Arms a poll on the wake-up eventfd if none is in flight.
    fn arm_wake(&mut self) {
        if self.wake_armed || self.make_room().is_err() {
            return;
        }
        let entry =
            io_uring::opcode::PollAdd::new(io_uring::types::Fd(self.wake_fd), libc::POLLIN as u32)
                .build()
                .user_data(WAKE_TAG);
        // SAFETY: a poll carries no pointers into our memory; the eventfd
        // outlives the ring (the runtime closes it after the driver).
        if unsafe { self.ring.push(&entry) }.is_ok() {
            self.wake_armed = true;
        }
    }

    /// Moves every available completion into the table.
    fn reap(&mut self) {
        if let Some(fd) = self.ring.notify_raw() {
            drain_eventfd(fd);
        }
        loop {
            let Inner {
                ring,
                table,
                cancels_in_flight,
                wake_armed,
                wake_fd,
            } = self;
            let n = ring.reap(|user_data, res, flags| match user_data {
                CANCEL_TAG => *cancels_in_flight -= 1,
                WAKE_TAG => {
                    *wake_armed = false;
                    drain_eventfd(*wake_fd);
                }
                _ => table.complete(OpId::from_user_data(user_data), CqeResult::new(res, flags)),
            });
            // Completions the kernel kept aside when the queue overflowed are
            // flushed by the next enter; loop until none is left.
            if n == 0 || !self.ring.cq_overflowed() {
                break;
            }
            let _ = self.ring.enter(false, None);
        }
    }
}

/// Resets the wake-up eventfd's counter (non-blocking; it may be zero).
fn drain_eventfd(fd: RawFd) {
    let mut buf = [0u8; 8];
    // SAFETY: `buf` is a valid 8-byte buffer for the duration of the call.
    let _ = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
}

thread_local! {
    /// The driver of the runtime running on this thread, if any.
    static CURRENT: RefCell<Option<Rc<Driver>>> = const { RefCell::new(None) };
}

/// The driver of the runtime running on this thread.
pub(crate) fn current() -> io::Result<Rc<Driver>> {
    CURRENT
        .with(|c| c.borrow().clone())
        .ok_or_else(|| io::Error::other("no uring-bufio runtime is running on this thread"))
}

/// Makes `driver` current on this thread until the guard drops.
pub(crate) fn enter(driver: Rc<Driver>) -> EnterGuard {
    let prev = CURRENT.with(|c| c.borrow_mut().replace(driver));
    EnterGuard { prev }
}

/// Restores the previously current driver on drop.
pub(crate) struct EnterGuard {
    /// The driver that was current before.
    prev: Option<Rc<Driver>>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
    }
}
