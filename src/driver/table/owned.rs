//! What a table entry holds: the kernel-facing data of one operation, behind
//! the [`Owned`] interface, named by an [`OpId`].

use std::any::Any;

use super::super::{Attempt, CqeResult};

/// Identifies one table entry: slot index and the slot's generation, so a stale
/// id (or a cancel aimed at a finished operation) never touches a reused slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct OpId {
    /// Index into `Table::slots`.
    pub(crate) index: u32,
    /// Generation of the slot when the entry was inserted.
    pub(crate) generation: u32,
}

impl OpId {
    /// The `user_data` the submission entry carries.
    pub(crate) fn user_data(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }

    /// Inverse of [`OpId::user_data`].
    pub(crate) fn from_user_data(data: u64) -> OpId {
        OpId {
            index: data as u32,
            generation: (data >> 32) as u32,
        }
    }
}

/// Kernel-facing data of one operation, type-erased so the table can hold any.
///
/// Three methods serve only the fault-injection decorator (`driver/faults.rs`,
/// a test feature) and are never called in a normal build: `transfer_len`
/// (faults go to reads and writes only), `limit` (only the operation can ask
/// the kernel for fewer bytes: a decorator cannot shorten an epoll system
/// call) and `take_kernel_buffer` (only the operation knows which buffer the
/// kernel writes, for the quarantine).
pub trait Owned: 'static {
    /// io_uring: the submission entry; may point into `self`, which sits at
    /// its final heap address.
    fn entry(&mut self) -> io_uring::squeue::Entry;
    /// epoll: performs the operation now without blocking.
    fn attempt(&mut self) -> Attempt;
    /// Bytes a read or write asks for; `None` for other operations.
    #[allow(dead_code, reason = "fault-injection hook: unused in a normal build")]
    fn transfer_len(&self) -> Option<usize>;
    /// Asks the kernel for at most `max` bytes from now on (a short transfer
    /// on purpose); `false` if the operation cannot (a multishot receive has
    /// no length to shorten).
    #[allow(dead_code, reason = "fault-injection hook: unused in a normal build")]
    fn limit(&mut self, max: usize) -> bool;
    /// The buffer the kernel writes into, taken out when the operation is
    /// freed without being collected (for the quarantine).
    #[allow(dead_code, reason = "fault-injection hook: unused in a normal build")]
    fn take_kernel_buffer(&mut self) -> Option<bytes::BytesMut>;
    /// Hands the data back to the typed future that collects it.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
    /// The completion arrived but nobody will collect it: release what it
    /// produced (an accepted or opened fd is closed here).
    fn discard(self: Box<Self>, res: CqeResult);
    /// A multishot completion (more to come) arrived for an abandoned entry, or
    /// was still queued when its future let go: release what it produced.
    fn discard_one(&mut self, res: CqeResult);
    /// Multishot: completions that may queue up uncollected before the
    /// driver cancels the operation (its future starts it again when it
    /// wants more).
    fn queue_cap(&self) -> usize;
    /// Sees every completion as it is reaped, before anyone collects it
    /// (a pooled receive books the buffer the kernel picked).
    fn observe(&mut self, res: &CqeResult);
}
