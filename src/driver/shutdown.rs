//! Ending a driver: cancel what is in flight, wait (bounded) for the kernel
//! to give it back, free it, and leak, never free, what the kernel kept.
//!
//! Our runtime shuts its driver down when it is dropped, after its tasks.
//! A hosted driver has no such owner: it shuts down when the last holder
//! goes (the host, its driver task, the last operation of a task the
//! tokio runtime dropped), or when the host is shut down by hand.

use std::time::{Duration, Instant};

use super::{Driver, Inner, PoolSlot};

/// How long ending a driver waits for the kernel to return cancelled
/// operations before it leaks (never frees) what is left.
pub(crate) const SHUTDOWN_LIMIT: Duration = Duration::from_secs(5);

impl Driver {
    /// Cancels everything in flight and waits (up to `limit`) for the kernel
    /// to give it all back. Entries still in flight after that are leaked,
    /// never freed: the kernel may still write them. Returns how many were
    /// leaked. Runs once; later calls (and dropping) return 0.
    pub(crate) fn shutdown(&self, limit: Duration) -> usize {
        if self.shut.replace(true) {
            return 0;
        }
        self.host.stop();
        let deadline = Instant::now() + limit;
        let mut inner = self.inner.borrow_mut();
        let Inner { backend, table, .. } = &mut *inner;
        table.drop_finished();
        for id in table.in_flight() {
            backend.cancel(table, id);
        }
        // Cancels the backend completed at once (epoll) are freed now:
        // waiting below would otherwise sleep for the whole limit.
        table.drop_finished();
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

    /// [`shutdown`](Driver::shutdown) with [`SHUTDOWN_LIMIT`], saying on
    /// stderr what was leaked (there is no caller to tell).
    pub(crate) fn shutdown_and_report(&self) -> usize {
        let leaked = self.shutdown(SHUTDOWN_LIMIT);
        if leaked > 0 {
            eprintln!(
                "uring-bufio: {leaked} operations did not complete within {SHUTDOWN_LIMIT:?} of \
                 shutdown; their memory is leaked rather than freed while the kernel may use it"
            );
        }
        leaked
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Only a hosted driver ends here; our runtime shut its down already
        // (and a unit test's driver over the fake backend ends as it is).
        if self.host.is_hosted() {
            self.shutdown_and_report();
        }
    }
}
