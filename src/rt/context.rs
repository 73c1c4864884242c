//! The one thread-local "current runtime": which driver operations submit
//! to and which scheduler `spawn` adds tasks to.
//!
//! [`enter`] installs a [`Handle`] on the calling thread until its guard
//! drops, restoring what was current before. It does not drive anything:
//! `Runtime::block_on` enters and then runs its own loop, but any other
//! executor may do the same. To poll this crate's futures from, say, a tokio
//! current-thread runtime, install the driver (and a scheduler for `spawn`,
//! or none, in which case `spawn` fails with an error) on that executor's
//! thread for as long as it polls them, and have it call `Driver::turn` when
//! the driver's completion fd is readable: the futures only register with
//! the driver and wake through ordinary `Waker`s, which need no context.
//!
//! While the thread's locals are being destroyed (a runtime kept in a
//! `thread_local!` dropped at thread exit) nothing can be installed or read:
//! `enter` then installs nothing and the readers see no runtime, never a
//! panic. Operations released then hold their own handle to the driver.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use super::sched::Scheduler;
use crate::driver::Driver;

/// What is current on a thread.
#[derive(Clone, Debug)]
pub(crate) struct Handle {
    /// The kernel queue operations submit to.
    pub(crate) driver: Rc<Driver>,
    /// Where `spawn` puts tasks and whose wakers may skip the eventfd on
    /// this thread; `None` while no scheduler polls here (a runtime being
    /// dropped, or a foreign executor that brought none).
    pub(crate) sched: Option<Rc<Scheduler>>,
}

thread_local! {
    /// The runtime current on this thread, if any.
    static CONTEXT: RefCell<Option<Handle>> = const { RefCell::new(None) };
}

/// Makes `handle` current on this thread until the guard drops.
pub(crate) fn enter(handle: Handle) -> EnterGuard {
    let prev = CONTEXT.try_with(|c| c.replace(Some(handle))).ok().flatten();
    EnterGuard { prev }
}

/// Restores the previously current handle on drop.
#[derive(Debug)]
pub(crate) struct EnterGuard {
    /// The handle that was current before `enter`.
    prev: Option<Handle>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        // The replaced handle drops after the borrow ends: dropping it may
        // run code that reads the context.
        let _old = CONTEXT.try_with(|c| c.replace(prev));
    }
}

/// A clone of what is current, if anything (and the locals are alive).
fn current() -> Option<Handle> {
    CONTEXT
        .try_with(|c| c.try_borrow().ok().and_then(|h| h.clone()))
        .ok()
        .flatten()
}

/// The driver current on this thread.
pub(crate) fn current_driver() -> io::Result<Rc<Driver>> {
    current()
        .map(|h| h.driver)
        .ok_or_else(|| io::Error::other("no uring-bufio runtime is running on this thread"))
}

/// Whether a scheduler is current on this thread.
pub(crate) fn has_sched() -> bool {
    current().is_some_and(|h| h.sched.is_some())
}

/// Runs `f` with the current scheduler, if one is current on this thread.
pub(crate) fn with_sched<R>(f: impl FnOnce(&Scheduler) -> R) -> Option<R> {
    let sched = current()?.sched?;
    Some(f(&sched))
}
