//! Test-only fault injection and quarantine (feature `fault-injection`).
//!
//! Faults are decided in one place, when an operation reaches the driver:
//! a completion that already carries bytes cannot be shortened without
//! losing them, so a short transfer is made by asking the kernel for fewer
//! bytes, and an error is delivered instead of submitting at all. Either way
//! the result travels the normal completion path ([`CqeResult::new`]).
//!
//! The quarantine covers what neither AddressSanitizer nor valgrind can see:
//! the kernel writing into memory we already released. Buffers of abandoned
//! reads are filled with a pattern when their completion arrives and held
//! back; they are checked (and only then freed) later. Any changed byte is a
//! violation.
//!
//! [`CqeResult::new`]: super::CqeResult::new

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::BytesMut;

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

/// What the driver does with one operation.
pub(crate) enum Decision {
    /// Run it as it is.
    Pass,
    /// Run it asking for at most this many bytes.
    Shorten(usize),
    /// Complete it with `-errno` without running it.
    Fail(i32),
    /// Refuse it with this errno.
    Refuse(i32),
}

/// A plan being applied.
#[derive(Debug)]
pub(crate) struct Faults {
    /// What to inject.
    plan: FaultPlan,
    /// xorshift state.
    rng: u64,
    /// What was injected.
    pub(crate) stats: FaultStats,
}

impl Faults {
    /// Starts applying `plan`.
    pub(crate) fn new(plan: FaultPlan) -> Faults {
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

    /// Decides for one operation; `transfer` is its length if it moves
    /// bytes (only those get errors, and short transfers if `shortens`).
    pub(crate) fn decide(&mut self, transfer: Option<usize>, shortens: bool) -> Decision {
        if let Some((errno, p)) = self.plan.submit_error
            && self.unit() < p
        {
            self.stats.submit_errors += 1;
            return Decision::Refuse(errno);
        }
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
        if shortens && len > 1 && self.plan.short > 0.0 && self.unit() < self.plan.short {
            max = max.min(1 + (self.unit() * (len - 1) as f64) as usize);
        }
        if max < len {
            self.stats.short += 1;
            Decision::Shorten(max)
        } else {
            Decision::Pass
        }
    }
}

/// Byte the quarantine fills released buffers with.
const PATTERN: u8 = 0xA5;
/// Buffers held back before the oldest is checked and freed.
const HOLD: usize = 256;

/// Violations found by every quarantine in this process.
static VIOLATIONS: AtomicU64 = AtomicU64::new(0);
/// Buffers checked by every quarantine in this process.
static CHECKED: AtomicU64 = AtomicU64::new(0);

/// Bytes of released kernel-facing buffers found changed so far, and how
/// many buffers were checked, in this process.
pub fn quarantine_report() -> (u64, u64) {
    (
        VIOLATIONS.load(Ordering::Relaxed),
        CHECKED.load(Ordering::Relaxed),
    )
}

/// Released buffers held back, pattern-filled.
#[derive(Debug, Default)]
pub(crate) struct Quarantine {
    /// Oldest first.
    held: VecDeque<BytesMut>,
}

impl Quarantine {
    /// Fills `buf` (all of its capacity) with the pattern and holds it.
    pub(crate) fn hold(&mut self, mut buf: BytesMut) {
        buf.clear();
        buf.resize(buf.capacity(), PATTERN);
        self.held.push_back(buf);
        if self.held.len() > HOLD {
            self.check_oldest();
        }
    }

    /// Checks and frees the oldest buffer.
    fn check_oldest(&mut self) {
        if let Some(buf) = self.held.pop_front() {
            let bad = buf.iter().filter(|&&b| b != PATTERN).count() as u64;
            if bad > 0 {
                eprintln!(
                    "uring-bufio quarantine: {bad} bytes of a released buffer were written after release"
                );
            }
            VIOLATIONS.fetch_add(bad, Ordering::Relaxed);
            CHECKED.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Checks and frees everything held.
    pub(crate) fn drain(&mut self) {
        while !self.held.is_empty() {
            self.check_oldest();
        }
    }
}

impl Drop for Quarantine {
    fn drop(&mut self) {
        self.drain();
    }
}
