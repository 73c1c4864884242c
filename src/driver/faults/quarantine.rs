//! The quarantine covers what neither AddressSanitizer nor valgrind can see:
//! the kernel writing into memory we already released. Buffers of reads
//! freed without being collected (abandoned, or dropped after completing)
//! are filled with a pattern and held back; they are checked (and only then
//! freed) later. Any changed byte is a violation.

use std::any::Any;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::BytesMut;

use super::super::table::Owned;
use super::super::{Attempt, CqeResult};

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
    fn hold(&mut self, mut buf: BytesMut) {
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
    fn drain(&mut self) {
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

/// An operation's data in the table of a decorated backend: everything is
/// passed through, except that when the table frees it uncollected, the
/// buffer the kernel wrote into goes to the quarantine instead of the
/// allocator.
pub(crate) struct Quarantined {
    /// The operation's own data (its heap address never changes).
    inner: Box<dyn Owned>,
    /// Where released buffers go.
    quarantine: Rc<RefCell<Quarantine>>,
}

impl Quarantined {
    /// Wraps `inner`.
    pub(crate) fn new(inner: Box<dyn Owned>, quarantine: Rc<RefCell<Quarantine>>) -> Quarantined {
        Quarantined { inner, quarantine }
    }
}

impl Owned for Quarantined {
    fn entry(&mut self) -> io_uring::squeue::Entry {
        self.inner.entry()
    }
    fn attempt(&mut self) -> Attempt {
        self.inner.attempt()
    }
    fn transfer_len(&self) -> Option<usize> {
        self.inner.transfer_len()
    }
    fn limit(&mut self, max: usize) -> bool {
        self.inner.limit(max)
    }
    fn take_kernel_buffer(&mut self) -> Option<BytesMut> {
        self.inner.take_kernel_buffer()
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self.inner.into_any()
    }
    fn discard(mut self: Box<Self>, res: CqeResult) {
        if let Some(buf) = self.inner.take_kernel_buffer() {
            self.quarantine.borrow_mut().hold(buf);
        }
        self.inner.discard(res);
    }
    fn discard_one(&mut self, res: CqeResult) {
        self.inner.discard_one(res);
    }
    fn queue_cap(&self) -> usize {
        self.inner.queue_cap()
    }
    fn observe(&mut self, res: &CqeResult) {
        self.inner.observe(res);
    }
}
