//! `IORING_OP_TIMEOUT`: complete after a relative duration.

use std::io;
use std::time::{Duration, Instant};

use io_uring::{opcode, squeue, types};

use super::Operation;
use crate::driver::{Attempt, CqeResult};

/// Fires after `ts`.
#[derive(Debug)]
pub(crate) struct Timeout {
    /// The duration the kernel reads at submission.
    ts: types::Timespec,
    /// The same duration, for the epoll backend's timer.
    duration: Duration,
}

impl Timeout {
    /// A timeout of `d`.
    pub(crate) fn new(d: Duration) -> Timeout {
        Timeout {
            ts: types::Timespec::from(d),
            duration: d,
        }
    }
}

impl Operation for Timeout {
    type Output = io::Result<()>;
    const CANCEL_ON_DROP: bool = true;

    fn entry(&mut self) -> squeue::Entry {
        opcode::Timeout::new(&self.ts).build()
    }

    fn attempt(&mut self) -> Attempt {
        Attempt::Until(Instant::now() + self.duration)
    }

    fn complete(self, res: CqeResult) -> Self::Output {
        match res.result {
            Ok(_) => Ok(()),
            // Expiry is reported as ETIME: that is success for a sleep.
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
