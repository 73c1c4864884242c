//! The edge-triggered registration against the kernel: reports that came
//! while nobody waited, and fd numbers closed and reused.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::BytesMut;

use super::super::eventfd::EventFd;
use super::super::{Caps, Config, CqeResult, Driver, Kind, OpId, SharedFd};
use crate::op::Recv;

/// A driver on the epoll backend (and the wake-up eventfd it watches).
fn epoll_driver() -> (Driver, EventFd) {
    let wake = EventFd::new().expect("eventfd");
    let config = Config {
        kind: Some(Kind::Epoll),
        entries: 8,
        ..Config::default()
    };
    let driver = Driver::start(&config, wake.as_raw_fd(), Caps::NONE).expect("driver");
    (driver, wake)
}

/// Submits a receive; `first`: one that waits for readiness before it
/// tries (as a reader does after draining the socket).
fn receive(driver: &Driver, fd: &SharedFd, first: bool) -> OpId {
    let buf = BytesMut::with_capacity(16);
    let op = if first {
        Recv::poll_first(fd.clone(), buf)
    } else {
        Recv::new(fd.clone(), buf)
    };
    driver.submit(Box::new(op), false).expect("submit")
}

/// The receive's result, if it finished.
fn result(driver: &Driver, id: OpId) -> Option<usize> {
    match driver.poll_op(id, &mut Context::from_waker(Waker::noop())) {
        Poll::Ready((_, CqeResult { result, .. })) => Some(result.expect("receive") as usize),
        Poll::Pending => None,
    }
}

/// One turn that waits (the events it waits for are already there).
fn turn(driver: &Driver) {
    driver
        .turn(true, Some(Duration::from_millis(200)))
        .expect("turn");
}

/// Bytes arrive after a receive took what there was, and their report is
/// taken in by a turn while no receive waits (the reader is busy). The
/// next receive, which waits before trying, must not wait for a report
/// the edge-triggered registration will not repeat: it receives at once.
#[test]
fn bytes_reported_while_nobody_waits_are_received_at_once() {
    let (driver, _wake) = epoll_driver();
    let (ours, mut peer) = UnixStream::pair().expect("pair");
    let fd = SharedFd::new(OwnedFd::from(ours));
    let id = receive(&driver, &fd, false);
    assert_eq!(result(&driver, id), None, "nothing to receive yet");
    peer.write_all(b"a").expect("write");
    turn(&driver);
    assert_eq!(result(&driver, id), Some(1));
    peer.write_all(b"bc").expect("write");
    turn(&driver);
    let id = receive(&driver, &fd, true);
    assert_eq!(result(&driver, id), Some(2), "received without a report");
}

/// A closed fd's number, given to a new socket, is registered again: the
/// kernel dropped the old registration with the old file.
#[test]
fn a_reused_fd_number_is_registered_again() {
    let (driver, _wake) = epoll_driver();
    let (ours, _peer) = UnixStream::pair().expect("pair");
    let fd = SharedFd::new(OwnedFd::from(ours));
    let number = fd.raw();
    let id = receive(&driver, &fd, false);
    assert_eq!(result(&driver, id), None);
    driver.release(id, true);
    turn(&driver);
    // The new pair first, so that it does not take the number itself.
    let (ours, mut peer) = UnixStream::pair().expect("pair");
    drop(fd);
    // SAFETY: `number` was closed above; dup2 makes it a copy of `ours`.
    let rc = unsafe { libc::dup2(ours.as_raw_fd(), number) };
    assert_eq!(rc, number, "dup2");
    drop(ours);
    // SAFETY: `number` is the open fd dup2 just made, owned only here.
    let fd = SharedFd::new(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(number) });
    let id = receive(&driver, &fd, false);
    assert_eq!(result(&driver, id), None);
    peer.write_all(b"xyz").expect("write");
    turn(&driver);
    assert_eq!(result(&driver, id), Some(3), "the new file was registered");
}

/// The peer sends its last bytes and closes; one report says both. The
/// receive woken by it takes the bytes; the next one, which waits before
/// trying, must find the end the registration will not report again.
#[test]
fn an_end_reported_with_the_last_bytes_is_received() {
    let (driver, _wake) = epoll_driver();
    let (ours, mut peer) = UnixStream::pair().expect("pair");
    let fd = SharedFd::new(OwnedFd::from(ours));
    let id = receive(&driver, &fd, false);
    assert_eq!(result(&driver, id), None, "nothing to receive yet");
    peer.write_all(b"last").expect("write");
    drop(peer);
    turn(&driver);
    assert_eq!(result(&driver, id), Some(4));
    let id = receive(&driver, &fd, true);
    assert_eq!(result(&driver, id), Some(0), "the end, without a report");
}
