//! Thread-per-core servers: N worker threads, each with its own
//! [`Runtime`](crate::Runtime), and the pieces a server needs around them.
//!
//! * [`Launcher`] starts the workers (default: one per available CPU), with
//!   optional CPU pinning and thread names, and [`Workers`] holds them: hand
//!   a `Send` closure to a worker, which builds its `!Send` future there,
//!   and await (from any executor) or block on the [`RemoteHandle`].
//!   A worker that panics is reported by [`Workers::join`]; the others go on.
//! * [`Server`] serves TCP on the workers: listeners per worker with
//!   `SO_REUSEPORT`, or one acceptor handing sockets round-robin
//!   ([`Listen`]); accept loops that survive `EMFILE`; a cap on connections
//!   per worker; graceful shutdown with a [`ShutdownToken`] and a deadline;
//!   shutdown on SIGTERM and SIGINT by itself.
//! * [`signal`]: `ctrl_c()`, `terminate()` and [`Signals`](signal::Signals)
//!   on our runtime (both backends).
//!
//! The trade-offs (listener modes, restarts, `SIGKILL`) are in
//! `docs/launcher.md`.
//!
//! ```
//! use uring_bufio::launch::Launcher;
//!
//! let workers = Launcher::new().workers(2).start(|worker| async move {
//!     worker.shutdown().begun().await;
//!     Ok(())
//! })?;
//! // From this (plain) thread: a closure whose future runs on worker 1.
//! let handle = workers.spawn_on(1, || async { uring_bufio::spawn(async { 6 * 7 }).await });
//! assert_eq!(handle.join().unwrap().unwrap(), 42);
//! workers.shutdown();
//! workers.join()?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod accept;
mod channel;
mod conns;
mod error;
mod listen;
mod remote;
mod server;
mod shutdown;
pub mod signal;
mod stats;
mod worker;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use conns::Connection;
pub use error::{FailureCause, LaunchError, WorkerFailure};
pub use listen::Listen;
pub use remote::RemoteHandle;
pub use server::{Running, Server};
pub use shutdown::{Begun, ShutdownToken};
pub use stats::WorkerStats;
pub use worker::Worker;

use crate::Builder;
use worker::{Job, WorkerThread};

/// Starts worker threads, each running its own runtime.
#[derive(Clone, Debug)]
pub struct Launcher {
    /// Number of workers, at least 1.
    workers: usize,
    /// Pin worker `i` to the `i`-th allowed CPU (modulo their number).
    pin: bool,
    /// Thread name prefix; worker `i` is named `{name}-{i}`.
    name: String,
    /// Settings of every worker's runtime.
    runtime: Builder,
}

impl Default for Launcher {
    fn default() -> Launcher {
        Launcher::new()
    }
}

impl Launcher {
    /// One worker per available CPU (`std::thread::available_parallelism`),
    /// not pinned, named `uring-worker-{i}`, default runtime settings.
    pub fn new() -> Launcher {
        Launcher {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            pin: false,
            name: "uring-worker".to_string(),
            runtime: Builder::default(),
        }
    }

    /// Number of workers (at least 1).
    pub fn workers(&mut self, n: usize) -> &mut Launcher {
        self.workers = n.max(1);
        self
    }

    /// Pins worker `i` to the `i`-th CPU this process may run on (modulo
    /// their number; default off). A failed pin is reported on stderr and
    /// the worker runs unpinned.
    pub fn pin_cpus(&mut self, pin: bool) -> &mut Launcher {
        self.pin = pin;
        self
    }

    /// Thread name prefix: worker `i` is `{prefix}-{i}`.
    pub fn thread_name(&mut self, prefix: impl Into<String>) -> &mut Launcher {
        self.name = prefix.into();
        self
    }

    /// Settings of every worker's runtime (entries, backend, pool, ...).
    pub fn runtime(&mut self, builder: Builder) -> &mut Launcher {
        self.runtime = builder;
        self
    }

    /// The number of workers [`start`](Launcher::start) starts.
    pub fn worker_count(&self) -> usize {
        self.workers
    }

