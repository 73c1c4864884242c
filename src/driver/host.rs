//! The driver hosted by tokio: a task in the caller's `LocalSet` turns it
//! whenever tokio's reactor reports the completion fd readable, and
//! whenever operations queued something for the kernel.
//!
//! ```text
//!  op submits ──► SQE queued ──► Link::ask_flush ──► driver task woken
//!                                                        │ (same tokio tick,
//!  kernel completes ──► eventfd/epoll fd readable ──►    │  before it parks)
//!     (tokio's reactor)            driver task woken ────┤
//!                                                        ▼
//!                      Driver::turn(no wait): one io_uring_enter submits
//!                      the batch and reaps; op wakers (tokio tasks) woken
//! ```
//!
//! The invariant: no submission entry stays queued while the tokio thread
//! parks. tokio offers no per-tick hook on a runtime the user built, so the
//! first entry queued after a flush wakes the driver task; a woken task of
//! a `LocalSet` runs before its thread parks, and the entries queued by
//! every task polled before it go out in the same `io_uring_enter`.
//!
//! [`Link`] is the driver's side (compiled always, idle unless hosted);
//! the task itself needs tokio (feature `hosted`).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Waker};

/// A background task the driver task polls (the flush of a dropped writer).
type Lingering = Pin<Box<dyn Future<Output = ()>>>;

/// What a hosted driver shares with its driver task.
#[derive(Default)]
pub(crate) struct Link {
    /// A host drives this driver (set once, when it attaches).
    hosted: Cell<bool>,
    /// The driver task is alive and not stopped: it flushes and polls
    /// lingering tasks.
    running: Cell<bool>,
    /// A flush was asked for since the driver task last ran.
    flush_asked: Cell<bool>,
    /// The driver task's waker, from its last poll.
    waker: RefCell<Option<Waker>>,
    /// Background tasks the driver task polls at each of its polls.
    lingering: RefCell<Vec<Lingering>>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("hosted", &self.hosted.get())
            .field("running", &self.running.get())
            .finish_non_exhaustive()
    }
}

impl Link {
    /// A host drives the driver.
    pub(crate) fn is_hosted(&self) -> bool {
        self.hosted.get()
    }

    /// Whether an entry just queued must wake the driver task: hosted, and
    /// no flush asked for since it last ran.
    pub(crate) fn wants_flush(&self) -> bool {
        self.hosted.get() && !self.flush_asked.get()
    }

    /// Wakes the driver task to submit what is queued (once per batch).
    pub(crate) fn ask_flush(&self) {
        if self.flush_asked.replace(true) {
            return;
        }
        let waker = self.waker.borrow().clone();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Hands `future` to the driver task, which polls it to its end (or
    /// drops it when it stops); `false`, dropping it, when no driver task runs.
    pub(crate) fn linger(&self, future: Lingering) -> bool {
        if !self.running.get() {
            return false;
        }
        self.lingering.borrow_mut().push(future);
        self.ask_flush_again();
        true
    }

    /// Wakes the driver task even if a flush was already asked for.
    fn ask_flush_again(&self) {
        self.flush_asked.set(false);
        self.ask_flush();
    }

    /// The driver task starts (the driver is hosted from now on).
    #[cfg_attr(not(feature = "hosted"), allow(dead_code))]
    pub(crate) fn start(&self) {
        self.hosted.set(true);
        self.running.set(true);
    }

    /// Whether the driver task should go on.
    #[cfg_attr(not(feature = "hosted"), allow(dead_code))]
    pub(crate) fn running(&self) -> bool {
        self.running.get()
    }

    /// The driver task is polled: remember its waker and take the request.
    #[cfg_attr(not(feature = "hosted"), allow(dead_code))]
    pub(crate) fn polled(&self, cx: &Context<'_>) {
        self.flush_asked.set(false);
        let mut waker = self.waker.borrow_mut();
        match &*waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *waker = Some(cx.waker().clone()),
        }
    }

    /// Polls the lingering tasks once; those that finish are dropped.
    #[cfg_attr(not(feature = "hosted"), allow(dead_code))]
    pub(crate) fn poll_lingering(&self, cx: &mut Context<'_>) {
        if self.lingering.borrow().is_empty() {
            return;
        }
        // Taken out: a lingering task may hand over another one.
        let mut tasks = std::mem::take(&mut *self.lingering.borrow_mut());
        tasks.retain_mut(|t| t.as_mut().poll(cx).is_pending());
        self.lingering.borrow_mut().append(&mut tasks);
    }

    /// The driver task ends: lingering tasks are dropped (their operations
    /// released to the table) and no more are taken. This also breaks the
    /// cycle driver → lingering task → operation → driver.
    pub(crate) fn stop(&self) {
        self.running.set(false);
        self.waker.borrow_mut().take();
        let tasks = std::mem::take(&mut *self.lingering.borrow_mut());
        drop(tasks);
    }
}

#[cfg(feature = "hosted")]
pub(crate) use task::DriverTask;

/// The driver task (needs tokio's reactor).
#[cfg(feature = "hosted")]
mod task {
    use std::future::Future;
    use std::io;
    use std::os::fd::{AsRawFd, RawFd};
    use std::pin::Pin;
    use std::rc::Rc;
    use std::task::{Context, Poll};

    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    use super::super::Driver;

