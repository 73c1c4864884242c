//! The io_uring backend: ring setup, pushing entries, entering the kernel,
//! reaping completions.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use io_uring::{IoUring, opcode, squeue, types};

use super::caps::Caps;
use super::eventfd::EventFd;
use super::probe::Probe;
use super::table::{OpId, Table};
use super::{Backend, CqeResult, Kind, drain_eventfd};

/// `user_data` of completions that belong to no table entry (async cancels).
const CANCEL_TAG: u64 = u64::MAX;
/// `user_data` of the poll on the runtime's wake-up eventfd.
const WAKE_TAG: u64 = u64::MAX - 1;

/// One io_uring instance and what the kernel told us about it.
pub(super) struct Uring {
    /// The ring.
    ring: IoUring,
    /// Kernel support, probed once.
    probe: Probe,
    /// An eventfd the kernel signals whenever completions are posted or
    /// deferred work is queued; registered the first time another event loop
    /// asks for something to watch (it costs a little per completion).
    notify: Option<EventFd>,
    /// Reset `notify` at each reap; not when a host watches it
    /// edge-triggered (every completion then makes a new edge by itself).
    drain_notify: bool,
    /// Async cancels sent whose completion has not arrived yet.
    cancels_in_flight: usize,
    /// A poll on the wake-up eventfd is in flight.
    wake_armed: bool,
    /// Arm the wake-up poll before sleeping (cleared at shutdown).
    wake_wanted: bool,
    /// The eventfd other threads write to wake this runtime.
    wake_fd: RawFd,
    /// Multishot entries whose uncollected completions reached their cap,
    /// to be cancelled once reaping is done.
    capped: Vec<OpId>,
}

impl Uring {
    /// Sets up a ring of `entries`, preferring the cheapest task-run mode the
    /// kernel offers: deferred task work (6.1, skipped unless
    /// `defer_taskrun`), then cooperative (5.19), then none. Fails, naming
    /// the cause, where the kernel refuses io_uring or lacks an operation
    /// the crate needs.
    pub(super) fn new(entries: u32, wake_fd: RawFd, defer_taskrun: bool) -> io::Result<Uring> {
        let (ring, defer) = setup(entries.max(2), defer_taskrun)?;
        let probe = Probe::detect(&ring, defer)?;
        Ok(Uring {
            ring,
            probe,
            notify: None,
            drain_notify: true,
            cancels_in_flight: 0,
            wake_armed: false,
            wake_wanted: true,
            wake_fd,
            capped: Vec::new(),
        })
    }

