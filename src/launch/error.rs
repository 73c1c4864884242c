//! How a launcher reports workers that failed.

use std::fmt;
use std::io;

/// Why a worker ended early.
#[derive(Debug)]
pub enum FailureCause {
    /// Its main future (or the runtime under it) panicked; the message.
    Panic(String),
    /// Its main future returned this error, or its runtime did not start.
    Error(io::Error),
}

/// One worker that failed.
#[derive(Debug)]
pub struct WorkerFailure {
    /// The worker's position, `0..n`.
    pub index: usize,
    /// Its thread's name.
    pub name: String,
    /// What ended it.
    pub cause: FailureCause,
}

impl fmt::Display for WorkerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (index, name) = (self.index, &self.name);
        match &self.cause {
            FailureCause::Panic(msg) => write!(f, "worker {index} ({name}) panicked: {msg}"),
            FailureCause::Error(e) => write!(f, "worker {index} ({name}) failed: {e}"),
        }
    }
}

/// The error of [`Workers::join`](super::Workers::join): the workers that
/// failed, in worker order (the others ran to their end).
#[derive(Debug)]
pub struct LaunchError {
    /// At least one failure.
    failures: Vec<WorkerFailure>,
}

impl LaunchError {
    /// An error for `failures` (not empty).
    pub(crate) fn new(failures: Vec<WorkerFailure>) -> LaunchError {
        debug_assert!(!failures.is_empty());
        LaunchError { failures }
    }

    /// The failures, taken out.
    pub(crate) fn into_failures(self) -> Vec<WorkerFailure> {
        self.failures
    }

    /// The failed workers, in worker order.
    pub fn failures(&self) -> &[WorkerFailure] {
        &self.failures
    }
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.failures.len();
        write!(f, "{n} worker{} failed", if n == 1 { "" } else { "s" })?;
        for failure in &self.failures {
            write!(f, "; {failure}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LaunchError {}

impl From<LaunchError> for io::Error {
    fn from(e: LaunchError) -> io::Error {
        io::Error::other(e)
    }
}
