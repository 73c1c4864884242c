//! What the tokio-hosted tests share: a tokio current-thread runtime with
//! a `LocalSet` and our driver attached, run under a watchdog, torn down in
//! the user's order, with the driver's shutdown checked.
#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::task::LocalSet;
use uring_bufio::hosted::{self, Host};

/// Watchdog of every test body: only a hang (a lost wake-up, an entry
/// never submitted) reaches it.
pub const LIMIT: Duration = Duration::from_secs(30);

/// Serialises the tests of one binary that count fds (a process-wide
/// figure).
static FD_LOCK: Mutex<()> = Mutex::new(());

/// Takes [`FD_LOCK`].
pub fn fd_lock() -> MutexGuard<'static, ()> {
    FD_LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Open fds of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// A tokio runtime (current-thread, `enable_all` unless `bare`), a
/// `LocalSet` and our driver attached to both.
pub struct Hosted {
    /// tokio's runtime.
    pub rt: Runtime,
    /// The `LocalSet` our tasks run in.
    pub local: LocalSet,
    /// Our driver.
    pub host: Host,
}

impl Hosted {
    /// With IO and time enabled.
    pub fn new() -> Hosted {
        Hosted::build(false)
    }

    /// With IO only: no timer can wake the thread.
    pub fn bare() -> Hosted {
        Hosted::build(true)
    }

    fn build(bare: bool) -> Hosted {
        let mut b = tokio::runtime::Builder::new_current_thread();
        if bare {
            b.enable_io();
        } else {
            b.enable_all();
        }
        let rt = b.build().expect("tokio runtime");
        let local = LocalSet::new();
        let host = {
            let _rt = rt.enter();
            hosted::attach(&local).expect("attach")
        };
        Hosted { rt, local, host }
    }

    /// Runs `body` in the `LocalSet`; an error fails the test.
    pub fn block_on<T>(&self, body: impl Future<Output = io::Result<T>>) -> T {
        self.local
            .block_on(&self.rt, body)
            .unwrap_or_else(|e| panic!("test body failed: {e}"))
    }

    /// Drops the `LocalSet` and the runtime, then shuts the driver down:
    /// nothing may be leaked.
    pub fn finish(self) {
        let Hosted { rt, local, host } = self;
        drop(local);
        drop(rt);
        assert_eq!(host.shutdown(), 0, "operations leaked at shutdown");
    }
}

/// Runs `body` on a fresh [`Hosted`] on its own thread under [`LIMIT`]
/// (a hang fails the test) and finishes it.
pub fn run<F, Fut>(body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<()>>,
{
    within(LIMIT, move || {
        let h = Hosted::new();
        h.block_on(body());
        h.finish();
    });
}

/// Runs `f` on its own thread; fails the test if it has not returned
/// within `limit`. Panics in `f` are passed on.
pub fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let name = std::thread::current().name().unwrap_or("test").to_string();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let handle = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            let out = f();
            let _ = tx.send(());
            out
        })
        .expect("spawn test thread");
    match rx.recv_timeout(limit) {
        Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{name}: did not finish within {limit:?} (hang)")
        }
    }
}

/// The driver the tests run on, from `URING_BUFIO_DRIVER`.
pub fn on_epoll() -> bool {
    std::env::var("URING_BUFIO_DRIVER").is_ok_and(|v| v.trim().eq_ignore_ascii_case("epoll"))
}

/// Polls `f` at most `k` times, going back to tokio in between, and drops
/// it inside the `k`-th poll if it is still pending; its output if it
/// finished within `k` polls.
pub async fn poll_k_then_drop<F: Future>(f: F, k: usize) -> Option<F::Output> {
    let mut slot = Some(Box::pin(f));
    let mut polls = 0;
    std::future::poll_fn(move |cx| {
        let fut = slot.as_mut().expect("polled after it returned");
        polls += 1;
        if let std::task::Poll::Ready(out) = fut.as_mut().poll(cx) {
            slot = None;
            return std::task::Poll::Ready(Some(out));
        }
        if polls >= k {
            slot = None;
            return std::task::Poll::Ready(None);
        }
        std::task::Poll::Pending
    })
    .await
}

/// Ready after `n` trips through tokio's scheduler.
pub async fn yields(n: usize) {
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
}

/// Runs one attempt of `f` under the canceller of round `round`: dropped
/// after `k` polls (k cycling 1..=8), by `tokio::time::timeout` with a
/// short deadline, or by `select!` losing to a branch ready after a few
/// scheduler trips. `None`: it was dropped.
pub async fn attempt<F: Future>(f: F, round: usize) -> Option<F::Output> {
    match round % 3 {
        0 => poll_k_then_drop(f, 1 + (round / 3) % 8).await,
        1 => {
            let deadline = Duration::from_micros((round as u64 * 37) % 300);
            tokio::time::timeout(deadline, f).await.ok()
        }
        _ => {
            tokio::select! {
                biased;
                out = f => Some(out),
                _ = yields(round % 4) => None,
            }
        }
    }
}

/// A payload of `len` bytes in a pattern that shows loss, duplication and
/// reordering.
pub fn payload(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 251) as u8)
        .collect()
}
