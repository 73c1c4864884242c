//! Test-only fault injection (feature `fault-injection`): [`Faulty`], a
//! backend that wraps the runtime's real backend.
//!
//! Faults are decided where operations reach the backend, and the inner
//! backend never sees what was faulted:
//!
//! * refused: `reserve` fails with the errno, as a full or broken queue
//!   would; the operation never enters the table;
//! * failed: the entry completes with `-errno` at once, through the normal
//!   completion path ([`CqeResult::new`]), without reaching the kernel;
//! * shortened: the operation asks the kernel for fewer bytes
//!   ([`Owned::limit`]). A completion that already carries bytes cannot be
//!   shortened without losing them, and a decorator cannot shorten an epoll
//!   system call, so this one hook stays in the operations.
//!
//! Every operation's data is also wrapped as it enters the table (the
//! [`quarantine`]), to check that no released kernel-facing buffer is written.
//!
//! [`CqeResult::new`]: super::CqeResult::new

mod quarantine;

use std::any::Any;
use std::cell::RefCell;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::Duration;

use super::table::{OpId, Owned, Table};
use super::{Backend, Caps, CqeResult, Kind};
use quarantine::{Quarantine, Quarantined};

pub use quarantine::quarantine_report;

/// What to inject; build with the methods, pass to
/// [`Builder::faults`](crate::Builder::faults).
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    /// Seed of the generator deciding random faults.
    seed: u64,
    /// Every transfer asks for at most this many bytes.
    max_io: Option<usize>,
    /// Probability of a random short transfer (1 to the asked length).
    short: f64,
    /// Errors delivered instead of a transfer: `(errno, probability)`.
    errors: Vec<(i32, f64)>,
    /// Error returned instead of taking an operation at all.
    submit_error: Option<(i32, f64)>,
}

impl FaultPlan {
    /// No faults yet; `seed` makes random ones repeatable.
    pub fn new(seed: u64) -> FaultPlan {
        FaultPlan {
            seed: seed | 1,
            ..FaultPlan::default()
        }
    }

    /// Every read and write asks the kernel for at most `n` bytes.
    pub fn max_io(mut self, n: usize) -> FaultPlan {
        self.max_io = Some(n.max(1));
        self
    }

    /// With probability `p`, a read or write asks for a random shorter length.
    pub fn short_io(mut self, p: f64) -> FaultPlan {
        self.short = p;
        self
    }

    /// With probability `p`, a read or write fails with `errno` instead of
    /// running.
    pub fn error(mut self, errno: i32, p: f64) -> FaultPlan {
        self.errors.push((errno, p));
        self
    }

    /// With probability `p`, the driver refuses an operation with `errno`
    /// (as a failed submission would).
    pub fn submit_error(mut self, errno: i32, p: f64) -> FaultPlan {
        self.submit_error = Some((errno, p));
        self
    }
}

/// Faults injected so far by one runtime.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FaultStats {
    /// Transfers made shorter.
    pub short: u64,
    /// Errors delivered instead of a transfer.
    pub errors: u64,
    /// Operations refused at submission.
    pub submit_errors: u64,
}

/// What the decorator does with one operation that reached `submit`.
enum Decision {
    /// Run it as it is.
    Pass,
    /// Run it asking for at most this many bytes.
    Shorten(usize),
    /// Complete it with `-errno` without running it.
    Fail(i32),
}

/// A plan being applied: the random draws and what they injected.
#[derive(Debug)]
struct Faults {
    /// What to inject.
    plan: FaultPlan,
    /// xorshift state; never 0.
    rng: u64,
    /// What was injected.
    stats: FaultStats,
}

impl Faults {
    /// Starts applying `plan`.
    fn new(plan: FaultPlan) -> Faults {
        Faults {
            rng: plan.seed | 1,
            plan,
            stats: FaultStats::default(),
        }
    }

    /// A number in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The errno to refuse the next operation with, if any.
    fn refuse(&mut self) -> Option<i32> {
        let (errno, p) = self.plan.submit_error?;
        (self.unit() < p).then(|| {
            self.stats.submit_errors += 1;
            errno
        })
    }