    /// Ensures one free submission slot, submitting (and reaping, when the
    /// kernel pushes back) as needed.
    fn make_room(&mut self, table: &mut Table) -> io::Result<()> {
        while self.ring.submission().is_full() {
            match self.enter(false, None) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
                Err(e) => return Err(e),
            }
            // EBUSY means completions must be reaped before more submissions.
            self.reap(table);
        }
        Ok(())
    }

    /// Pushes an entry that carries no pointers into our memory (cancels,
    /// polls); returns whether it was queued.
    fn push_plain(&mut self, table: &mut Table, entry: squeue::Entry) -> bool {
        if self.make_room(table).is_err() {
            return false;
        }
        // SAFETY: the entry points into no memory of ours; room was made.
        unsafe { self.ring.submission().push(&entry) }.is_ok()
    }

    /// Arms a poll on the wake-up eventfd if none is in flight.
    fn arm_wake(&mut self, table: &mut Table) {
        if self.wake_armed || !self.wake_wanted {
            return;
        }
        let entry = opcode::PollAdd::new(types::Fd(self.wake_fd), libc::POLLIN as u32)
            .build()
            .user_data(WAKE_TAG);
        // The eventfd outlives the ring: the runtime closes it after the driver.
        self.wake_armed = self.push_plain(table, entry);
    }

    /// Submits what is queued; waits for one completion if `wait`, at most
    /// `timeout`. Skips the syscall when there is nothing to submit, nothing
    /// to wait for and no deferred kernel work. EINTR, ETIME, EAGAIN and EBUSY
    /// are not errors here: the caller reaps and comes back.
    fn enter(&mut self, wait: bool, timeout: Option<Duration>) -> io::Result<()> {
        if !wait {
            let sq = self.ring.submission();
            if sq.is_empty() && !sq.taskrun() && !sq.cq_overflow() {
                return Ok(());
            }
        }
        let want = usize::from(wait);
        let res = match timeout {
            Some(t) if wait && self.probe.ext_arg => {
                let ts = types::Timespec::from(t);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(want, &args)
            }
            _ => self.ring.submitter().submit_and_wait(want),
        };
        match res {
            Ok(_) => Ok(()),
            Err(e) => match e.raw_os_error() {
                Some(libc::EINTR | libc::ETIME | libc::EAGAIN | libc::EBUSY) => Ok(()),
                _ => Err(e),
            },
        }
    }

    /// Moves every available completion into the table.
    fn reap(&mut self, table: &mut Table) {
        if let Some(fd) = &self.notify
            && self.drain_notify
        {
            fd.drain();
        }
        loop {
            let mut n = 0;
            for cqe in self.ring.completion() {
                n += 1;
                match cqe.user_data() {
                    CANCEL_TAG => self.cancels_in_flight -= 1,
                    WAKE_TAG => {
                        self.wake_armed = false;
                        drain_eventfd(self.wake_fd);
                    }
                    user_data => {
                        let id = OpId::from_user_data(user_data);
                        if table.complete(id, CqeResult::new(cqe.result(), cqe.flags())) {
                            self.capped.push(id);
                        }
                    }
                }
            }
            // Completions the kernel kept aside when the queue overflowed are
            // flushed by the next enter; loop until none is left.
            if n == 0 || !self.ring.submission().cq_overflow() {
                break;
            }
            let _ = self.enter(false, None);
        }
    }
}

/// Builds a ring, trying the task-run modes from cheapest to plainest
/// (deferred task-run only if `defer_taskrun`); returns it and whether
/// deferred task-run is on.
fn setup(entries: u32, defer_taskrun: bool) -> io::Result<(IoUring, bool)> {
    let attempts: [fn(&mut io_uring::Builder) -> &mut io_uring::Builder; 3] = [
        |b| {
            b.setup_single_issuer()
                .setup_defer_taskrun()
                .setup_taskrun_flag()
                .setup_submit_all()
        },
        |b| {
            b.setup_coop_taskrun()
                .setup_taskrun_flag()
                .setup_submit_all()
        },
        |b| b,
    ];
    let mut last = None;
    let first = usize::from(!defer_taskrun);
    for (mode, attempt) in attempts.iter().enumerate().skip(first) {
        let mut builder = IoUring::builder();
        builder
            .setup_cqsize(entries.saturating_mul(4).max(16))
            .setup_clamp();
        attempt(&mut builder);
        match builder.build(entries) {
            Ok(ring) => return Ok((ring, mode == 0)),
            // EINVAL: flags this kernel does not know; try fewer.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = Some(e),
            Err(e) => return Err(setup_error(e)),
        }
    }
    Err(setup_error(last.expect("at least one attempt ran")))
}

impl Backend for Uring {
    fn kind(&self) -> Kind {
        Kind::IoUring
    }

    fn caps(&self) -> Caps {
        self.probe.caps
    }

    fn reserve(&mut self, table: &mut Table) -> io::Result<()> {
        self.make_room(table)
    }

    fn submit(&mut self, table: &mut Table, id: OpId) {
        let data = table
            .data_mut(id)
            .expect("submit of an entry that is not in the table");
        let entry = data.entry().user_data(id.user_data());
        // SAFETY: every pointer in `entry` refers to memory owned by the boxed
        // data of table entry `id`, which is freed only after the kernel's
        // completion for `id` has been reaped (table.rs); `reserve` made room
        // just before, so the push cannot fail.
        let pushed = unsafe { self.ring.submission().push(&entry) };
        pushed.expect("submission queue full after reserve");
    }

