//! The leader/waiter protocol of the shared multishot accept, without a
//! kernel: the fake backend plays io_uring with multishot accept, and each
//! "connection" it completes is the write end of a pipe, so the test can see
//! whether the protocol closed it (its read end then reads end of file).

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::{Accepts, accept};
use crate::driver::fake::{self, Count, Kernel, MORE, counting};
use crate::driver::{Cap, Caps, Driver, Kind, SharedFd};
use crate::rt::context::{self, EnterGuard, Handle};

/// A pending `accept` call.
type Call<'a> = Pin<Box<dyn Future<Output = io::Result<(OwnedFd, Option<super::RawAddr>)>> + 'a>>;

/// The driver over the fake, entered on this thread, and a listener.
struct Harness {
    /// The runtime's driver.
    driver: Rc<Driver>,
    /// The kernel the test plays.
    kernel: Rc<RefCell<Kernel>>,
    /// The "listening socket" (a pipe end the fake never touches).
    listener: SharedFd,
    /// Keeps the driver current.
    _entered: EnterGuard,
}

/// A new harness: io_uring with multishot accept, as far as `net` can tell.
fn harness() -> Harness {
    let caps = Caps::NONE.with(Cap::MultishotAccept, true);
    let (driver, kernel) = fake::driver(Kind::IoUring, caps);
    let driver = Rc::new(driver);
    let handle = Handle {
        driver: driver.clone(),
        sched: None,
    };
    let (listener, _) = pipe();
    Harness {
        driver,
        kernel,
        listener: SharedFd::new(listener),
        _entered: context::enter(handle),
    }
}

/// A pipe: (read end, write end), both non-blocking.
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is room for the two fds pipe2 writes.
    let ret = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
    assert_eq!(ret, 0, "pipe2: {}", io::Error::last_os_error());
    // SAFETY: pipe2 succeeded: two new fds nobody else owns.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// A connection for the fake to complete: its raw fd (owned by whoever
/// the completion reaches from now on) and the end that sees it closed.
fn connection() -> (RawFd, OwnedFd) {
    let (read, write) = pipe();
    (write.into_raw_fd(), read)
}

/// Whether the connection watched by `read` was closed.
fn closed(read: &OwnedFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: one byte of valid memory.
    let n = unsafe { libc::read(read.as_raw_fd(), (&raw mut byte).cast(), 1) };
    n == 0
}

impl Harness {
    /// An `accept` call on the listener.
    fn call<'a>(&'a self, accepts: &'a Accepts) -> Call<'a> {
        Box::pin(accept(&self.listener, accepts))
    }

    /// The kernel queues a completion of the armed accept with `res`
    /// (`flags`); the driver's next turn takes it.
    fn queue(&self, res: i32, flags: u32) {
        let id = *self.kernel.borrow().submitted.last().expect("armed");
        self.kernel.borrow_mut().complete(id, res, flags);
    }

    /// [`Harness::queue`], then a turn of the driver.
    fn complete(&self, res: i32, flags: u32) {
        self.queue(res, flags);
        self.driver.turn(false, None).expect("turn");
    }

    /// Multishot accepts submitted so far.
    fn armed(&self) -> usize {
        self.kernel.borrow().submitted.len()
    }
}

/// Polls `call` with `waker`: the accepted fd, an error, or `None` if pending.
fn poll(call: &mut Call<'_>, waker: &Waker) -> Option<io::Result<RawFd>> {
    match call.as_mut().poll(&mut Context::from_waker(waker)) {
        Poll::Ready(res) => Some(res.map(|(fd, _)| fd.into_raw_fd())),
        Poll::Pending => None,
    }
}

/// Closes a connection the test took.
fn close(fd: RawFd) {
    // SAFETY: an fd an accept handed to the test, which owns it.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
}

/// A call pending with a counting waker.
struct Pending<'a> {
    /// The call.
    call: Call<'a>,
    /// Its waker.
    waker: Waker,
    /// Its wakes.
    count: std::sync::Arc<Count>,
}

impl<'a> Pending<'a> {
    /// Starts an `accept` call and polls it once: it must wait.
    fn start(h: &'a Harness, accepts: &'a Accepts) -> Pending<'a> {
        let (waker, count) = counting();
        let mut pending = Pending {
            call: h.call(accepts),
            waker,
            count,
        };
        assert!(pending.poll().is_none(), "accepted with nothing completed");
        pending
    }

    /// Polls the call again.
    fn poll(&mut self) -> Option<io::Result<RawFd>> {
        poll(&mut self.call, &self.waker)
    }

    /// Wakes so far.
    fn wakes(&self) -> usize {
        self.count.wakes()
    }
}

