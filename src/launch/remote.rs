//! Results that cross threads: a task runs on a worker, its output goes to
//! a [`RemoteHandle`] that any thread may await or block on.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::JoinError;

/// The slot a result is put in.
#[derive(Debug)]
struct Slot<T> {
    /// Guarded state; never held across a wake.
    state: Mutex<SlotState<T>>,
    /// Signalled when the result is set, for the blocking `join`.
    done: Condvar,
}

/// The slot's mutable part.
#[derive(Debug)]
struct SlotState<T> {
    /// The result, from when the task ended until the handle takes it.
    result: Option<Result<T, JoinError>>,
    /// Waker of the handle's last pending poll.
    waker: Option<Waker>,
}

impl<T> Slot<T> {
    /// The state, also after a panic elsewhere poisoned the lock.
    fn lock(&self) -> MutexGuard<'_, SlotState<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The output of a task handed to a worker: `Send`, awaitable from any
/// executor (tokio included) and joinable from a plain thread.
///
/// It resolves to the task's output, to a [`JoinError`] that
/// [`is_panic`](JoinError::is_panic) if building or running the future
/// panicked, or to one that [`is_cancelled`](JoinError::is_cancelled) if the
/// worker ended (shut down or died) before the task finished. Dropping the
/// handle detaches the task, which keeps running.
#[derive(Debug)]
pub struct RemoteHandle<T> {
    /// Shared with the worker side.
    slot: Arc<Slot<T>>,
}

/// The worker side: sets the result once; dropped unset, it reports the
/// task cancelled.
#[derive(Debug)]
pub(crate) struct Completer<T> {
    /// Shared with the handle; `None` once the result was set.
    slot: Option<Arc<Slot<T>>>,
}

/// A handle and its completer.
pub(crate) fn remote<T>() -> (RemoteHandle<T>, Completer<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new(SlotState {
            result: None,
            waker: None,
        }),
        done: Condvar::new(),
    });
    let completer = Completer {
        slot: Some(slot.clone()),
    };
    (RemoteHandle { slot }, completer)
}

impl<T> Completer<T> {
    /// Sets the result and wakes whoever waits.
    pub(crate) fn complete(mut self, result: Result<T, JoinError>) {
        self.set(result);
    }

    /// Sets the result once.
    fn set(&mut self, result: Result<T, JoinError>) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        let mut st = slot.lock();
        st.result = Some(result);
        let waker = st.waker.take();
        drop(st);
        slot.done.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        self.set(Err(JoinError::cancelled()));
    }
}

impl<T> RemoteHandle<T> {
    /// Blocks the calling thread until the task ended. Do not call it on a
    /// runtime's thread: it blocks that runtime (await the handle instead).
    pub fn join(self) -> Result<T, JoinError> {
        let mut st = self.slot.lock();
        loop {
            if let Some(result) = st.result.take() {
                return result;
            }
            st = self.slot.done.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Whether the task has ended (its result may not have been taken yet).
    pub fn is_finished(&self) -> bool {
        self.slot.lock().result.is_some()
    }
}

impl<T> Future for RemoteHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = self.slot.lock();
        match st.result.take() {
            Some(result) => Poll::Ready(result),
            None => {
                st.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Polls the inner future and turns a panic into a [`JoinError`].
#[derive(Debug)]
pub(crate) struct CatchUnwind<F> {
    /// The future; boxed so this wrapper is `Unpin`.
    inner: Pin<Box<F>>,
}

impl<F: Future> CatchUnwind<F> {
    /// Wraps `future`.
    pub(crate) fn new(future: F) -> CatchUnwind<F> {
        CatchUnwind {
            inner: Box::pin(future),
        }
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.inner.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(payload) => Poll::Ready(Err(JoinError::panic(payload))),
        }
    }
}

/// Runs `make` on this (worker) thread, spawns the future it builds on the
/// current runtime, and sends its output (or panic) to `completer`.
pub(crate) fn run_here<F, Fut>(make: F, completer: Completer<Fut::Output>)
where
    F: FnOnce() -> Fut,
    Fut: Future + 'static,
    Fut::Output: 'static,
{
    let future = match catch_unwind(AssertUnwindSafe(make)) {
        Ok(future) => future,
        Err(payload) => return completer.complete(Err(JoinError::panic(payload))),
    };
    crate::spawn(async move {
        completer.complete(CatchUnwind::new(future).await);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dropped completer reports the task cancelled to a blocked joiner.
    #[test]
    fn dropped_completer_is_cancelled() {
        let (handle, completer) = remote::<u8>();
        let t = std::thread::spawn(move || handle.join());
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(completer);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !t.is_finished() {
            assert!(
                std::time::Instant::now() < deadline,
                "the joiner was never told"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(t.join().unwrap().unwrap_err().is_cancelled());
    }

    /// A completed result reaches the awaiting handle.
    #[test]
    fn completed_result_is_returned() {
        let (mut handle, completer) = remote::<u8>();
        let mut cx = Context::from_waker(Waker::noop());
        assert!(Pin::new(&mut handle).poll(&mut cx).is_pending());
        completer.complete(Ok(5));
        assert!(handle.is_finished());
        assert!(matches!(
            Pin::new(&mut handle).poll(&mut cx),
            Poll::Ready(Ok(5))
        ));
    }
}
