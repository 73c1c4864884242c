//! One worker thread: its own runtime, an inbox for work handed in from
//! other threads, optional CPU pinning, and a report when it fails.

use std::future::Future;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::channel::{self, Receiver, Sender};
use super::error::{FailureCause, WorkerFailure};
use super::shutdown::ShutdownToken;
use crate::Builder;

/// Work handed to a worker from another thread: runs on the worker's
/// thread (inside its runtime), where it builds and spawns its future.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// What a worker's main future is given: which worker it runs on and the
/// launcher's shutdown token.
#[derive(Clone, Debug)]
pub struct Worker {
    /// Position among the launcher's workers, `0..n`.
    index: usize,
    /// The launcher's token (shared by every worker).
    shutdown: ShutdownToken,
}

impl Worker {
    /// Position among the launcher's workers, `0..n`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The launcher's shutdown token: main futures return soon after it
    /// begins (see [`Workers::shutdown`](super::Workers::shutdown)).
    pub fn shutdown(&self) -> &ShutdownToken {
        &self.shutdown
    }
}

/// A started worker thread as the launcher holds it.
#[derive(Debug)]
pub(crate) struct WorkerThread {
    /// The thread's name.
    pub(crate) name: String,
    /// The worker's inbox; closed once the worker's runtime is gone.
    pub(crate) jobs: Sender<Job>,
    /// The thread; `Err` if its main future failed or panicked.
    pub(crate) thread: JoinHandle<Result<(), WorkerFailure>>,
}

/// How to start one worker.
pub(crate) struct Spawn<'a> {
    /// Position among the workers.
    pub(crate) index: usize,
    /// Thread name.
    pub(crate) name: String,
    /// CPU to pin the thread to, if any.
    pub(crate) cpu: Option<usize>,
    /// Runtime settings.
    pub(crate) builder: &'a Builder,
    /// The launcher's token.
    pub(crate) shutdown: ShutdownToken,
}

/// Starts a worker thread running `main` on its own runtime.
pub(crate) fn spawn<M, Fut>(how: Spawn<'_>, main: Arc<M>) -> io::Result<WorkerThread>
where
    M: Fn(Worker) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = io::Result<()>> + 'static,
{
    let (jobs, inbox) = channel::channel::<Job>();
    let worker = Worker {
        index: how.index,
        shutdown: how.shutdown,
    };
    let (index, builder, cpu, name) = (how.index, how.builder.clone(), how.cpu, how.name.clone());
    let thread = std::thread::Builder::new()
        .name(how.name.clone())
        .spawn(move || {
            if let Some(cpu) = cpu {
                pin_to_cpu(cpu)
                    .unwrap_or_else(|e| eprintln!("{name}: not pinned to CPU {cpu}: {e}"));
            }
            let run = catch_unwind(AssertUnwindSafe(|| run(&builder, inbox, worker, &*main)));
            outcome(index, name, run)
        })?;
    Ok(WorkerThread {
        name: how.name,
        jobs,
        thread,
    })
}

/// Builds the runtime and runs `main` on it, with the inbox served by a
/// task. Everything (listener, connections, inbox) is dropped with the
/// runtime before this returns, also when it unwinds.
fn run<M, Fut>(builder: &Builder, inbox: Receiver<Job>, worker: Worker, main: &M) -> io::Result<()>
where
    M: Fn(Worker) -> Fut,
    Fut: Future<Output = io::Result<()>> + 'static,
{
    let rt = builder.build()?;
    rt.block_on(async move {
        crate::spawn(serve_jobs(inbox));
        main(worker).await
    })
}

/// Runs each job handed in, until the runtime drops this task (which
/// closes the inbox: jobs sent later come back to their sender).
async fn serve_jobs(inbox: Receiver<Job>) {
    loop {
        let job = inbox.recv().await;
        job();
    }
}

/// The worker's result, reported on stderr at once if it failed.
fn outcome(
    index: usize,
    name: String,
    run: std::thread::Result<io::Result<()>>,
) -> Result<(), WorkerFailure> {
    let cause = match run {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => FailureCause::Error(e),
        Err(payload) => FailureCause::Panic(panic_message(&*payload)),
    };
    let failure = WorkerFailure { index, name, cause };
    eprintln!(
        "uring-bufio launcher: {failure}; its runtime and listener are closed, \
         the other workers go on"
    );
    Err(failure)
}

/// The text of a panic payload (`&str` or `String`), else a placeholder.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a panic payload that is not a string)".to_string())
}

/// The CPUs this process may run on, in ascending order.
pub(crate) fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: `cpu_set_t` is plain data; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `set` is a valid, writable cpu_set_t of `size` bytes.
    if unsafe { libc::sched_getaffinity(0, size, &mut set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let max = libc::CPU_SETSIZE as usize;
    // SAFETY: every `cpu` is below CPU_SETSIZE, inside the set.
    Ok((0..max)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// Pins the calling thread to `cpu`.
fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "CPU number too large",
        ));
    }
    // SAFETY: `cpu_set_t` is plain data; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` was checked to be below CPU_SETSIZE, inside the set.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `set` is a valid cpu_set_t of `size` bytes; pid 0 is this thread.
    if unsafe { libc::sched_setaffinity(0, size, &set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinning narrows the thread's allowed set to that one CPU.
    #[test]
    fn pinning_leaves_one_allowed_cpu() {
        let first = allowed_cpus().unwrap()[0];
        let after = std::thread::spawn(move || {
            pin_to_cpu(first).unwrap();
            allowed_cpus().unwrap()
        });
        assert_eq!(after.join().unwrap(), vec![first]);
    }
}
