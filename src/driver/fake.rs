//! An in-memory backend for unit tests: no kernel, no fds.
//!
//! [`Fake`] records what the driver asks of it (reservations, submissions,
//! cancels) in a [`Kernel`] the test keeps a handle to, and completes table
//! entries only when the test says so: the test plays the kernel. Queued
//! completions are delivered, in order, by the driver's next `turn`, as
//! io_uring delivers its completion queue.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Wake, Waker};
use std::time::Duration;

use super::table::{OpId, Table};
use super::{Backend, Caps, CqeResult, Driver, Kind, PoolConfig};

/// `IORING_CQE_F_MORE` (include/uapi/linux/io_uring.h): more completions
/// follow for a multishot entry.
pub(crate) const MORE: u32 = 1 << 1;

/// The kernel as the test plays it; shared by the test and the [`Fake`].
#[derive(Debug, Default)]
pub(crate) struct Kernel {
    /// Entries submitted, in order.
    pub(crate) submitted: Vec<OpId>,
    /// Entries the driver asked to cancel, in order (repeats included).
    pub(crate) cancelled: Vec<OpId>,
    /// Completions the next turn delivers, oldest first: `(id, res, flags)`.
    pending: VecDeque<(OpId, i32, u32)>,
    /// The next `reserve` fails with this errno (once).
    pub(crate) refuse: Option<i32>,
    /// Each cancel queues an `-ECANCELED` completion, as the kernel answers
    /// a cancel of an operation it still holds; off: cancels go unanswered.
    pub(crate) answer_cancels: bool,
    /// Turns taken so far.
    pub(crate) turns: usize,
}

impl Kernel {
    /// Queues a completion of `id` with `res` (`>= 0` or `-errno`) and
    /// `flags`; the driver's next turn delivers it.
    pub(crate) fn complete(&mut self, id: OpId, res: i32, flags: u32) {
        self.pending.push_back((id, res, flags));
    }

    /// Completions queued and not yet delivered.
    pub(crate) fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// The fake backend; see the module docs.
#[derive(Debug)]
pub(crate) struct Fake {
    /// What the test scripted and what was seen.
    kernel: Rc<RefCell<Kernel>>,
    /// What `kind` answers.
    kind: Kind,
    /// What `caps` answers.
    caps: Caps,
}

impl Fake {
    /// A fake that calls itself `kind` with `caps`, and the handle through
    /// which the test plays the kernel. Cancels are answered by default.
    pub(crate) fn new(kind: Kind, caps: Caps) -> (Fake, Rc<RefCell<Kernel>>) {
        let kernel = Rc::new(RefCell::new(Kernel {
            answer_cancels: true,
            ..Kernel::default()
        }));
        let fake = Fake {
            kernel: kernel.clone(),
            kind,
            caps,
        };
        (fake, kernel)
    }
}

/// A driver over a fake that calls itself `kind` with `caps`, and the
/// handle through which the test plays the kernel.
pub(crate) fn driver(kind: Kind, caps: Caps) -> (Driver, Rc<RefCell<Kernel>>) {
    let (fake, kernel) = Fake::new(kind, caps);
    let driver = Driver::with_backend(Box::new(fake), PoolConfig::default(), Caps::NONE);
    (driver, kernel)
}

/// A waker that counts its wakes (see [`counting`]).
#[derive(Debug, Default)]
pub(crate) struct Count(AtomicUsize);

impl Count {
    /// Wakes so far.
    pub(crate) fn wakes(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// A waker that counts its wakes, and its counter.
pub(crate) fn counting() -> (Waker, Arc<Count>) {
    let count = Arc::new(Count::default());
    (Waker::from(count.clone()), count)
}

impl Backend for Fake {
    fn kind(&self) -> Kind {
        self.kind
    }
    fn caps(&self) -> Caps {
        self.caps
    }
    fn reserve(&mut self, _table: &mut Table) -> io::Result<()> {
        match self.kernel.borrow_mut().refuse.take() {
            Some(errno) => Err(io::Error::from_raw_os_error(errno)),
            None => Ok(()),
        }
    }
    fn submit(&mut self, table: &mut Table, id: OpId) {
        assert!(table.data_mut(id).is_some(), "submit of an unknown entry");
        self.kernel.borrow_mut().submitted.push(id);
    }
    fn cancel(&mut self, _table: &mut Table, id: OpId) {
        let mut kernel = self.kernel.borrow_mut();
        kernel.cancelled.push(id);
        if kernel.answer_cancels {
            kernel.complete(id, -libc::ECANCELED, 0);
        }
    }
    fn turn(&mut self, table: &mut Table, wait: bool, timeout: Option<Duration>) -> io::Result<()> {
        self.kernel.borrow_mut().turns += 1;
        let ready: Vec<_> = self.kernel.borrow_mut().pending.drain(..).collect();
        if ready.is_empty() && wait {
            // Nothing will ever arrive: block as the kernel would, up to the timeout.
            std::thread::sleep(timeout.unwrap_or(Duration::from_millis(10)));
        }
        for (id, res, flags) in ready {
            if table.complete(id, CqeResult::new(res, flags)) {
                // The queue of a multishot entry reached its cap.
                self.cancel(table, id);
            }
        }
        Ok(())
    }
    fn busy(&self) -> bool {
        false
    }
    fn stop_wake(&mut self) {}
    fn completion_fd(&mut self) -> io::Result<RawFd> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}
