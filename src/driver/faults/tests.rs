//! The decorator over the fake backend: what it refuses, fails and
//! shortens never reaches the inner backend in another form.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::super::fake::{Fake, Kernel};
use super::super::{Attempt, Caps, CqeResult, Driver, Kind, PoolConfig};
use super::{FaultPlan, Owned, stats, wrap};

/// A read of `len` bytes that remembers the limit it was given.
#[derive(Debug)]
struct Transfer {
    /// Bytes it asks for.
    len: usize,
    /// The last limit asked for (shared with the test).
    limited: Rc<Cell<Option<usize>>>,
}

impl Owned for Transfer {
    fn entry(&mut self) -> io_uring::squeue::Entry {
        io_uring::opcode::Nop::new().build()
    }
    fn attempt(&mut self) -> Attempt {
        Attempt::Done(0)
    }
    fn transfer_len(&self) -> Option<usize> {
        Some(self.len)
    }
    fn limit(&mut self, max: usize) -> bool {
        self.limited.set(Some(max));
        true
    }
    fn take_kernel_buffer(&mut self) -> Option<bytes::BytesMut> {
        None
    }
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
    fn discard(self: Box<Self>, _res: CqeResult) {}
    fn discard_one(&mut self, _res: CqeResult) {}
    fn queue_cap(&self) -> usize {
        usize::MAX
    }
    fn observe(&mut self, _res: &CqeResult) {}
}

/// A driver over the fake decorated with `plan`, the fake's kernel, and a
/// transfer of `len` bytes with its limit cell.
fn setup(plan: FaultPlan, len: usize) -> (Driver, Rc<RefCell<Kernel>>, Box<Transfer>) {
    let (fake, kernel) = Fake::new(Kind::IoUring, Caps::NONE);
    let driver = Driver::with_backend(wrap(Box::new(fake), Some(plan)), PoolConfig::default(), Caps::NONE);
    let limited = Rc::default();
    (driver, kernel, Box::new(Transfer { len, limited }))
}

/// Faults injected by `driver`'s decorator.
fn injected(driver: &Driver) -> super::FaultStats {
    stats(&*driver.inner.borrow().backend)
}

/// A refusal fails `submit` and the inner backend sees nothing.
#[test]
fn a_refused_operation_never_reaches_the_inner_backend() {
    let (driver, kernel, op) = setup(FaultPlan::new(1).submit_error(libc::ENOMEM, 1.0), 10);
    let Err((_, e)) = driver.submit(op, false) else {
        panic!("not refused")
    };
    assert_eq!(e.raw_os_error(), Some(libc::ENOMEM));
    assert!(kernel.borrow().submitted.is_empty());
    assert_eq!(injected(&driver).submit_errors, 1);
}

/// A failure completes the entry at once; the inner backend sees nothing.
#[test]
fn a_failed_operation_completes_without_reaching_the_inner_backend() {
    let (driver, kernel, op) = setup(FaultPlan::new(1).error(libc::ECONNRESET, 1.0), 10);
    let id = driver.submit(op, false).expect("submit");
    assert!(kernel.borrow().submitted.is_empty());
    let Poll::Ready((_, res)) = driver.poll_op(id, &mut Context::from_waker(Waker::noop()))
    else {
        panic!("the injected error did not complete the entry")
    };
    let e = res.result.expect_err("an error");
    assert_eq!(e.raw_os_error(), Some(libc::ECONNRESET));
    assert_eq!(injected(&driver).errors, 1);
}

/// A shortened transfer reaches the inner backend with its limit set.
#[test]
fn a_shortened_operation_reaches_the_inner_backend_limited() {
    let (driver, kernel, op) = setup(FaultPlan::new(1).max_io(3), 10);
    let limited = op.limited.clone();
    let id = driver.submit(op, false).expect("submit");
    assert_eq!(kernel.borrow().submitted, [id]);
    assert_eq!(limited.get(), Some(3));
    assert_eq!(injected(&driver).short, 1);
    // A limit the transfer is within leaves it alone.
    let (driver, kernel, op) = setup(FaultPlan::new(1).max_io(10), 10);
    let limited = op.limited.clone();
    driver.submit(op, false).expect("submit");
    assert_eq!((limited.get(), kernel.borrow().submitted.len()), (None, 1));
    assert_eq!(injected(&driver).short, 0);
}