    /// Turns per poll before the driver task yields to tokio (completions
    /// keep arriving on a busy ring; other tasks must run too).
    const ROUNDS: usize = 16;

    /// The completion fd as tokio's reactor sees it; owned by the backend.
    #[derive(Debug)]
    struct Watched(RawFd);

    impl AsRawFd for Watched {
        fn as_raw_fd(&self) -> RawFd {
            self.0
        }
    }

    /// The task that turns a hosted driver. Spawned on the host's
    /// `LocalSet`; ends when the host stops it.
    #[derive(Debug)]
    pub(crate) struct DriverTask {
        /// Registration of the completion fd with tokio's reactor. Declared
        /// first: it is deregistered before the driver (which owns the fd)
        /// can drop.
        fd: AsyncFd<Watched>,
        /// The driver it turns.
        driver: Rc<Driver>,
    }

    impl DriverTask {
        /// Registers `driver`'s completion fd with the tokio runtime current
        /// on this thread and marks the driver hosted.
        ///
        /// # Panics
        /// As tokio does, if that runtime has IO disabled.
        pub(crate) fn new(driver: Rc<Driver>) -> io::Result<DriverTask> {
            if tokio::runtime::Handle::try_current().is_err() {
                return Err(io::Error::other(
                    "uring-bufio hosted mode needs a tokio runtime on this thread \
                     (call it inside Runtime::block_on, LocalSet::block_on or after Runtime::enter)",
                ));
            }
            let fd = driver.host_fd()?;
            // SAFETY: `fd` is the backend's completion fd, open until the
            // driver drops; the driver outlives this registration (the task
            // holds it in the field declared after `fd`, so the registration
            // is dropped first), and `Watched` always returns the same fd.
            let fd = unsafe { AsyncFd::register_with_interest(Watched(fd), Interest::READABLE) }
                .map_err(io::Error::from)?;
            driver.host.start();
            Ok(DriverTask { fd, driver })
        }

        /// Takes a readiness report of the completion fd, if tokio has one
        /// (clearing it: the turn that follows reaps everything before it).
        fn take_ready(&self, cx: &mut Context<'_>) -> bool {
            match self.fd.poll_read_ready(cx) {
                Poll::Ready(Ok(mut guard)) => {
                    guard.clear_ready();
                    true
                }
                // The reactor is gone (runtime shutting down): turn anyway.
                Poll::Ready(Err(_)) => true,
                Poll::Pending => false,
            }
        }
    }

    impl Future for DriverTask {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let this = self.get_mut();
            let link = &this.driver.host;
            if !link.running() {
                return Poll::Ready(());
            }
            link.polled(cx);
            link.poll_lingering(cx);
            // The first round turns whatever woke the task (a flush, a
            // lingering task's operation); later rounds only while the
            // kernel reported more or entries are queued.
            let mut turn = true;
            for _ in 0..ROUNDS {
                let ready = this.take_ready(cx);
                if !(turn || ready || this.driver.queued()) {
                    return Poll::Pending;
                }
                turn = false;
                if let Err(e) = this.driver.turn(false, None) {
                    panic!("uring-bufio: the kernel queue failed: {e}");
                }
                link.polled(cx);
            }
            // Still busy: let the other tasks run, then come back.
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    impl Drop for DriverTask {
        fn drop(&mut self) {
            self.driver.host.stop();
        }
    }
}
