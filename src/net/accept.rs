//! Accepting connections for the TCP and Unix listeners: one multishot
//! accept shared by every `accept` call where io_uring has it, else one
//! single-shot accept per call.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::addr::RawAddr;
use crate::driver::{self, Cap, Driver, SharedFd};
use crate::error::is_retry;
use crate::op::{self, AcceptMulti, Multishot, Op};

/// A connection from the listener `fd`, and the peer's raw address when the
/// accept reported one: the single-shot accept does, the multishot one does
/// not (the caller asks with `getpeername`).
///
/// Where the kernel has multishot accept (io_uring, Linux 5.19), `accepts`
/// serves the call; elsewhere each call is one single-shot accept.
pub(super) async fn accept(
    fd: &SharedFd,
    accepts: &Accepts,
) -> io::Result<(OwnedFd, Option<RawAddr>)> {
    match multishot_driver() {
        Some(driver) => {
            let waiter = MultiAccept {
                fd,
                accepts,
                driver,
                id: None,
            };
            Ok((waiter.await?, None))
        }
        None => {
            let (fd, storage, len) = Op::submit(op::Accept::new(fd.clone())).await?;
            Ok((fd, Some((storage, len))))
        }
    }
}

/// The current driver, if it runs io_uring and the kernel has multishot
/// accept.
fn multishot_driver() -> Option<Rc<Driver>> {
    let driver = driver::current().ok()?;
    driver.has(Cap::MultishotAccept).then_some(driver)
}

/// The accepts of one listener: one multishot accept, armed at the first
/// `accept` call, serves every call on the listener, also several at once.
///
/// ```text
///  kernel ──► table queue (≤ cap) ──drained by a waiter──► ready ──► accept()
/// ```
///
/// The table wakes one task per completion: the *leader*, the last waiter
/// whose poll of the operation was pending. The waiters list makes sure each
/// connection drained into `ready` has a waiter woken to take it, and that
/// somebody is (or is woken to become) leader while anybody waits. When the
/// last waiting accept is dropped, the operation is cancelled and the
/// connections accepted for it but not handed out are closed, as a dropped
/// single-shot accept closes its own; the table closes those that complete
/// later.
#[derive(Default)]
pub(super) struct Accepts {
    /// Never borrowed across an await or a wake.
    state: RefCell<AcceptState>,
}

/// The mutable part of [`Accepts`].
#[derive(Default)]
struct AcceptState {
    /// The armed operation; `None` before the first accept, after its last
    /// completion (re-armed by the next poll), and once nobody waits.
    armed: Option<Armed>,
    /// Connections (or errors to report) drained from the table, oldest
    /// first, not yet handed out.
    ready: VecDeque<io::Result<OwnedFd>>,
    /// Accept futures that polled and are pending, oldest first.
    waiters: Vec<Waiter>,
    /// The waiter whose waker the table holds; `None`: nobody is woken by
    /// the next completion. Always `None` while nothing is armed.
    leader: Option<u64>,
    /// Id of the next waiter.
    next_id: u64,
}

/// A submitted multishot accept and the driver it runs on.
struct Armed {
    /// The runtime's driver when it was armed: a listener that outlives its
    /// runtime arms again on the next one.
    driver: Rc<Driver>,
    /// The operation; dropping it cancels it.
    multi: Multishot<AcceptMulti>,
}

/// One pending accept future.
struct Waiter {
    /// Its id, unique per listener.
    id: u64,
    /// Its waker, from its last poll.
    waker: Waker,
    /// Woken by another waiter and not polled since: it will take a
    /// connection from `ready` or become leader.
    woken: bool,
}

impl std::fmt::Debug for Accepts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Ok(st) = self.state.try_borrow() else {
            return f.debug_struct("Accepts").finish_non_exhaustive();
        };
        f.debug_struct("Accepts")
            .field("armed", &st.armed.is_some())
            .field("ready", &st.ready.len())
            .field("waiters", &st.waiters.len())
            .finish()
    }
}

