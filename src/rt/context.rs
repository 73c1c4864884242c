//! The one thread-local "current runtime": which driver operations submit
//! to and which scheduler `spawn` adds tasks to.
//!
//! [`enter`] installs a [`Handle`] on the calling thread until its guard
//! drops, restoring what was current before. It does not drive anything:
//! `Runtime::block_on` enters and then runs its own loop, but any other
//! executor may do the same. To poll this crate's futures from, say, a
//! tokio current-thread runtime, install the driver (and a scheduler for
//! `spawn`, or none, in which case `spawn` panics as it does outside a
//! runtime) on that executor's thread for as long as it polls them, and have
//! it call `Driver::turn` when the driver's completion fd is readable: the
//! futures only register with the driver and wake through ordinary `Waker`s,
//! which need no context. The test below does this by hand.
//!
//! While the thread's locals are being destroyed (a runtime kept in a
//! `thread_local!` dropped at thread exit) nothing can be installed or read:
//! `enter` then installs nothing and the readers see no runtime, never a
//! panic. Operations released then hold their own handle to the driver.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use super::sched::Scheduler;
use crate::driver::{Cap, Driver};

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

/// The driver current on this thread, if a host (tokio) drives it.
pub(crate) fn hosted_driver() -> Option<Rc<Driver>> {
    current().map(|h| h.driver).filter(|d| d.host.is_hosted())
}

/// Whether the driver current on this thread has `cap` (`false` without
/// one), without cloning the handle (every socket read-ahead asks this).
pub(crate) fn driver_has(cap: Cap) -> bool {
    CONTEXT
        .try_with(|c| Some(c.try_borrow().ok()?.as_ref()?.driver.has(cap)))
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// Whether a scheduler is current on this thread.
pub(crate) fn has_sched() -> bool {
    sched_is(|_| true)
}

/// Whether a scheduler is current on this thread and `is(it)` holds,
/// without cloning the handle (every wake asks this). `is` must not enter.
pub(crate) fn sched_is(is: impl FnOnce(&Scheduler) -> bool) -> bool {
    CONTEXT
        .try_with(|c| {
            let handle = c.try_borrow().ok()?;
            Some(handle.as_ref()?.sched.as_deref().is_some_and(is))
        })
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// Whether what the running task submits now would reach the kernel with
/// nothing but its own entries ([`Scheduler::alone_in_turn`]). `false`
/// without a scheduler of ours (hosted on tokio: its run queue is not
/// visible).
pub(crate) fn submission_alone() -> bool {
    sched_is(Scheduler::alone_in_turn)
}

/// Runs `f` with the current scheduler, if one is current on this thread.
pub(crate) fn with_sched<R>(f: impl FnOnce(&Scheduler) -> R) -> Option<R> {
    let sched = current()?.sched?;
    Some(f(&sched))
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::io::Write;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    use bytes::BytesMut;

    use super::*;
    use crate::Runtime;
    use crate::net::UnixStream;

    /// An executor that is not `block_on`: with only the driver entered
    /// (no scheduler), a socket read is polled by hand and completed by
    /// turning the driver, as an outside event loop would.
    #[test]
    fn foreign_executor_polls_with_the_driver_entered() {
        let rt = Runtime::new().unwrap();
        let (ours, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let ours = UnixStream::from_std(ours);
        let _guard = enter(Handle {
            driver: rt.driver.clone(),
            sched: None,
        });
        assert!(current_driver().is_ok());
        assert!(!has_sched(), "no scheduler was installed");
        assert!(
            super::super::task::try_spawn(async {}).is_none(),
            "spawn needs a scheduler"
        );
        let mut read = pin!(ours.read(BytesMut::with_capacity(16)));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(read.as_mut().poll(&mut cx).is_pending());
        peer.write_all(b"hi").unwrap();
        let (n, buf) = loop {
            if let Poll::Ready(out) = read.as_mut().poll(&mut cx) {
                break out;
            }
            rt.driver
                .turn(true, Some(Duration::from_millis(100)))
                .unwrap();
        };
        assert_eq!(&buf[..n.unwrap()], b"hi");
    }

    /// Leaving restores what was current before, also when nested.
    #[test]
    fn guards_restore_the_previous_handle() {
        let a = Runtime::new().unwrap();
        let b = Runtime::new().unwrap();
        assert!(current_driver().is_err());
        let outer = enter(Handle {
            driver: a.driver.clone(),
            sched: Some(a.sched.clone()),
        });
        {
            let _inner = enter(Handle {
                driver: b.driver.clone(),
                sched: None,
            });
            assert!(Rc::ptr_eq(&current_driver().unwrap(), &b.driver));
            assert!(!has_sched());
        }
        assert!(Rc::ptr_eq(&current_driver().unwrap(), &a.driver));
        assert!(has_sched());
        drop(outer);
        assert!(current_driver().is_err());
    }

    /// The writer's direct flush asks `submission_alone`: of the tasks
    /// polled in one turn only the last one submits alone, and (io_uring)
    /// not once an earlier task of its turn queued an entry; the main future only
    /// while no task is ready; nothing without a scheduler.
    #[test]
    fn submission_alone_only_for_the_last_task_of_a_turn() {
        let rt = Runtime::new().unwrap();
        let (ours, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let reader = Rc::new(RefCell::new(crate::io::BufReader::new(
            UnixStream::from_std(ours),
        )));
        let (main_alone, first, second) = rt.block_on(async move {
            let main_alone = submission_alone();
            let log = Rc::new(RefCell::new(Vec::new()));
            let spawn_logging = |n: usize, queue_read: bool| {
                let (log, reader) = (log.clone(), reader.clone());
                crate::spawn(async move {
                    if queue_read {
                        let mut r = reader.borrow_mut();
                        let mut fill = pin!(r.fill_buf());
                        let _ = fill.as_mut().poll(&mut Context::from_waker(Waker::noop()));
                    }
                    log.borrow_mut().push((n, submission_alone()));
                })
            };
            let tasks = [
                spawn_logging(0, false),
                spawn_logging(1, false),
                spawn_logging(2, false),
            ];
            assert!(!submission_alone(), "main with tasks ready");
            for t in tasks {
                t.await.unwrap();
            }
            let first = std::mem::take(&mut *log.borrow_mut());
            let tasks = [spawn_logging(0, true), spawn_logging(1, false)];
            for t in tasks {
                t.await.unwrap();
            }
            let second = std::mem::take(&mut *log.borrow_mut());
            (main_alone, first, second)
        });
        assert!(main_alone, "main alone before anything was spawned");
        assert_eq!(first, [(0, false), (1, false), (2, true)]);
        // On epoll an operation starts when submitted: nothing stays queued.
        let queues = rt.driver.kind() == crate::driver::Kind::IoUring;
        assert_eq!(second, [(0, false), (1, !queues)], "a receive was queued");
        assert!(!submission_alone(), "no scheduler outside block_on");
    }
}
