//! The one owner of an eventfd: creation, the 8-byte write that wakes a
//! sleeper and the read that resets the counter.
//!
//! The runtime's wake-up fd (written by wakers on other threads, watched by
//! the backend) and io_uring's completion-notification fd are both this type.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A non-blocking, close-on-exec eventfd, closed on drop.
#[derive(Debug)]
pub(crate) struct EventFd {
    /// The fd; valid (and owned here) for the value's whole life.
    fd: OwnedFd,
}

impl EventFd {
    /// Creates an eventfd with counter 0.
    pub(crate) fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes no pointers; the result is checked.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(EventFd { fd })
    }

    /// Adds 1 to the counter, making the fd readable. A full counter
    /// (`EAGAIN`) is already readable, so the result is ignored.
    pub(crate) fn write(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an fd this value owns.
        let _ = unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Resets the counter (it may already be zero).
    pub(crate) fn drain(&self) {
        drain(self.fd.as_raw_fd());
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Resets the counter of an eventfd or timerfd `fd` (non-blocking; it may be
/// zero). For fds this crate holds only as `RawFd` (the wake-up fd the
/// runtime owns, a backend's timerfd).
pub(crate) fn drain(fd: RawFd) {
    let mut buf = [0u8; 8];
    // SAFETY: `buf` is a valid 8-byte buffer for the duration of the call.
    let _ = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Readable after `write`, not after `drain`: the two halves of a wake.
    #[test]
    fn write_then_drain() {
        let e = EventFd::new().unwrap();
        let readable = |e: &EventFd| {
            let mut p = libc::pollfd {
                fd: e.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: `p` is one valid pollfd for the call.
            unsafe { libc::poll(&mut p, 1, 0) == 1 }
        };
        assert!(!readable(&e));
        e.write();
        e.write();
        assert!(readable(&e));
        e.drain();
        assert!(!readable(&e));
    }
}
