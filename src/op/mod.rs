//! Kernel operations, one per file.
//!
//! Each operation is a struct that owns everything the kernel may touch while
//! it runs (buffers, addresses, iovecs, the fd), builds its submission entry
//! once it sits at its final heap address, and turns its completion into a
//! result that hands the owned data back. [`Op`] is the future that submits
//! one and waits for it; dropping it leaves the data with the driver's
//! in-flight table until the kernel is done (and cancels operations that may
//! never finish on their own).
//!
//! Async cancel has no file here: it owns no memory and has no table entry,
//! so the driver builds it itself (`driver/mod.rs`).

mod accept;
mod accept_multi;
mod close;
mod connect;
mod fsync;
mod openat;
mod read;
mod recv;
mod recv_pool;
mod send;
pub(crate) mod send_zc;
mod sendmsg;
mod shutdown;
mod spare;
pub(crate) mod splice;
mod sys;
mod timeout;
mod write;
mod writev;

use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use io_uring::squeue;

use crate::driver::{self, Attempt, CqeResult, Driver, OpId, Owned};

pub(crate) use accept::Accept;
pub(crate) use accept_multi::AcceptMulti;
pub(crate) use close::Close;
pub(crate) use connect::Connect;
pub(crate) use fsync::Fsync;
pub(crate) use openat::OpenAt;
pub(crate) use read::{Read, read_cached};
pub(crate) use recv::{Recv, RecvOutput};
pub(crate) use recv_pool::{RecvOutcome, RecvPool};
pub(crate) use send::Send;
pub(crate) use sendmsg::SendMsg;
pub(crate) use shutdown::Shutdown;
pub(crate) use spare::Spare;
use spare::take_out;
pub(crate) use sys::{or_wait, read_stream, ready_now, syscall_result};
pub(crate) use timeout::Timeout;
pub(crate) use write::Write;
pub(crate) use writev::{MAX_SEGMENTS, Writev};

/// One kernel operation and the memory it owns.
pub trait Operation: Sized + 'static {
    /// What the caller gets back (usually the result and the owned buffer).
    type Output;

    /// The operation may never complete on its own (receive, accept, timeout):
    /// when its future is dropped, the driver sends an async cancel.
    const CANCEL_ON_DROP: bool = false;

    /// Multishot: after its first completion the operation ends on its
    /// own (only a notification follows, as for a zero-copy send), so a
    /// future dropped after collecting one has nothing to cancel.
    const ENDS_AFTER_FIRST: bool = false;

    /// Builds the submission entry. `self` already sits at its final heap
    /// address, so the entry may point into it.
    fn entry(&mut self) -> squeue::Entry;

    /// The epoll backend: performs the operation now with its non-blocking
    /// system call, or says what to wait for.
    fn attempt(&mut self) -> Attempt;

    /// Bytes a read or write asks for (`None` for other operations).
    ///
    /// This and the next two methods are the hooks of the test-only fault
    /// injection (`driver/faults.rs`), unused in a normal build; see
    /// [`Owned`] for why each is needed.
    fn transfer_len(&self) -> Option<usize> {
        None
    }

    /// Asks the kernel for at most `max` bytes from now on (a short
    /// transfer on purpose); `false` where that is impossible (the default).
    fn limit(&mut self, max: usize) -> bool {
        let _ = max;
        false
    }

    /// The buffer the kernel writes into, for the quarantine (reads).
    fn take_kernel_buffer(&mut self) -> Option<bytes::BytesMut> {
        None
    }

    /// Turns the completion into the output, handing owned data back.
    fn complete(self, res: CqeResult) -> Self::Output;

    /// The completion arrived after the future was dropped: release anything
    /// it produced (for example close an accepted fd). Dropping `self` frees
    /// the memory.
    fn abandoned(self, res: CqeResult) {
        let _ = res;
    }

    /// Multishot: a completion with more to come that nobody will collect
    /// (its future went away): release what it produced.
    fn abandoned_one(&mut self, res: CqeResult) {
        let _ = res;
    }

    /// Multishot: completions that may queue uncollected before the driver
    /// cancels the operation.
    fn queue_cap(&self) -> usize {
        usize::MAX
    }

    /// Sees each completion when it is reaped, before it is collected.
    fn observe(&mut self, res: &CqeResult) {
        let _ = res;
    }
}

