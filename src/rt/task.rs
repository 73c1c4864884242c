//! Spawned tasks and their join handles.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Spawns a task on the current runtime. The future need not be `Send`.
///
/// Hosted on tokio (module `hosted`, feature `hosted`), the task is spawned with
/// `tokio::task::spawn_local` on the host's `LocalSet`.
///
/// # Panics
/// Outside a runtime (`Runtime::block_on`), or hosted, outside a `LocalSet`.
///
/// ```
/// # uring_bufio::Runtime::new().unwrap().block_on(async {
/// let h = uring_bufio::spawn(async { "done" });
/// assert_eq!(h.await.unwrap(), "done");
/// # });
/// ```
pub fn spawn<F: Future + 'static>(future: F) -> JoinHandle<F::Output>
where
    F::Output: 'static,
{
    try_spawn(future).expect("uring_bufio::spawn called outside a runtime")
}

/// Spawns if a runtime runs on this thread and is not shutting down.
pub(crate) fn try_spawn<F: Future + 'static>(future: F) -> Option<JoinHandle<F::Output>>
where
    F::Output: 'static,
{
    let state = Rc::new(JoinState {
        result: RefCell::new(None),
        join_waker: Cell::new(None),
        task_waker: Cell::new(None),
        abort: Cell::new(false),
    });
    let task = TaskFuture {
        future: Some(Box::pin(future)),
        state: state.clone(),
    };
    // Hosted on tokio: a task of the caller's `LocalSet`.
    #[cfg(feature = "hosted")]
    if !super::context::has_sched() && super::context::hosted_driver().is_some() {
        tokio::task::spawn_local(task);
        return Some(JoinHandle { state });
    }
    super::context::with_sched(|s| s.spawn(Box::pin(task)))??;
    Some(JoinHandle { state })
}

/// Why a task ended without its output. Opaque, as tokio's: ask
/// [`is_cancelled`](JoinError::is_cancelled) or
/// [`is_panic`](JoinError::is_panic), take the payload with
/// [`into_panic`](JoinError::into_panic).
pub struct JoinError {
    /// What ended the task.
    repr: Repr,
}

/// The cause inside a [`JoinError`].
enum Repr {
    /// The task was aborted.
    Cancelled,
    /// The task panicked; the payload is kept.
    Panic(Box<dyn Any + Send + 'static>),
}

impl JoinError {
    /// The error of an aborted task.
    pub(crate) fn cancelled() -> JoinError {
        JoinError {
            repr: Repr::Cancelled,
        }
    }

    /// The error of a task that panicked with `payload`.
    pub(crate) fn panic(payload: Box<dyn Any + Send + 'static>) -> JoinError {
        JoinError {
            repr: Repr::Panic(payload),
        }
    }

    /// The task was aborted.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// The task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The panic payload, to resume it with `std::panic::resume_unwind`.
    ///
    /// # Panics
    /// If the task was cancelled rather than panicked.
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .unwrap_or_else(|_| panic!("JoinError::into_panic on a cancelled task"))
    }

    /// The panic payload, or the error itself if the task was cancelled.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(p) => Ok(p),
            Repr::Cancelled => Err(self),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.repr {
            Repr::Cancelled => f.write_str("JoinError::Cancelled"),
            Repr::Panic(_) => f.write_str("JoinError::Panic(..)"),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => f.write_str("task was cancelled"),
            Repr::Panic(p) => {
                let msg = p
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| p.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("..");
                write!(f, "task panicked: {msg}")
            }
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    fn from(e: JoinError) -> std::io::Error {
        std::io::Error::other(e.to_string())
    }
}

/// State shared by a task and its handle.
struct JoinState<T> {
    /// The task's result once it ended.
    result: RefCell<Option<Result<T, JoinError>>>,
    /// Waker of whoever awaits the handle.
    join_waker: Cell<Option<Waker>>,
    /// Waker of the task itself (so `abort` can get it polled).
    task_waker: Cell<Option<Waker>>,
    /// `abort` was called.
    abort: Cell<bool>,
}

impl<T> JoinState<T> {
    /// Stores the result and wakes the joiner.
    fn finish(&self, result: Result<T, JoinError>) {
        *self.result.borrow_mut() = Some(result);
        if let Some(w) = self.join_waker.take() {
            w.wake();
        }
    }
}

/// The spawned future, wrapped to report its result and honour `abort`.
struct TaskFuture<F: Future> {
    /// The user's future; `None` once it ended.
    future: Option<Pin<Box<F>>>,
    /// Shared with the handle.
    state: Rc<JoinState<F::Output>>,
}

impl<F: Future> Future for TaskFuture<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let Some(fut) = this.future.as_mut() else {
            return Poll::Ready(());
        };
        if this.state.abort.get() {
            this.future = None;
            this.state.finish(Err(JoinError::cancelled()));
            return Poll::Ready(());
        }
        this.state.task_waker.set(Some(cx.waker().clone()));
        let res = catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx)));
        let result = match res {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(v)) => Ok(v),
            Err(payload) => Err(JoinError::panic(payload)),
        };
        this.future = None;
        this.state.finish(result);
        Poll::Ready(())
    }
}

/// Owned permission to await a spawned task's output. Dropping it detaches
/// the task, which keeps running.
pub struct JoinHandle<T> {
    /// Shared with the task.
    state: Rc<JoinState<T>>,
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> JoinHandle<T> {
    /// Stops the task: its future is dropped at the runtime's next tick
    /// (releasing its operations safely) and the handle resolves to
    /// a [`JoinError`] that [`is_cancelled`](JoinError::is_cancelled), unless it finished first.
    pub fn abort(&self) {
        self.state.abort.set(true);
        if let Some(w) = self.state.task_waker.take() {
            w.wake();
        }
    }

    /// The task has ended (its result may not have been taken yet).
    pub fn is_finished(&self) -> bool {
        self.state.result.borrow().is_some()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(result) = self.state.result.borrow_mut().take() {
            return Poll::Ready(result);
        }
        self.state.join_waker.set(Some(cx.waker().clone()));
        Poll::Pending
    }
}

/// Spawns a background task that `block_on` finishes before returning (the
/// flush of a dropped writer). Returns false, dropping `future`, when no
/// runtime runs here or it is shutting down.
pub(crate) fn spawn_lingering<F: Future<Output = ()> + 'static>(future: F) -> bool {
    /// Counts the task out of the lingering set when it ends or is dropped.
    struct Counted;
    impl Drop for Counted {
        fn drop(&mut self) {
            super::context::with_sched(|s| s.add_lingering(-1));
        }
    }
    if !super::context::has_sched()
        && let Some(driver) = super::context::hosted_driver()
    {
        // Hosted: the driver task polls it (it outlives the user's tasks).
        return driver.host.linger(Box::pin(future));
    }
    if super::context::with_sched(|s| s.add_lingering(1)).is_none() {
        return false;
    }
    let counted = Counted;
    let spawned = try_spawn(async move {
        let _counted = counted;
        future.await;
    });
    spawned.is_some()
}
