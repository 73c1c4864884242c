//! Read and write deadlines: the limits a stream direction's calls wait
//! under, and the one timer per direction that enforces them.
//!
//! # Design: one lazy timer per direction, re-armed only when it must fire earlier
//!
//! A direction (a reader's reads, a writer's writes and flushes) keeps at
//! most one kernel timeout (`IORING_OP_TIMEOUT` on io_uring, the epoll
//! backend's timer list on epoll, through [`op::Timeout`] as
//! [`time::sleep`](crate::time::sleep) uses it). The timer only wakes the
//! waiting task; whether the call has run out of time is decided by
//! comparing `Instant::now()` with the call's due instant:
//!
//! * a call that does not wait (data already buffered, room in the write
//!   buffer) looks at nothing;
//! * a call that waits computes its due instant (the earlier of the
//!   absolute deadline and the idle limit counted from when it began to
//!   wait) and keeps the armed timer if that fires no later than due; only
//!   a due instant *earlier* than the armed one replaces the timer (a
//!   cancel and a new timeout);
//! * a timer that fires before the call is due (the idle clock restarted,
//!   or the deadline was moved later) wakes the task once, which re-arms
//!   it for the new due instant.
//!
//! So a server that sets a 30 s idle limit and sees a request every few
//! milliseconds arms one timer per 30 s, not one per call, and its common
//! case costs a clock read and a comparison when a call has to wait.
//! Wrapping each call in [`time::timeout`](crate::time::timeout) instead
//! submits and cancels one kernel timeout per call that waits.
//! `IORING_OP_LINK_TIMEOUT` is not used: it would be one timeout per
//! operation (and can never bound a multishot receive, which the pooled
//! reader uses), and cancelling a receive that had already copied bytes
//! is exactly what this design need not do.
//!
//! # Expiry cancels nothing
//!
//! The call returns `io::ErrorKind::TimedOut`; the operation it waited for
//! stays in flight and owns its part of the stream's buffer, so bytes that
//! arrive as (or after) the deadline passes are returned by the next call,
//! and a write still draining keeps draining. The stream stays usable: set
//! a later deadline (or none) and call again. The operation being waited
//! for is polled before the deadline is looked at, so bytes that arrived
//! by the time the task runs are returned rather than a `TimedOut`.

mod api;

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::op::{self, Op};

/// The limits of one direction of a stream and its timer; no memory while
/// no limit is set.
#[derive(Default)]
pub(crate) struct Deadline(Option<Box<Limits>>);

/// The limits set, the waiting clock and the armed timer.
struct Limits {
    /// "read" or "write", for the error message.
    what: &'static str,
    /// Longest a call waits without the stream making progress.
    idle: Option<Duration>,
    /// Absolute instant after which every waiting call fails.
    at: Option<Instant>,
    /// When the current wait began: set by the first wait since the last
    /// progress, cleared by progress (bytes moved, a call completed).
    waiting_since: Option<Instant>,
    /// The armed kernel timeout and the instant it fires at. Invariant:
    /// at most one per direction.
    timer: Option<(Instant, Op<op::Timeout>)>,
}

impl fmt::Debug for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Deadline");
        if let Some(l) = &self.0 {
            d.field("idle", &l.idle)
                .field("at", &l.at)
                .field("armed", &l.timer.as_ref().map(|t| t.0));
        }
        d.finish()
    }
}

impl Deadline {
    /// The limits of `what` ("read" or "write"), or a fresh empty set.
    fn limits(&mut self, what: &'static str) -> &mut Limits {
        self.0.get_or_insert_with(|| {
            Box::new(Limits {
                what,
                idle: None,
                at: None,
                waiting_since: None,
                timer: None,
            })
        })
    }

    /// Drops the limits (and cancels the timer) once none is set.
    fn tidy(&mut self) {
        if self
            .0
            .as_ref()
            .is_some_and(|l| l.idle.is_none() && l.at.is_none())
        {
            self.0 = None;
        }
    }