impl<T: Operation> Owned for T {
    fn entry(&mut self) -> squeue::Entry {
        Operation::entry(self)
    }
    fn attempt(&mut self) -> Attempt {
        Operation::attempt(self)
    }
    fn transfer_len(&self) -> Option<usize> {
        Operation::transfer_len(self)
    }
    fn limit(&mut self, max: usize) -> bool {
        Operation::limit(self, max)
    }
    fn take_kernel_buffer(&mut self) -> Option<bytes::BytesMut> {
        Operation::take_kernel_buffer(self)
    }
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
    fn discard(self: Box<Self>, res: CqeResult) {
        (*self).abandoned(res);
    }
    fn discard_one(&mut self, res: CqeResult) {
        self.abandoned_one(res);
    }
    fn queue_cap(&self) -> usize {
        Operation::queue_cap(self)
    }
    fn observe(&mut self, res: &CqeResult) {
        Operation::observe(self, res);
    }
}

/// A submitted operation; resolves to its output.
#[derive(Debug)]
pub struct Op<T: Operation> {
    /// Where the operation is.
    state: State<T>,
}

/// Lifecycle of an [`Op`].
enum State<T> {
    /// In the driver's table.
    Submitted {
        /// The driver holding it.
        driver: Rc<Driver>,
        /// Its table entry.
        id: OpId,
    },
    /// Never reached the kernel (no runtime, or the queue refused it).
    Failed(Box<T>, io::Error),
    /// Output already returned; the memory the operation lived in, for
    /// [`Op::recycle`].
    Done(Option<Box<MaybeUninit<T>>>),
}

impl<T> std::fmt::Debug for State<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            State::Submitted { id, .. } => write!(f, "Submitted({id:?})"),
            State::Failed(_, e) => write!(f, "Failed({e})"),
            State::Done(_) => f.write_str("Done"),
        }
    }
}

impl<T: Operation> Op<T> {
    /// Hands `op` to the current runtime's driver. Errors (no runtime) are
    /// returned by the first poll, together with the owned data.
    pub(crate) fn submit(op: T) -> Op<T> {
        Op::submit_in(op, &mut Spare::new())
    }

    /// [`submit`](Op::submit) in the memory `spare` kept from an earlier
    /// operation, if it holds any (then nothing is allocated).
    pub(crate) fn submit_in(op: T, spare: &mut Spare<T>) -> Op<T> {
        let op = spare.store(op);
        let state = match driver::current() {
            Ok(driver) => match driver.submit(op, false) {
                Ok(id) => State::Submitted { driver, id },
                Err((op, e)) => State::Failed(op, e),
            },
            Err(e) => State::Failed(op, e),
        };
        Op { state }
    }

    /// Once the output was returned: keeps the operation's memory in
    /// `spare` for the next one. Before that, it does what dropping does.
    pub(crate) fn recycle(mut self, spare: &mut Spare<T>) {
        if let State::Done(memory) = &mut self.state
            && let Some(memory) = memory.take()
        {
            spare.keep(memory);
        }
    }
}

impl<T: Operation> Future for Op<T> {
    type Output = T::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        let this = &mut *self;
        let (op, res) = match &this.state {
            State::Submitted { driver, id } => {
                let (data, res) = std::task::ready!(driver.poll_op(*id, cx));
                let op = data
                    .into_any()
                    .downcast::<T>()
                    .unwrap_or_else(|_| unreachable!("table entry holds the op's own type"));
                (op, res)
            }
            State::Failed(..) => match std::mem::replace(&mut this.state, State::Done(None)) {
                State::Failed(op, e) => (
                    op,
                    CqeResult {
                        result: Err(e),
                        flags: 0,
                    },
                ),
                _ => unreachable!("matched Failed above"),
            },
            State::Done(_) => panic!("Op polled after completion"),
        };
        let (op, memory) = take_out(op);
        this.state = State::Done(Some(memory));
        Poll::Ready(op.complete(res))
    }
}

