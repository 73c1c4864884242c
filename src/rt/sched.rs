//! The local scheduler: tasks, their wakers and the ready queue.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use super::context;
use crate::driver::eventfd::EventFd;

/// Task id of the future passed to `block_on`.
pub(crate) const MAIN: usize = usize::MAX;

/// Whether the task being polled submits alone ([`Scheduler::alone_in_turn`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alone {
    /// Other tasks of its turn run after it, or entries were queued.
    No,
    /// The last task of its turn, nothing queued when it started.
    Yes,
    /// The main future, nothing queued when it started: the tasks ready
    /// now run after it, in the same turn, so it is alone only if none is.
    UnlessWoken,
}

/// State shared with wakers, which may be used from any thread.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Ids of tasks to poll, oldest first.
    queue: Mutex<VecDeque<usize>>,
    /// The runtime thread sleeps (or is about to) in the kernel: a waker
    /// must then write `wake_fd`. Paired with the queue check before sleeping
    /// (both SeqCst), so no wake-up is missed.
    parked: AtomicBool,
    /// Eventfd the driver polls while the runtime sleeps; open for as long
    /// as any waker holds this `Shared`.
    wake: EventFd,
}

/// A task's waker: queues its id once until it is polled again.
#[derive(Debug)]
pub(crate) struct TaskWaker {
    /// The task.
    id: usize,
    /// Already in the queue (cleared just before each poll).
    scheduled: AtomicBool,
    /// The scheduler's shared half.
    shared: Arc<Shared>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shared
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(self.id);
        // On the runtime's own thread (a completion being reaped, a task
        // waking another) the runtime looks at the queue before it sleeps
        // again: only a wake from another thread needs the eventfd.
        let local = context::sched_is(|s| Arc::ptr_eq(&s.shared, &self.shared));
        if !local && self.shared.parked.load(Ordering::SeqCst) {
            self.shared.wake.write();
        }
    }
}

/// One spawned task.
struct Task {
    /// The task's future; `None` while it is being polled.
    future: Option<Pin<Box<dyn Future<Output = ()>>>>,
    /// Its waker.
    waker: Arc<TaskWaker>,
}

/// Tasks of one runtime. Lives on the runtime thread only.
pub(crate) struct Scheduler {
    /// Shared with wakers.
    shared: Arc<Shared>,
    /// Spawned tasks by id; `None` marks a free slot.
    tasks: RefCell<Vec<Option<Task>>>,
    /// Free ids in `tasks`.
    free: RefCell<Vec<usize>>,
    /// Background tasks (flushes of dropped writers) that `block_on` finishes
    /// before it returns.
    lingering: Cell<usize>,
    /// The runtime is being dropped: no new tasks.
    closing: Cell<bool>,
    /// Whether the task running now submits alone (see
    /// [`Scheduler::alone_in_turn`]).
    alone: Cell<Alone>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("lingering", &self.lingering.get())
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// A scheduler whose wakers write `wake` (which it then owns).
    pub(crate) fn new(wake: EventFd) -> Scheduler {
        Scheduler {
            shared: Arc::new(Shared {
                queue: Mutex::new(VecDeque::new()),
                parked: AtomicBool::new(false),
                wake,
            }),
            tasks: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            lingering: Cell::new(0),
            closing: Cell::new(false),
            alone: Cell::new(Alone::No),
        }
    }

    /// A waker for task `id`, already scheduled if `scheduled`.
    pub(crate) fn waker(&self, id: usize, scheduled: bool) -> Arc<TaskWaker> {
        Arc::new(TaskWaker {
            id,
            scheduled: AtomicBool::new(scheduled),
            shared: self.shared.clone(),
        })
    }

    /// Adds a task and queues its first poll. `None` while closing.
    pub(crate) fn spawn(&self, future: Pin<Box<dyn Future<Output = ()>>>) -> Option<usize> {
        if self.closing.get() {
            return None;
        }
        let id = self.free.borrow_mut().pop().unwrap_or_else(|| {
            let mut tasks = self.tasks.borrow_mut();
            tasks.push(None);
            tasks.len() - 1
        });
        let waker = self.waker(id, false);
        self.tasks.borrow_mut()[id] = Some(Task {
            future: Some(future),
            waker: waker.clone(),
        });
        waker.wake_by_ref();
        Some(id)
    }

    /// Takes every queued id.
    pub(crate) fn take_ready(&self, into: &mut VecDeque<usize>) {
        let mut q = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::swap(&mut *q, into);
    }

    /// Polls task `id` once (a stale or finished id is ignored).
    pub(crate) fn run(&self, id: usize) {
        let (mut future, waker) = {
            let mut tasks = self.tasks.borrow_mut();
            let Some(Some(task)) = tasks.get_mut(id) else {
                return;
            };
            let Some(future) = task.future.take() else {
                return;
            };
            (future, task.waker.clone())
        };
        waker.scheduled.store(false, Ordering::Release);
        let w = Waker::from(waker);
        let done = future
            .as_mut()
            .poll(&mut Context::from_waker(&w))
            .is_ready();
        if done {
            self.tasks.borrow_mut()[id] = None;
            self.free.borrow_mut().push(id);
            drop(future);
        } else if let Some(Some(task)) = self.tasks.borrow_mut().get_mut(id) {
            task.future = Some(future);
        }
    }

    /// Records, before a poll, whether what it submits reaches the kernel
    /// alone (the runtime's loop).
    pub(crate) fn set_alone(&self, alone: Alone) {
        self.alone.set(alone);
    }

    /// Whether what the running task submits now reaches the kernel with
    /// nothing but its own entries, in the `io_uring_enter` that ends this
    /// turn (the writer's direct flush asks): it is the last task of its
    /// turn and nothing was queued for the kernel when it started. Tasks
    /// woken meanwhile run after that enter.
    pub(crate) fn alone_in_turn(&self) -> bool {
        match self.alone.get() {
            Alone::No => false,
            Alone::Yes => true,
            Alone::UnlessWoken => self
                .shared
                .queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty(),
        }
    }

    /// Clears the "scheduled" mark of a waker before its future is polled.
    pub(crate) fn unmark(waker: &TaskWaker) {
        waker.scheduled.store(false, Ordering::Release);
    }

    /// Declares that the runtime is about to sleep; returns false (and
    /// undeclares) if work arrived meanwhile.
    pub(crate) fn park(&self) -> bool {
        self.shared.parked.store(true, Ordering::SeqCst);
        let empty = self
            .shared
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty();
        if !empty {
            self.shared.parked.store(false, Ordering::SeqCst);
        }
        empty
    }

    /// The runtime woke up.
    pub(crate) fn unpark(&self) {
        self.shared.parked.store(false, Ordering::SeqCst);
    }

    /// Number of lingering background tasks.
    pub(crate) fn lingering(&self) -> usize {
        self.lingering.get()
    }

    /// Counts a lingering task in (`+1`) or out (`-1`).
    pub(crate) fn add_lingering(&self, delta: isize) {
        self.lingering
            .set(self.lingering.get().saturating_add_signed(delta));
    }

    /// Drops every task (their futures release their operations).
    pub(crate) fn close(&self) {
        self.closing.set(true);
        loop {
            let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
            if tasks.is_empty() {
                break;
            }
            drop(tasks);
        }
        self.free.borrow_mut().clear();
    }
}

/// Polls a pinned future once with `waker`.
pub(crate) fn poll_with<F: Future + ?Sized>(f: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(waker))
}