    /// Decides for one operation; `transfer` is its length if it moves
    /// bytes (only those get errors and short transfers).
    fn decide(&mut self, transfer: Option<usize>) -> Decision {
        let Some(len) = transfer else {
            return Decision::Pass;
        };
        for i in 0..self.plan.errors.len() {
            let (errno, p) = self.plan.errors[i];
            if self.unit() < p {
                self.stats.errors += 1;
                return Decision::Fail(errno);
            }
        }
        let mut max = self.plan.max_io.unwrap_or(usize::MAX);
        if len > 1 && self.plan.short > 0.0 && self.unit() < self.plan.short {
            max = max.min(1 + (self.unit() * (len - 1) as f64) as usize);
        }
        if max < len {
            Decision::Shorten(max)
        } else {
            Decision::Pass
        }
    }
}

/// The decorator: faults the operations that reach it, hands the rest to
/// `inner` unchanged.
pub(crate) struct Faulty {
    /// The real backend.
    inner: Box<dyn Backend>,
    /// The plan and its draws.
    faults: Faults,
    /// Buffers of released reads, held back and checked; shared with every
    /// entry's [`Quarantined`] wrapper (the last holder checks them all).
    quarantine: Rc<RefCell<Quarantine>>,
}

/// `backend`, decorated with `plan` if there is one.
pub(crate) fn wrap(backend: Box<dyn Backend>, plan: Option<FaultPlan>) -> Box<dyn Backend> {
    match plan {
        Some(plan) => Box::new(Faulty {
            inner: backend,
            faults: Faults::new(plan),
            quarantine: Rc::default(),
        }),
        None => backend,
    }
}

/// Faults `backend` injected so far (none if it is not decorated).
pub(crate) fn stats(backend: &dyn Backend) -> FaultStats {
    let any: &dyn Any = backend;
    any.downcast_ref::<Faulty>()
        .map(|f| f.faults.stats)
        .unwrap_or_default()
}

impl Backend for Faulty {
    fn kind(&self) -> Kind {
        self.inner.kind()
    }
    fn caps(&self) -> Caps {
        self.inner.caps()
    }
    fn adopt(&mut self, data: Box<dyn Owned>) -> Box<dyn Owned> {
        let data = self.inner.adopt(data);
        Box::new(Quarantined::new(data, self.quarantine.clone()))
    }
    fn reserve(&mut self, table: &mut Table) -> io::Result<()> {
        match self.faults.refuse() {
            Some(errno) => Err(io::Error::from_raw_os_error(errno)),
            None => self.inner.reserve(table),
        }
    }
    fn submit(&mut self, table: &mut Table, id: OpId) {
        let data = table
            .data_mut(id)
            .expect("submit of an entry that is not in the table");
        match self.faults.decide(data.transfer_len()) {
            Decision::Pass => {}
            Decision::Shorten(max) => {
                if data.limit(max) {
                    self.faults.stats.short += 1;
                }
            }
            Decision::Fail(errno) => {
                table.complete(id, CqeResult::new(-errno, 0));
                return;
            }
        }
        self.inner.submit(table, id);
    }
    fn cancel(&mut self, table: &mut Table, id: OpId) {
        self.inner.cancel(table, id);
    }
    fn turn(&mut self, table: &mut Table, wait: bool, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.turn(table, wait, timeout)
    }
    fn busy(&self) -> bool {
        self.inner.busy()
    }
    fn stop_wake(&mut self) {
        self.inner.stop_wake();
    }
    fn completion_fd(&mut self) -> io::Result<RawFd> {
        self.inner.completion_fd()
    }
    fn host_fd(&mut self) -> io::Result<RawFd> {
        self.inner.host_fd()
    }
    fn queued(&mut self) -> bool {
        self.inner.queued()
    }
    fn register_buf_ring(
        &mut self,
        addr: u64,
        entries: u16,
        bgid: u16,
        flags: u16,
    ) -> io::Result<()> {
        self.inner.register_buf_ring(addr, entries, bgid, flags)
    }
    fn unregister_buf_ring(&mut self, bgid: u16) {
        self.inner.unregister_buf_ring(bgid);
    }
}