impl<T: Operation> Drop for Op<T> {
    fn drop(&mut self) {
        if let State::Submitted { driver, id } = &self.state {
            driver.release(*id, T::CANCEL_ON_DROP);
        }
    }
}

/// A submitted multishot operation: one submission, many completions.
/// Dropping it cancels the operation (unless
/// [`Operation::ENDS_AFTER_FIRST`] and one was collected); completions still queued, and those
/// that arrive until the kernel confirms the end, are released through
/// [`Operation::abandoned_one`] and [`Operation::abandoned`].
#[derive(Debug)]
pub(crate) struct Multishot<T: Operation> {
    /// Where the operation is.
    state: State<T>,
    /// A completion was collected (see [`Operation::ENDS_AFTER_FIRST`]).
    collected: bool,
}

impl<T: Operation> Multishot<T> {
    /// Hands `op` to the current runtime's driver as a multishot entry.
    pub(crate) fn submit(op: T) -> Multishot<T> {
        Multishot::submit_in(op, &mut Spare::new())
    }

    /// [`submit`](Multishot::submit) in the memory `spare` kept from an
    /// earlier operation, if it holds any (then nothing is allocated).
    pub(crate) fn submit_in(op: T, spare: &mut Spare<T>) -> Multishot<T> {
        let op = spare.store(op);
        let state = match driver::current() {
            Ok(driver) => match driver.submit(op, true) {
                Ok(id) => State::Submitted { driver, id },
                Err((op, e)) => State::Failed(op, e),
            },
            Err(e) => State::Failed(op, e),
        };
        Multishot {
            state,
            collected: false,
        }
    }

    /// Once the last completion was returned: keeps the operation's
    /// memory in `spare` for the next one. Before that, it does what
    /// dropping does.
    pub(crate) fn recycle(mut self, spare: &mut Spare<T>) {
        if let State::Done(memory) = &mut self.state
            && let Some(memory) = memory.take()
        {
            spare.keep(memory);
        }
    }

    /// The next completion, and whether it is the last (the operation is
    /// over and must be submitted again for more). After the last,
    /// `Ready(None)`.
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<(CqeResult, bool)>> {
        match &self.state {
            State::Submitted { driver, id } => {
                let (res, data) = std::task::ready!(driver.poll_multishot(*id, cx));
                self.collected = true;
                let last = data.is_some();
                if let Some(data) = data {
                    let op = data
                        .into_any()
                        .downcast::<T>()
                        .unwrap_or_else(|_| unreachable!("table entry holds the op's own type"));
                    let (op, memory) = take_out(op);
                    drop(op);
                    self.state = State::Done(Some(memory));
                }
                Poll::Ready(Some((res, last)))
            }
            State::Failed(..) => match std::mem::replace(&mut self.state, State::Done(None)) {
                State::Failed(_, e) => Poll::Ready(Some((
                    CqeResult {
                        result: Err(e),
                        flags: 0,
                    },
                    true,
                ))),
                _ => unreachable!("matched Failed above"),
            },
            State::Done(_) => Poll::Ready(None),
        }
    }
}

impl<T: Operation> Drop for Multishot<T> {
    fn drop(&mut self) {
        if let State::Submitted { driver, id } = &self.state {
            // The entry stays in the table (owning its memory) until its
            // last completion either way; only the cancel is skipped.
            driver.release(*id, !(T::ENDS_AFTER_FIRST && self.collected));
        }
    }
}

/// Offset meaning "the file's current position" (or none, for streams).
pub(crate) const CURRENT_POS: u64 = u64::MAX;

/// Books a read's result into the buffer whose spare capacity it filled:
/// the length grows by what the kernel reported.
pub(crate) fn filled(
    mut buf: bytes::BytesMut,
    res: CqeResult,
) -> (io::Result<usize>, bytes::BytesMut) {
    let n = match res.result {
        Ok(n) => n as usize,
        Err(e) => return (Err(e), buf),
    };
    let len = buf.len() + n;
    assert!(
        len <= buf.capacity(),
        "kernel reported more than it was given"
    );
    // SAFETY: the kernel initialised `n` bytes after the old length (checked
    // to lie within the capacity just above).
    unsafe { buf.set_len(len) };
    (Ok(n), buf)
}
