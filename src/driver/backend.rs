//! The interface every backend implements (see the contract in the
//! driver's module docs), and which one a runtime drives.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::caps::Caps;
use super::table::{OpId, Owned, Table};

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

/// The interface each backend implements; see the module docs.
pub(crate) trait Backend: std::any::Any {
    /// Which backend this is.
    fn kind(&self) -> Kind;
    /// What the kernel can do, found when the backend started.
    fn caps(&self) -> Caps;
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
    /// The completion fd for a host that watches it edge-triggered (tokio):
    /// each new completion makes a new edge, so the backend need not reset
    /// the fd at every reap (io_uring then saves a `read` per turn).
    fn host_fd(&mut self) -> io::Result<RawFd> {
        self.completion_fd()
    }
    /// Something waits for the next turn to reach the kernel: queued
    /// submission entries, or (io_uring) completions the kernel holds until
    /// it is entered. A host turns again before it lets its thread sleep.
    fn queued(&mut self) -> bool {
        false
    }
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
