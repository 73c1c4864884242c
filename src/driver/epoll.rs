//! The epoll backend, for hosts that refuse io_uring.
//!
//! An operation is tried at once with its non-blocking system call
//! ([`Owned::attempt`](super::Owned::attempt)). If it would block it waits
//! for readiness of its fd: each fd is registered once, edge-triggered,
//! at its first wait and stays registered until it is closed, so a wait
//! costs no system call (`epoll/waiters.rs` says why no report is missed,
//! `epoll/closes.rs` how a reused fd number is registered again).
//! Timeouts wait in a heap. Regular files cannot be waited on with epoll;
//! their operations complete at once with positional system calls on the
//! runtime thread (page-cache reads and writes are memory copies).
//!
//! Completions reach the table exactly as io_uring's do, so every guarantee
//! above the driver holds unchanged.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::caps::Caps;
use super::table::{OpId, Table};
use super::{Attempt, Backend, CqeResult, Interest, Kind, drain_eventfd};
use crate::error::{Retry, retry_of, retry_of_errno};

mod closes;
mod waiters;

pub(crate) use closes::closing;
use waiters::{Park, Waiting};

/// `epoll_event.u64` of the runtime's wake-up eventfd.
const WAKE_TAG: u64 = u64::MAX;
/// `epoll_event.u64` of the timerfd that fires at the earliest timeout.
const TIMER_TAG: u64 = u64::MAX - 1;

/// The epoll backend's state.
pub(super) struct Epoll {
    /// The epoll instance; also the completion fd for other event loops.
    epfd: OwnedFd,
    /// Operations waiting for readiness, by fd (each holds its fd open).
    waiting: Waiting,
    /// The waiters one readiness event wakes; empty between events, kept
    /// for its capacity.
    ready: Vec<OpId>,
    /// Timeouts by deadline; entries of finished operations are skipped.
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Fires at the earliest deadline, so the epoll fd (the completion fd)
    /// also turns readable when a timeout is due.
    timer_fd: OwnedFd,
    /// The deadline `timer_fd` is armed for.
    armed_for: Option<Instant>,
    /// Reused buffer for `epoll_wait`.
    events: Vec<libc::epoll_event>,
    /// The runtime's wake-up eventfd, registered level-triggered.
    wake_fd: RawFd,
}

