//! Sleeping and timeouts, on io_uring timeouts.
//!
//! ```
//! use std::time::Duration;
//! use uring_bufio::time::{sleep, timeout};
//! # uring_bufio::Runtime::new().unwrap().block_on(async {
//! sleep(Duration::from_millis(1)).await;
//! let slow = sleep(Duration::from_secs(60));
//! assert!(timeout(Duration::from_millis(5), slow).await.is_err());
//! # });
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::op::{self, Op};

/// Waits until `duration` has passed.
pub fn sleep(duration: Duration) -> Sleep {
    Sleep {
        deadline: Instant::now() + duration,
        op: None,
    }
}

/// Future of [`sleep`]. Dropping it cancels the kernel timeout.
#[derive(Debug)]
pub struct Sleep {
    /// When it fires.
    deadline: Instant,
    /// The kernel timeout, submitted on first poll.
    op: Option<Op<op::Timeout>>,
}

impl Sleep {
    /// When the sleep ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline;
        let op = self.op.get_or_insert_with(|| {
            Op::submit(op::Timeout::new(
                deadline.saturating_duration_since(Instant::now()),
            ))
        });
        match Pin::new(op).poll(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(()),
            Poll::Ready(Err(e)) => panic!("uring_bufio::time::sleep failed: {e}"),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Runs `future` for at most `duration`.
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep(duration),
    }
}

/// The time ran out before the future finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(_: Elapsed) -> std::io::Error {
        std::io::ErrorKind::TimedOut.into()
    }
}

/// Future of [`timeout`]. Dropping it drops the inner future.
#[derive(Debug)]
pub struct Timeout<F> {
    /// The future under a deadline.
    future: F,
    /// The deadline.
    sleep: Sleep,
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned: never moved out of the
        // pinned `Timeout`; `sleep` is Unpin.
        let (future, sleep) = unsafe {
            let this = self.get_unchecked_mut();
            (Pin::new_unchecked(&mut this.future), &mut this.sleep)
        };
        if let Poll::Ready(v) = future.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}