/// One call arms one multishot accept; the completion wakes it and it
/// returns the connection; the next call reuses the armed operation.
#[test]
fn one_call_arms_one_multishot_accept_and_takes_its_connection() {
    let (h, accepts) = (harness(), Accepts::default());
    let mut a = Pending::start(&h, &accepts);
    assert_eq!(h.armed(), 1);
    let (fd, _read) = connection();
    h.complete(fd, MORE);
    assert_eq!(a.wakes(), 1, "the leader was not woken");
    assert_eq!(a.poll().expect("ready").expect("connection"), fd);
    close(fd);
    let _b = Pending::start(&h, &accepts);
    assert_eq!(h.armed(), 1, "armed again while armed");
}

/// Two waiters, two connections in one turn: the table wakes only the
/// leader (the last to poll); it takes the oldest and wakes the other for
/// the second.
#[test]
fn the_leader_takes_the_oldest_and_wakes_a_waiter_for_the_next() {
    let (h, accepts) = (harness(), Accepts::default());
    let mut a = Pending::start(&h, &accepts);
    let mut b = Pending::start(&h, &accepts);
    let ((first, _r1), (second, _r2)) = (connection(), connection());
    h.queue(first, MORE);
    h.complete(second, MORE);
    assert_eq!((a.wakes(), b.wakes()), (0, 1), "b polled last: b leads");
    assert_eq!(b.poll().expect("ready").expect("connection"), first);
    assert_eq!(a.wakes(), 1, "nobody woken for the second connection");
    assert_eq!(a.poll().expect("ready").expect("connection"), second);
    close(first);
    close(second);
}

/// The leader dropped while another call waits: the other is woken to
/// lead, and the operation stays armed.
#[test]
fn a_dropped_leader_hands_over_to_a_waiter() {
    let (h, accepts) = (harness(), Accepts::default());
    let mut a = Pending::start(&h, &accepts);
    let b = Pending::start(&h, &accepts);
    drop(b);
    assert_eq!(a.wakes(), 1, "nobody leads after the leader left");
    assert!(
        h.kernel.borrow().cancelled.is_empty(),
        "cancelled while a waits"
    );
    assert!(a.poll().is_none());
    let (fd, _read) = connection();
    h.complete(fd, MORE);
    assert_eq!(a.poll().expect("ready").expect("connection"), fd);
    close(fd);
}

/// The last waiter dropped while pending: the accept is cancelled, the
/// connection drained into `ready` for it is closed, and so is one the
/// kernel completes before it answers the cancel; the entry goes with the
/// answer. (A call that returned leaves the accept armed.)
#[test]
fn dropping_the_last_waiter_cancels_and_closes_what_nobody_took() {
    let (h, accepts) = (harness(), Accepts::default());
    h.kernel.borrow_mut().answer_cancels = false;
    let a = Pending::start(&h, &accepts);
    let mut b = Pending::start(&h, &accepts);
    let ((first, _r1), (second, r2), (late, r3)) = (connection(), connection(), connection());
    h.queue(first, MORE);
    h.complete(second, MORE);
    assert_eq!(b.poll().expect("ready").expect("connection"), first);
    close(first);
    assert!(
        h.kernel.borrow().cancelled.is_empty(),
        "cancelled after a return"
    );
    assert!(!closed(&r2));
    drop(a);
    let id = h.kernel.borrow().submitted[0];
    assert_eq!(h.kernel.borrow().cancelled, [id]);
    assert!(closed(&r2), "a connection drained for nobody stayed open");
    h.complete(late, MORE);
    assert!(
        closed(&r3),
        "a connection completed after the drop stayed open"
    );
    h.complete(-libc::ECANCELED, 0);
    let driver = format!("{:?}", h.driver);
    assert!(
        driver.contains("in_flight: 0"),
        "still in the table: {driver}"
    );
}

/// A retryable end (the cap's cancel) re-arms at the next poll; a fatal
/// error is returned to the caller.
#[test]
fn a_retryable_end_rearms_and_a_fatal_error_is_returned() {
    let (h, accepts) = (harness(), Accepts::default());
    let mut a = Pending::start(&h, &accepts);
    h.complete(-libc::ECANCELED, 0);
    assert_eq!(a.wakes(), 1);
    assert!(a.poll().is_none(), "a retryable end reached the caller");
    assert_eq!(h.armed(), 2, "not armed again");
    h.complete(-libc::EMFILE, 0);
    let e = a.poll().expect("ready").expect_err("the error");
    assert_eq!(e.raw_os_error(), Some(libc::EMFILE));
}