impl Epoll {
    /// Creates the epoll instance and registers the wake-up eventfd.
    pub(super) fn new(wake_fd: RawFd) -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointers; the result is checked.
        let raw = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new fd nothing else owns.
        let epfd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: timerfd_create takes no pointers; the result is checked.
        let traw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if traw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `traw` is a new fd nothing else owns.
        let timer_fd = unsafe { OwnedFd::from_raw_fd(traw) };
        watch(raw, wake_fd, WAKE_TAG)?;
        watch(raw, traw, TIMER_TAG)?;
        Ok(Epoll {
            epfd,
            timer_fd,
            armed_for: None,
            waiting: Waiting::default(),
            ready: Vec::new(),
            timers: BinaryHeap::new(),
            events: Vec::with_capacity(256),
            wake_fd,
        })
    }

    /// Tries entry `id` until it finishes or has to wait.
    fn run(&mut self, table: &mut Table, id: OpId) {
        // A read that waits may be told to try first, once.
        let mut retried = false;
        loop {
            let Some(data) = table.data_mut(id) else {
                return;
            };
            match data.attempt() {
                // Only `Now`: an `EAGAIN` the op did not turn into a wait
                // (`or_wait`) is its result to report.
                Attempt::Done(res) if retry_of_errno(-res) == Retry::Now => continue,
                Attempt::Done(res) => {
                    table.complete(id, CqeResult::new(res, 0));
                }
                Attempt::Selected { res, bid } => {
                    table.complete(id, CqeResult::new(res, super::pool::buffer_flags(bid)));
                }
                Attempt::Wait(fd, interest) => {
                    if self.wait(table, id, fd, interest, retried) {
                        retried = true;
                        continue;
                    }
                }
                Attempt::Until(deadline) => {
                    self.timers.push(Reverse((deadline, id.user_data())));
                    self.arm_timer();
                }
            }
            return;
        }
    }

    /// Parks `id` until `fd` is ready for `interest`, registering `fd`
    /// first if it is not; `true`: try `id` again now instead (unless it
    /// `retried`: a readable report came that no read has seen, or the fd
    /// reported its end). An fd epoll cannot watch fails the operation
    /// with the reason.
    fn wait(
        &mut self,
        table: &mut Table,
        id: OpId,
        fd: RawFd,
        interest: Interest,
        retried: bool,
    ) -> bool {
        if fd < 0 {
            table.complete(id, CqeResult::new(-libc::EBADF, 0));
            return false;
        }
        let generation = closes::generation(fd);
        match self.waiting.park(fd, id, interest, generation, retried) {
            Park::TryNow => return true,
            Park::Parked => {}
            Park::Register => match self.register(fd) {
                Ok(()) => self.waiting.registered(fd, generation),
                Err(e) => {
                    self.waiting.forget(id);
                    let errno = e.raw_os_error().unwrap_or(libc::EIO);
                    table.complete(id, CqeResult::new(-errno, 0));
                }
            },
        }
        false
    }

    /// Registers `fd` edge-triggered for reading and writing, for as long
    /// as it stays open (closing it ends the registration).
    fn register(&mut self, fd: RawFd) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: fd as u64,
        };
        // SAFETY: `ev` is valid for the call; `fd` is held open by the
        // waiting operation.
        let rc =
            unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            // Still registered from before its owner gave it up (the fd
            // stayed open): the registration is the same.
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(e);
            }
        }
        Ok(())
    }

    /// `fd` reported `events`: retries the operations that were waiting for
    /// them (the registration stays for those still waiting).
    fn wake(&mut self, table: &mut Table, fd: RawFd, events: u32) {
        // The list is taken out while the operations run (a retry may wait
        // again) and put back empty, keeping its capacity.
        let mut ready = std::mem::take(&mut self.ready);
        self.waiting.take_ready(fd, events, &mut ready);
        for &id in &ready {
            self.run(table, id);
        }
        ready.clear();
        self.ready = ready;
    }

    /// Completes expired timeouts and re-arms the timerfd for the next.
    fn expire(&mut self, table: &mut Table) {
        let now = Instant::now();
        while let Some(Reverse((deadline, user_data))) = self.timers.peek().copied() {
            if deadline > now {
                break;
            }
            self.timers.pop();
            table.complete(
                OpId::from_user_data(user_data),
                CqeResult::new(-libc::ETIME, 0),
            );
        }
        self.arm_timer();
    }

    /// Arms the timerfd for the earliest deadline, if that changed.
    fn arm_timer(&mut self) {
        let next = self.timers.peek().map(|Reverse((d, _))| *d);
        if next == self.armed_for {
            return;
        }
        // A zero value disarms; a due deadline fires after 1 ns.
        let wait = next.map_or(Duration::ZERO, |d| {
            d.saturating_duration_since(Instant::now())
                .max(Duration::from_nanos(1))
        });
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: wait.as_secs() as libc::time_t,
                tv_nsec: wait.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: `spec` is valid for the call; the old value is not asked for.
        let rc = unsafe {
            libc::timerfd_settime(self.timer_fd.as_raw_fd(), 0, &spec, std::ptr::null_mut())
        };
        if rc == 0 {
            self.armed_for = next;
        }
    }

    /// One `epoll_wait` of up to `ms` milliseconds (-1: no limit), handling
    /// what it reports; returns whether it filled the whole event buffer.
    fn wait_once(&mut self, table: &mut Table, ms: i32) -> io::Result<bool> {
        self.events.clear();
        let cap = self.events.capacity() as i32;
        // SAFETY: `events` has room for `cap` entries, which the kernel
        // fills; `set_len` below covers only what it reported.
        let n =
            unsafe { libc::epoll_wait(self.epfd.as_raw_fd(), self.events.as_mut_ptr(), cap, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            // A signal ends the wait early: a normal, empty turn.
            return if retry_of(&e) == Retry::Now {
                Ok(false)
            } else {
                Err(e)
            };
        }
        // SAFETY: the kernel initialised the first `n` events.
        unsafe { self.events.set_len(n as usize) };
        for i in 0..self.events.len() {
            let (key, ev) = (self.events[i].u64, self.events[i].events);
            if key == WAKE_TAG {
                drain_eventfd(self.wake_fd);
            } else if key == TIMER_TAG {
                // Reading resets the expiration count; `expire` runs below.
                drain_eventfd(self.timer_fd.as_raw_fd());
                self.armed_for = None;
            } else {
                self.wake(table, key as RawFd, ev);
            }
        }
        Ok(n == cap)
    }
}

impl Backend for Epoll {
    fn kind(&self) -> Kind {
        Kind::Epoll
    }

    fn caps(&self) -> Caps {
        Caps::NONE
    }

    fn reserve(&mut self, _table: &mut Table) -> io::Result<()> {
        Ok(())
    }

    fn submit(&mut self, table: &mut Table, id: OpId) {
        self.run(table, id);
    }

    fn cancel(&mut self, table: &mut Table, id: OpId) {
        if self.waiting.forget(id).is_some() {
            table.complete(id, CqeResult::new(-libc::ECANCELED, 0));
        } else if self
            .timers
            .iter()
            .any(|Reverse((_, u))| *u == id.user_data())
        {
            // The heap entry goes stale: completing a finished id is a no-op.
            table.complete(id, CqeResult::new(-libc::ECANCELED, 0));
        }
    }

    fn turn(&mut self, table: &mut Table, wait: bool, timeout: Option<Duration>) -> io::Result<()> {
        let before = table.completions();
        self.expire(table);
        // Timeouts that just expired woke their tasks without the eventfd
        // (wakes on the runtime thread stay local): do not sleep past them.
        // Later timeouts wake the wait through the timerfd.
        let wait = wait && table.completions() == before;
        let limit = if wait { timeout } else { Some(Duration::ZERO) };
        // Round up so a timer is not polled for again a moment too early.
        let ms = limit.map_or(-1, |d| {
            d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
        });
        // A full batch may leave events behind: fetch them at once, since a
        // host watching the epoll fd edge-triggered gets no new edge for
        // events that were ready before.
        let mut ms = ms;
        while self.wait_once(table, ms)? {
            ms = 0;
        }
        self.expire(table);
        Ok(())
    }

    fn busy(&self) -> bool {
        false
    }

    fn stop_wake(&mut self) {}

    fn completion_fd(&mut self) -> io::Result<RawFd> {
        Ok(self.epfd.as_raw_fd())
    }
}

/// Registers `fd` level-triggered for reading under `tag`.
fn watch(epfd: RawFd, fd: RawFd, tag: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: tag,
    };
    // SAFETY: `ev` is a valid event for the duration of the call.
    if unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
