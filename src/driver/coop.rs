//! tokio's cooperative budget, spent by hosted operations.
//!
//! A tokio task gets a budget of polls per turn of the scheduler
//! (`tokio::task::coop`); tokio's own resources spend one unit each time
//! they are ready and return `Pending` once it is gone, so that a loop over
//! always-ready IO yields and the reactor and timers get their turn. Hosted
//! on tokio, every operation of ours that is collected ready spends a unit
//! the same way ([`tokio::task::coop::poll_proceed`], public since tokio
//! 1.44). A reader whose buffer already holds data returns it without an
//! operation, so a loop over one buffer never yields; each refill of the
//! buffer does. Our own runtime has no budget: there this costs nothing.

use std::task::{Context, Poll};

/// Permission to complete one operation; spent only if
/// [`made_progress`](Proceed::made_progress) is called.
#[derive(Debug)]
pub(crate) struct Proceed {
    /// tokio's restore guard (returns the unit unless progress was made).
    #[cfg(feature = "hosted")]
    restore: tokio::task::coop::RestoreOnPending,
}

impl Proceed {
    /// The operation was collected: the unit stays spent.
    pub(crate) fn made_progress(&self) {
        #[cfg(feature = "hosted")]
        self.restore.made_progress();
    }
}

/// Takes one unit of the current tokio task's budget, or `Pending` (the
/// task is woken again at once) if it is spent.
#[cfg(feature = "hosted")]
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<Proceed> {
    tokio::task::coop::poll_proceed(cx).map(|restore| Proceed { restore })
}

/// Without tokio there is no budget.
#[cfg(not(feature = "hosted"))]
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<Proceed> {
    let _ = cx;
    Poll::Ready(Proceed {})
}
