//! Unit tests of the in-flight table, without a kernel: directly, and through
//! a [`Driver`] over the fake backend. Each test operation logs what the
//! table did with it, its drop included, so the invariant "memory the kernel
//! may touch is freed only after the final completion" is checked by order.

use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::super::fake::{self, Kernel, MORE, counting};
use super::super::{Attempt, Caps, CqeResult, Driver, Kind};
use super::{OpId, Owned, Released, Table};

/// What happened to a test operation; results as raw `res` (`-errno`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    /// `observe` saw a completion.
    Observed(i32),
    /// `discard_one` released a multishot completion nobody collects.
    DiscardedOne(i32),
    /// `discard` released the final completion nobody collects.
    Discarded(i32),
    /// The operation's memory was freed.
    Dropped,
}
use Event::*;

/// The events of every test operation of one test, in order.
type Log = Rc<RefCell<Vec<Event>>>;

/// A test operation: owns nothing but a log entry on each call.
#[derive(Debug)]
struct TestOp {
    /// Where it logs.
    log: Log,
    /// Its multishot queue cap.
    cap: usize,
}

impl Drop for TestOp {
    fn drop(&mut self) {
        self.log.borrow_mut().push(Dropped);
    }
}

/// The raw result a completion carried.
fn raw(res: &CqeResult) -> i32 {
    match &res.result {
        Ok(n) => *n as i32,
        Err(e) => -e.raw_os_error().expect("an errno"),
    }
}

impl Owned for TestOp {
    fn entry(&mut self) -> io_uring::squeue::Entry {
        io_uring::opcode::Nop::new().build()
    }
    fn attempt(&mut self) -> Attempt {
        Attempt::Done(0)
    }
    fn transfer_len(&self) -> Option<usize> {
        None
    }
    fn limit(&mut self, _max: usize) -> bool {
        false
    }
    fn take_kernel_buffer(&mut self) -> Option<bytes::BytesMut> {
        None
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
    fn discard(self: Box<Self>, res: CqeResult) {
        self.log.borrow_mut().push(Discarded(raw(&res)));
    }
    fn discard_one(&mut self, res: CqeResult) {
        self.log.borrow_mut().push(DiscardedOne(raw(&res)));
    }
    fn queue_cap(&self) -> usize {
        self.cap
    }
    fn observe(&mut self, res: &CqeResult) {
        self.log.borrow_mut().push(Observed(raw(res)));
    }
}

/// A test operation logging to `log`, with no queue cap.
fn op(log: &Log) -> Box<TestOp> {
    Box::new(TestOp {
        log: log.clone(),
        cap: usize::MAX,
    })
}

/// The events so far, cleared.
fn take(log: &Log) -> Vec<Event> {
    std::mem::take(&mut *log.borrow_mut())
}

/// A single-shot completion (or the last of a multishot entry).
fn res(n: i32) -> CqeResult {
    CqeResult::new(n, 0)
}

/// A multishot completion with more to come.
fn more(n: i32) -> CqeResult {
    CqeResult::new(n, MORE)
}

/// Polls single-shot entry `id` with a waker nobody watches.
fn poll(table: &mut Table, id: OpId) -> Poll<(Box<dyn Owned>, CqeResult)> {
    table.poll(id, &mut Context::from_waker(Waker::noop()))
}

/// Polls multishot entry `id`: `Some((res, last))` or `None` if pending.
/// The last completion hands the data back; it is dropped here.
fn next(table: &mut Table, id: OpId) -> Option<(i32, bool)> {
    match table.poll_multishot(id, &mut Context::from_waker(Waker::noop())) {
        Poll::Ready((res, data)) => Some((raw(&res), data.is_some())),
        Poll::Pending => None,
    }
}

/// A driver over the fake backend, and the kernel the test plays.
fn fake_driver() -> (Driver, Rc<RefCell<Kernel>>) {
    fake::driver(Kind::IoUring, Caps::NONE)
}

/// Entries in the driver's table.
fn live(driver: &Driver) -> usize {
    driver.inner.borrow().table.live()
}

mod driver;
mod multishot;
mod single;
