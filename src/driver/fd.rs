//! File descriptors shared by a source and the operations in flight on it.

use std::cell::Cell;
use std::os::fd::{IntoRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// An fd held by its source and by every operation in flight on it.
///
/// The fd is closed exactly once: when the last holder drops (so never while
/// the kernel still uses it), or handed to an async close by
/// [`SharedFd::poll_unique`] + [`SharedFd::into_raw`].
#[derive(Clone, Debug)]
pub struct SharedFd {
    /// The shared fd; `Rc` count = source + operations in flight.
    inner: Rc<Inner>,
}

/// The fd and the waker of a pending async close.
struct Inner {
    /// The descriptor; valid until `Inner` drops (closed then, unless taken).
    fd: RawFd,
    /// The fd was taken out by [`SharedFd::into_raw`]; drop must not close it.
    taken: Cell<bool>,
    /// Woken when the holder count falls to one (async close waits for it).
    close_waker: Cell<Option<Waker>>,
}

impl SharedFd {
    /// Takes ownership of `fd`.
    pub(crate) fn new(fd: OwnedFd) -> SharedFd {
        SharedFd {
            inner: Rc::new(Inner {
                fd: fd.into_raw_fd(),
                taken: Cell::new(false),
                close_waker: Cell::new(None),
            }),
        }
    }

    /// The raw fd, for building submission entries and plain syscalls.
    pub(crate) fn raw(&self) -> RawFd {
        self.inner.fd
    }

    /// Ready once no operation holds the fd any more.
    pub(crate) fn poll_unique(&self, cx: &mut Context<'_>) -> Poll<()> {
        if Rc::strong_count(&self.inner) == 1 {
            Poll::Ready(())
        } else {
            self.inner.close_waker.set(Some(cx.waker().clone()));
            Poll::Pending
        }
    }

    /// Takes the fd out without closing it; `None` while others hold it.
    pub(crate) fn into_raw(self) -> Option<RawFd> {
        if Rc::strong_count(&self.inner) != 1 {
            return None;
        }
        self.inner.taken.set(true);
        super::epoll::closing(self.inner.fd);
        Some(self.inner.fd)
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fd {}", self.fd)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.taken.get() {
            // The epoll backend registers an fd until it is closed.
            super::epoll::closing(self.fd);
            // SAFETY: `fd` is owned by this `Inner` (from an `OwnedFd`), no
            // operation holds it any more (they hold the `Rc`), and it was not
            // taken; this is the one place it is closed.
            unsafe { libc::close(self.fd) };
        }
    }
}

impl Drop for SharedFd {
    fn drop(&mut self) {
        // After this drop one holder is left: wake an async close waiting for it.
        if Rc::strong_count(&self.inner) == 2
            && let Some(w) = self.inner.close_waker.take()
        {
            w.wake();
        }
    }
}