impl AcceptState {
    /// The next connection (or error), or pending with the operation armed.
    fn poll_accept(
        &mut self,
        fd: &SharedFd,
        driver: &Rc<Driver>,
        id: u64,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<OwnedFd>> {
        if self
            .armed
            .as_ref()
            .is_some_and(|a| !Rc::ptr_eq(&a.driver, driver))
        {
            self.disarm();
        }
        let mut armed_now = false;
        loop {
            if let Some(res) = self.ready.pop_front() {
                return Poll::Ready(res);
            }
            if self.armed.is_none() {
                if armed_now {
                    // What was armed in this poll ended at once (a refused
                    // submission with a retryable error): yield, do not spin.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                armed_now = true;
                let multi = Multishot::submit(AcceptMulti::new(fd.clone()));
                let driver = driver.clone();
                self.armed = Some(Armed { driver, multi });
            }
            std::task::ready!(self.drain(id, cx));
        }
    }

    /// Moves every queued completion into `ready`; pending (with `id` the
    /// leader) if there was none.
    fn drain(&mut self, id: u64, cx: &mut Context<'_>) -> Poll<()> {
        let mut got = false;
        while let Some(armed) = &mut self.armed {
            match armed.multi.poll_next(cx) {
                Poll::Pending => {
                    self.leader = Some(id);
                    return if got { Poll::Ready(()) } else { Poll::Pending };
                }
                Poll::Ready(None) => self.disarm(),
                Poll::Ready(Some((res, last))) => {
                    got = true;
                    if last {
                        self.disarm();
                    }
                    self.push(AcceptMulti::accepted(res));
                }
            }
        }
        Poll::Ready(())
    }

    /// Queues a completion's outcome. Retryable errors are dropped: the cap's
    /// cancel (`ECANCELED`), `EINTR`, `EAGAIN`; the next poll arms again.
    fn push(&mut self, res: io::Result<OwnedFd>) {
        match res {
            // Wider than `is_retry`: the cap's own cancel is retried too.
            Err(e) if e.raw_os_error() == Some(libc::ECANCELED) || is_retry(&e) => {}
            res => self.ready.push_back(res),
        }
    }

    /// Drops (cancels) the armed operation; nobody is leader any more.
    fn disarm(&mut self) {
        self.armed = None;
        self.leader = None;
    }

    /// A new waiter id.
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Waiter `id` is pending with `waker`.
    fn wait(&mut self, id: u64, waker: &Waker) {
        match self.waiters.iter_mut().find(|w| w.id == id) {
            Some(w) => {
                w.woken = false;
                if !w.waker.will_wake(waker) {
                    w.waker = waker.clone();
                }
            }
            None => self.waiters.push(Waiter {
                id,
                waker: waker.clone(),
                woken: false,
            }),
        }
    }

    /// Waiter `id` returned or was dropped.
    fn leave(&mut self, id: u64) {
        self.waiters.retain(|w| w.id != id);
        if self.leader == Some(id) {
            self.leader = None;
        }
    }

    /// The wakers of the waiters that must run now: one per connection in
    /// `ready`, and one to become leader if there is none, minus those
    /// already woken. The caller wakes them once the state is released.
    fn kick(&mut self) -> Vec<Waker> {
        let need = self.ready.len() + usize::from(self.leader.is_none());
        let woken = self.waiters.iter().filter(|w| w.woken).count();
        self.waiters
            .iter_mut()
            .filter(|w| !w.woken)
            .take(need.saturating_sub(woken))
            .map(|w| {
                w.woken = true;
                w.waker.clone()
            })
            .collect()
    }
}

/// One `accept` call served by the listener's multishot accept.
struct MultiAccept<'a> {
    /// The listening socket.
    fd: &'a SharedFd,
    /// The listener's shared accept state.
    accepts: &'a Accepts,
    /// The current runtime's driver (io_uring with multishot accept).
    driver: Rc<Driver>,
    /// Id among the waiters, from the first poll until the output is
    /// returned; `None` before and after.
    id: Option<u64>,
}

impl Future for MultiAccept<'_> {
    type Output = io::Result<OwnedFd>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut st = this.accepts.state.borrow_mut();
        let id = *this.id.get_or_insert_with(|| st.next_id());
        let out = st.poll_accept(this.fd, &this.driver, id, cx);
        if out.is_ready() {
            st.leave(id);
            this.id = None;
        } else {
            st.wait(id, cx.waker());
        }
        let wake = st.kick();
        drop(st);
        wake.into_iter().for_each(Waker::wake);
        out
    }
}

impl Drop for MultiAccept<'_> {
    fn drop(&mut self) {
        let Some(id) = self.id else {
            return;
        };
        let mut st = self.accepts.state.borrow_mut();
        st.leave(id);
        if st.waiters.is_empty() {
            // Nobody waits any more: cancel, and close what was accepted
            // for the waiters but not taken (the table closes the rest).
            st.disarm();
            st.ready.clear();
        }
        let wake = st.kick();
        drop(st);
        wake.into_iter().for_each(Waker::wake);
    }
}

#[cfg(test)]
#[path = "accept_tests.rs"]
mod tests;