    /// Sets the idle limit of `what`; `None` removes it. A zero limit is
    /// refused, as `std::net::TcpStream::set_read_timeout` refuses it.
    pub(crate) fn set_timeout(
        &mut self,
        what: &'static str,
        d: Option<Duration>,
    ) -> io::Result<()> {
        if d == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a zero {what} timeout is not allowed (use None for no limit)"),
            ));
        }
        self.limits(what).idle = d;
        self.tidy();
        Ok(())
    }

    /// Sets the absolute deadline of `what`; `None` removes it.
    pub(crate) fn set_deadline(&mut self, what: &'static str, at: Option<Instant>) {
        self.limits(what).at = at;
        self.tidy();
    }

    /// The idle limit.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        self.0.as_ref().and_then(|l| l.idle)
    }

    /// The absolute deadline.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.0.as_ref().and_then(|l| l.at)
    }

    /// The stream made progress (bytes moved): the idle clock restarts at
    /// the next wait.
    #[inline]
    pub(crate) fn progress(&mut self) {
        if let Some(l) = &mut self.0 {
            l.waiting_since = None;
        }
    }

    /// Passes on a poll of what a call waits for: `Ready` is progress;
    /// `Pending` becomes a `TimedOut` error once the call is due, and
    /// otherwise makes sure the timer will wake the task by then.
    #[inline]
    pub(crate) fn poll_wait<T>(&mut self, cx: &mut Context<'_>, p: Poll<T>) -> Poll<io::Result<T>> {
        match (p, &mut self.0) {
            (Poll::Ready(v), limits) => {
                if let Some(l) = limits {
                    l.waiting_since = None;
                }
                Poll::Ready(Ok(v))
            }
            (Poll::Pending, None) => Poll::Pending,
            (Poll::Pending, Some(l)) => l.poll_due(cx).map(Err),
        }
    }

    /// [`poll_wait`](Deadline::poll_wait) for a poll that is itself a
    /// result.
    #[inline]
    pub(crate) fn poll_wait_io<T>(
        &mut self,
        cx: &mut Context<'_>,
        p: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        self.poll_wait(cx, p).map(|r| r?)
    }
}

impl Limits {
    /// The instant the current wait is due, and which limit sets it.
    fn due(&self, since: Instant) -> Option<(Instant, bool)> {
        let idle = self.idle.map(|d| (since + d, true));
        let at = self.at.map(|at| (at, false));
        match (idle, at) {
            (Some(i), Some(a)) => Some(if a.0 <= i.0 { a } else { i }),
            (i, a) => i.or(a),
        }
    }

    /// The call waits: `Ready(TimedOut)` once it is due, else `Pending`
    /// with the timer armed to wake it no later than then.
    fn poll_due(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let mut now = Instant::now();
        let since = *self.waiting_since.get_or_insert(now);
        let Some((due, idle)) = self.due(since) else {
            return Poll::Pending;
        };
        loop {
            if now >= due {
                self.waiting_since = None;
                return Poll::Ready(self.timed_out(idle));
            }
            match &mut self.timer {
                Some((fires, timer)) if *fires <= due => match Pin::new(timer).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(res) => {
                        // Fired (or failed): the loop compares the clock
                        // again and re-arms if the call is not due yet.
                        self.timer = None;
                        if let Err(e) = res {
                            return Poll::Ready(e);
                        }
                        now = Instant::now();
                    }
                },
                // None armed, or armed too late: one timer, replaced.
                _ => {
                    let wait = due.saturating_duration_since(now);
                    self.timer = Some((due, Op::submit(op::Timeout::new(wait))));
                }
            }
        }
    }

    /// The error a call that ran out of time returns.
    fn timed_out(&self, idle: bool) -> io::Error {
        let msg = match (idle, self.idle) {
            (true, Some(d)) => format!(
                "{} timed out: no progress for {d:?} (the idle limit set with set_{0}_timeout); \
                 the stream is still usable and nothing was lost",
                self.what
            ),
            _ => format!(
                "{} deadline passed (set with set_{0}_deadline); \
                 the stream is still usable and nothing was lost",
                self.what
            ),
        };
        io::Error::new(io::ErrorKind::TimedOut, msg)
    }
}
