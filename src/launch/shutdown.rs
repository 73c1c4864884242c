//! The shutdown token: one flag, set once from any thread, that every
//! accept loop and connection task can check or await.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// Tells tasks that shutdown began. Cheap to clone, `Send` and `Sync`;
/// [`begin`](ShutdownToken::begin) from any thread wakes every
/// [`begun`](ShutdownToken::begun) future, on any runtime (ours, tokio).
///
/// A connection task selects on it to finish its current reply and stop:
///
/// ```
/// use uring_bufio::launch::ShutdownToken;
///
/// let token = ShutdownToken::new();
/// let seen = token.clone();
/// uring_bufio::Runtime::new()?.block_on(async move {
///     let waiter = uring_bufio::spawn(async move { seen.begun().await });
///     std::thread::spawn(move || token.begin());
///     waiter.await.unwrap();
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct ShutdownToken {
    /// Shared by every clone.
    inner: Arc<Inner>,
}

/// The flag and who waits for it.
#[derive(Debug, Default)]
struct Inner {
    /// Shutdown began; never goes back to `false`.
    begun: AtomicBool,
    /// Waiters: pending [`Begun`] futures by id, emptied by `begin`.
    waiters: Mutex<Waiters>,
}

/// The pending waiters.
#[derive(Debug, Default)]
struct Waiters {
    /// Id of the next waiter.
    next_id: u64,
    /// `(id, waker)` of each pending `Begun`, at most one entry per id.
    wakers: Vec<(u64, Waker)>,
}

impl Inner {
    /// The waiters, also after a panic elsewhere poisoned the lock.
    fn waiters(&self) -> MutexGuard<'_, Waiters> {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ShutdownToken {
    /// A token whose shutdown has not begun.
    pub fn new() -> ShutdownToken {
        ShutdownToken::default()
    }

    /// Begins shutdown (once; later calls do nothing) and wakes every waiter.
    pub fn begin(&self) {
        if self.inner.begun.swap(true, Ordering::SeqCst) {
            return;
        }
        let wakers = std::mem::take(&mut self.inner.waiters().wakers);
        wakers.into_iter().for_each(|(_, w)| w.wake());
    }

    /// Whether shutdown has begun.
    pub fn has_begun(&self) -> bool {
        self.inner.begun.load(Ordering::SeqCst)
    }

    /// Runs `future` until it finishes (`Some(output)`) or shutdown begins
    /// (`None`, and `future` is dropped), whichever comes first; shutdown
    /// is checked first at every poll.
    pub async fn run_until_begun<F: Future>(&self, future: F) -> Option<F::Output> {
        let mut future = std::pin::pin!(future);
        let mut begun = self.begun();
        std::future::poll_fn(|cx| {
            if Pin::new(&mut begun).poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            future.as_mut().poll(cx).map(Some)
        })
        .await
    }

    /// Ready once shutdown has begun (at once if it already has). Cancel
    /// safe; the future owns a clone of the token, so it may be stored.
    pub fn begun(&self) -> Begun {
        Begun {
            token: self.clone(),
            id: None,
        }
    }
}

/// Future of [`ShutdownToken::begun`].
#[derive(Debug)]
pub struct Begun {
    /// The token waited for.
    token: ShutdownToken,
    /// This waiter's id once it was pending; its waker is in the list
    /// under this id until it is ready or dropped.
    id: Option<u64>,
}

impl Future for Begun {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.token.has_begun() {
            return Poll::Ready(());
        }
        let mut waiters = this.token.inner.waiters();
        // Checked again under the lock: `begin` sets the flag before it
        // takes the list, so a waker stored now is in the list it takes.
        if this.token.has_begun() {
            return Poll::Ready(());
        }
        let id = *this.id.get_or_insert_with(|| {
            waiters.next_id += 1;
            waiters.next_id
        });
        match waiters.wakers.iter_mut().find(|(i, _)| *i == id) {
            Some((_, w)) => w.clone_from(cx.waker()),
            None => waiters.wakers.push((id, cx.waker().clone())),
        }
        Poll::Pending
    }
}

impl Drop for Begun {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.token.inner.waiters().wakers.retain(|(i, _)| *i != id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts its wakes.
    struct Counting(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Dropped waiters leave the list; `begin` wakes the rest, once.
    #[test]
    fn dropped_waiters_leave_and_begin_wakes_the_rest() {
        let token = ShutdownToken::new();
        let counting = Arc::new(Counting(Default::default()));
        let waker = Waker::from(counting.clone());
        let mut cx = Context::from_waker(&waker);
        let mut a = token.begun();
        let mut b = token.begun();
        assert!(Pin::new(&mut a).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut a).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut b).poll(&mut cx).is_pending());
        assert_eq!(token.inner.waiters().wakers.len(), 2);
        drop(b);
        assert_eq!(token.inner.waiters().wakers.len(), 1);
        token.begin();
        token.begin();
        assert_eq!(
            counting.0.load(Ordering::SeqCst),
            1,
            "one waiter left, woken once"
        );
        assert!(token.inner.waiters().wakers.is_empty());
        assert!(Pin::new(&mut a).poll(&mut cx).is_ready());
        assert!(Pin::new(&mut token.begun()).poll(&mut cx).is_ready());
    }
}
