//! Counters of one worker (or of the acceptor), updated on its thread and
//! read from any.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of one worker's counters (see [`Running::stats`](super::Running::stats)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Connections accepted from its own listener.
    pub accepted: u64,
    /// Connections handed in (by the acceptor or [`Running::hand_off`](super::Running::hand_off)).
    pub handed_in: u64,
    /// Connections whose task is running now.
    pub live: u64,
    /// Connection tasks that returned `Ok`.
    pub finished: u64,
    /// Connection tasks that returned an error.
    pub failed: u64,
    /// Connection tasks that panicked (the worker goes on).
    pub panicked: u64,
    /// Connection tasks cancelled at the shutdown deadline.
    pub cancelled: u64,
    /// Pauses taken because accepting failed for want of fds or memory
    /// (`EMFILE`, `ENFILE`, ...).
    pub resource_waits: u64,
}

/// The live counters behind a [`WorkerStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// See [`WorkerStats::accepted`].
    accepted: AtomicU64,
    /// See [`WorkerStats::handed_in`].
    handed_in: AtomicU64,
    /// See [`WorkerStats::live`].
    live: AtomicU64,
    /// See [`WorkerStats::finished`].
    finished: AtomicU64,
    /// See [`WorkerStats::failed`].
    failed: AtomicU64,
    /// See [`WorkerStats::panicked`].
    panicked: AtomicU64,
    /// See [`WorkerStats::cancelled`].
    cancelled: AtomicU64,
    /// See [`WorkerStats::resource_waits`].
    resource_waits: AtomicU64,
}

/// How a connection task ended.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ended {
    /// Its handler returned `Ok`.
    Finished,
    /// Its handler returned an error.
    Failed,
    /// Its handler panicked.
    Panicked,
    /// It was cancelled at the deadline.
    Cancelled,
}

/// Adds one.
fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    /// One more accepted connection.
    pub(crate) fn add_accepted(&self) {
        bump(&self.accepted);
    }

    /// One more handed-in connection.
    pub(crate) fn add_handed_in(&self) {
        bump(&self.handed_in);
    }

    /// One more backoff for want of resources.
    pub(crate) fn add_resource_wait(&self) {
        bump(&self.resource_waits);
    }

    /// A connection task started.
    pub(crate) fn started(&self) {
        bump(&self.live);
    }

    /// A connection task ended as `how`.
    pub(crate) fn ended(&self, how: Ended) {
        self.live.fetch_sub(1, Ordering::Relaxed);
        bump(match how {
            Ended::Finished => &self.finished,
            Ended::Failed => &self.failed,
            Ended::Panicked => &self.panicked,
            Ended::Cancelled => &self.cancelled,
        });
    }

    /// Connections running now.
    pub(crate) fn live(&self) -> u64 {
        self.live.load(Ordering::Relaxed)
    }

    /// A snapshot.
    pub(crate) fn snapshot(&self) -> WorkerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WorkerStats {
            accepted: get(&self.accepted),
            handed_in: get(&self.handed_in),
            live: get(&self.live),
            finished: get(&self.finished),
            failed: get(&self.failed),
            panicked: get(&self.panicked),
            cancelled: get(&self.cancelled),
            resource_waits: get(&self.resource_waits),
        }
    }
}