    /// Starts the workers; each runs `main(worker)` on its own runtime and
    /// ends when that future returns. A worker whose runtime fails to build
    /// ends with that error (reported by [`Workers::join`]).
    pub fn start<M, Fut>(&self, main: M) -> io::Result<Workers>
    where
        M: Fn(Worker) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<()>> + 'static,
    {
        let shutdown = ShutdownToken::new();
        let cpus = if self.pin {
            worker::allowed_cpus()?
        } else {
            Vec::new()
        };
        let main = Arc::new(main);
        let mut threads = Vec::with_capacity(self.workers);
        for index in 0..self.workers {
            let how = worker::Spawn {
                index,
                name: format!("{}-{index}", self.name),
                cpu: (!cpus.is_empty()).then(|| cpus[index % cpus.len()]),
                builder: &self.runtime,
                shutdown: shutdown.clone(),
            };
            match worker::spawn(how, main.clone()) {
                Ok(thread) => threads.push(thread),
                Err(e) => {
                    // The workers already started must not wait forever.
                    shutdown.begin();
                    return Err(e);
                }
            }
        }
        Ok(Workers {
            threads,
            shutdown,
            next: AtomicUsize::new(0),
        })
    }
}

/// Running workers. `Send` and `Sync`: hand work to them from any thread.
#[derive(Debug)]
pub struct Workers {
    /// One per worker, in index order.
    threads: Vec<WorkerThread>,
    /// Shared with every worker.
    shutdown: ShutdownToken,
    /// Round-robin position of [`spawn`](Workers::spawn).
    next: AtomicUsize,
}

impl Workers {
    /// Number of workers.
    pub fn len(&self) -> usize {
        self.threads.len()
    }

    /// Always false: a launcher starts at least one worker.
    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }

    /// The token every worker was given.
    pub fn shutdown_token(&self) -> &ShutdownToken {
        &self.shutdown
    }

    /// Begins shutdown: the workers' main futures see the token and return.
    pub fn shutdown(&self) {
        self.shutdown.begin();
    }

    /// Whether worker `index` still runs its runtime.
    pub fn is_alive(&self, index: usize) -> bool {
        self.threads
            .get(index)
            .is_some_and(|t| !t.jobs.is_closed() && !t.thread.is_finished())
    }

    /// Runs `make` on worker `index` (modulo the number of workers): it
    /// builds a future there, which need not be `Send`, and the future is
    /// spawned on that worker's runtime. The handle gives its output; it is
    /// cancelled if the worker has ended or ends first.
    pub fn spawn_on<F, Fut>(&self, index: usize, make: F) -> RemoteHandle<Fut::Output>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let (handle, completer) = remote::remote();
        let job: Job = Box::new(move || remote::run_here(make, completer));
        // A refused job is dropped here, and with it its completer: the
        // handle resolves as cancelled.
        let _ = self.threads[index % self.len()].jobs.send(job);
        handle
    }

    /// As [`spawn_on`](Workers::spawn_on), on the next live worker in
    /// round-robin order.
    pub fn spawn<F, Fut>(&self, make: F) -> RemoteHandle<Fut::Output>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        self.spawn_on(self.next_live(), make)
    }

    /// The next worker in round-robin order that is alive (any, if none is).
    pub(crate) fn next_live(&self) -> usize {
        let n = self.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| !self.threads[i].jobs.is_closed())
            .unwrap_or(start % n)
    }

    /// Waits for every worker to end. `Err` names each worker that panicked
    /// or failed, with the panic message or error; the others ran on until
    /// their own end.
    pub fn join(self) -> Result<(), LaunchError> {
        let mut failures = Vec::new();
        for (index, t) in self.threads.into_iter().enumerate() {
            match t.thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(failure)) => failures.push(failure),
                // Only a panic outside `catch_unwind` (in its report) lands here.
                Err(payload) => failures.push(WorkerFailure {
                    index,
                    name: t.name,
                    cause: FailureCause::Panic(worker::panic_message(&*payload)),
                }),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(LaunchError::new(failures))
        }
    }
}