    fn cancel(&mut self, table: &mut Table, id: OpId) {
        let entry = opcode::AsyncCancel::new(id.user_data())
            .build()
            .user_data(CANCEL_TAG);
        // If the queue cannot take it now the entry stays in the table
        // (owned, never freed early) and shutdown sends another cancel.
        if self.push_plain(table, entry) {
            self.cancels_in_flight += 1;
        }
    }

    fn turn(&mut self, table: &mut Table, wait: bool, timeout: Option<Duration>) -> io::Result<()> {
        let before = table.completions();
        if wait {
            // Making room for the poll may reap completions (a full queue).
            self.arm_wake(table);
        }
        let wait = wait && table.completions() == before;
        let res = self.enter(wait, timeout);
        self.reap(table);
        // Cancels go out with the next enter; an entry finished meanwhile
        // makes its cancel a harmless miss (ids carry a generation).
        while let Some(id) = self.capped.pop() {
            self.cancel(table, id);
        }
        res
    }

    fn register_buf_ring(
        &mut self,
        addr: u64,
        entries: u16,
        bgid: u16,
        flags: u16,
    ) -> io::Result<()> {
        // SAFETY: the caller (the pool) keeps `entries` ring entries of
        // memory at `addr` mapped until `unregister_buf_ring` (or leaks it).
        unsafe {
            self.ring
                .submitter()
                .register_buf_ring_with_flags(addr, entries, bgid, flags)
        }
    }

    fn unregister_buf_ring(&mut self, bgid: u16) {
        let _ = self.ring.submitter().unregister_buf_ring(bgid);
    }

    fn busy(&self) -> bool {
        self.cancels_in_flight > 0 || self.wake_armed
    }

    fn stop_wake(&mut self) {
        self.wake_wanted = false;
        if self.wake_armed {
            let entry = opcode::AsyncCancel::new(WAKE_TAG)
                .build()
                .user_data(CANCEL_TAG);
            // SAFETY: an async cancel carries no pointers into our memory.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                self.cancels_in_flight += 1;
            }
        }
    }

    fn completion_fd(&mut self) -> io::Result<RawFd> {
        if let Some(fd) = &self.notify {
            return Ok(fd.as_raw_fd());
        }
        let fd = EventFd::new()?;
        self.ring.submitter().register_eventfd(fd.as_raw_fd())?;
        let raw = fd.as_raw_fd();
        self.notify = Some(fd);
        Ok(raw)
    }

    fn host_fd(&mut self) -> io::Result<RawFd> {
        let fd = self.completion_fd()?;
        self.drain_notify = false;
        Ok(fd)
    }

    fn queued(&mut self) -> bool {
        let sq = self.ring.submission();
        !sq.is_empty() || sq.taskrun() || sq.cq_overflow()
    }
}

/// Names the usual causes when the kernel refuses to set up a ring.
fn setup_error(e: io::Error) -> io::Error {
    let why = match e.raw_os_error() {
        Some(libc::EPERM) => {
            "io_uring is not permitted (a seccomp filter such as Docker's default profile, or sysctl kernel.io_uring_disabled)"
        }
        Some(libc::ENOSYS) => "io_uring is not available (kernel too old or built without it)",
        Some(libc::ENOMEM) => "io_uring setup ran out of locked memory (raise RLIMIT_MEMLOCK)",
        _ => "io_uring setup failed",
    };
    io::Error::new(e.kind(), format!("{why}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deferred task-run comes with `SINGLE_ISSUER`, which the ring's
    /// parameters report: set up only when allowed.
    #[test]
    fn deferred_task_run_is_set_up_only_when_allowed() {
        let (ring, defer) = setup(8, true).expect("ring");
        assert!(defer && ring.params().is_setup_single_issuer());
        let (ring, defer) = setup(8, false).expect("ring");
        assert!(!defer && !ring.params().is_setup_single_issuer());
        let uring = Uring::new(8, -1, false).expect("ring");
        assert!(!uring.caps().has(super::super::Cap::DeferTaskrun));
    }
}
