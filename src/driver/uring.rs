//! The io_uring backend: ring setup, pushing entries, entering the kernel,
//! reaping completions.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use io_uring::{IoUring, squeue, types};

use super::probe::Probe;

/// One io_uring instance and what the kernel told us about it.
pub(super) struct Uring {
    /// The ring.
    ring: IoUring,
    /// Kernel support, probed once.
    probe: Probe,
    /// An eventfd the kernel signals whenever completions are posted or
    /// deferred work is queued; registered the first time another event loop
    /// asks for something to watch (it costs a little per completion).
    notify: Option<OwnedFd>,
}

impl Uring {
    /// Sets up a ring of `entries`, preferring the cheapest task-run mode the
    /// kernel offers: deferred task work (6.1), then cooperative (5.19), then none.
    pub(super) fn new(entries: u32) -> io::Result<Uring> {
        let entries = entries.max(2);
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
        for (mode, attempt) in attempts.iter().enumerate() {
            let mut builder = IoUring::builder();
            builder
                .setup_cqsize(entries.saturating_mul(4).max(16))
                .setup_clamp();
            attempt(&mut builder);
            match builder.build(entries) {
                Ok(ring) => {
                    let probe = Probe::detect(&ring, mode == 0);
                    return Ok(Uring {
                        ring,
                        probe,
                        notify: None,
                    });
                }
                // EINVAL: flags this kernel does not know; try fewer.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = Some(e),
                Err(e) => return Err(setup_error(e)),
            }
        }
        Err(setup_error(last.expect("at least one attempt ran")))
    }

    /// What the kernel supports.
    pub(super) fn probe(&self) -> &Probe {
        &self.probe
    }

    /// An fd that becomes readable when completions wait (also deferred
    /// ones, which the ring fd itself does not signal).
    pub(super) fn notify_fd(&mut self) -> io::Result<RawFd> {
        if let Some(fd) = &self.notify {
            return Ok(fd.as_raw_fd());
        }
        // SAFETY: eventfd takes no pointers; the result is checked.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        self.ring.submitter().register_eventfd(raw)?;
        self.notify = Some(fd);
        Ok(raw)
    }

    /// The notification eventfd, if registered.
    pub(super) fn notify_raw(&self) -> Option<RawFd> {
        self.notify.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// True when no submission entry can be pushed before submitting.
    pub(super) fn sq_full(&mut self) -> bool {
        self.ring.submission().is_full()
    }

    /// Pushes one entry.
    ///
    /// # Safety
    /// Every pointer in `entry` must stay valid until its completion is reaped.
    pub(super) unsafe fn push(&mut self, entry: &squeue::Entry) -> Result<(), squeue::PushError> {
        // SAFETY: forwarded to the caller's contract.
        unsafe { self.ring.submission().push(entry) }
    }

    /// True when the kernel holds completions it could not post (overflow).
    pub(super) fn cq_overflowed(&mut self) -> bool {
        self.ring.submission().cq_overflow()
    }

    /// Submits what is queued; waits for one completion if `wait`, at most
    /// `timeout`. Skips the syscall when there is nothing to submit, nothing
    /// to wait for and no deferred kernel work. EINTR, ETIME, EAGAIN and EBUSY
    /// are not errors here: the caller reaps and comes back.
    pub(super) fn enter(&mut self, wait: bool, timeout: Option<Duration>) -> io::Result<()> {
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

    /// Calls `f(user_data, result, flags)` for every completion available.
    pub(super) fn reap(&mut self, mut f: impl FnMut(u64, i32, u32)) -> usize {
        let mut n = 0;
        for cqe in self.ring.completion() {
            n += 1;
            f(cqe.user_data(), cqe.result(), cqe.flags());
        }
        n
    }
}

/// Names the usual causes when the kernel refuses to set up a ring.
fn setup_error(e: io::Error) -> io::Error {
    let why = match e.raw_os_error() {
        Some(libc::EPERM) => {
            "io_uring is not permitted (a seccomp filter such as Docker's default profile, or kernel.io_uring_disabled)"
        }
        Some(libc::ENOSYS) => "io_uring is not available (kernel too old or built without it)",
        Some(libc::ENOMEM) => "io_uring setup ran out of locked memory (raise RLIMIT_MEMLOCK)",
        _ => "io_uring setup failed",
    };
    io::Error::new(e.kind(), format!("{why}: {e}"))
}
