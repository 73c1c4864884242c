//! The crate's one classifier of errors that mean "try again", and the one
//! `WriteZero` error.
//!
//! Sites that act on a narrower set than [`is_retry`] (the epoll loop retries
//! only `EINTR` at once because `EAGAIN` already became a readiness wait;
//! `io_uring_enter` also treats `ETIME`/`EBUSY` as a normal return) say so
//! where they call [`retry_of_errno`] or match.

use std::io;

/// What a failed attempt means for whoever made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Interrupted by a signal (`EINTR`): issue it again at once.
    Now,
    /// The fd is not ready (`EAGAIN`/`EWOULDBLOCK`): issue it again once it is.
    WhenReady,
    /// Anything else: report it.
    No,
}

/// The class of a raw `errno` value (positive, as `errno` itself).
pub(crate) fn retry_of_errno(errno: i32) -> Retry {
    match errno {
        libc::EINTR => Retry::Now,
        libc::EAGAIN => Retry::WhenReady,
        _ => Retry::No,
    }
}

/// The class of an `io::Error` (by kind, so errors built from a kind
/// classify like the raw errno they stand for).
pub(crate) fn retry_of(e: &io::Error) -> Retry {
    match e.kind() {
        io::ErrorKind::Interrupted => Retry::Now,
        io::ErrorKind::WouldBlock => Retry::WhenReady,
        _ => Retry::No,
    }
}

/// Whether the same operation should simply be issued again. Operations
/// wait for readiness themselves, so a `WouldBlock` that reaches a caller is
/// retried like an interruption.
pub(crate) fn is_retry(e: &io::Error) -> bool {
    retry_of(e) != Retry::No
}

/// The error of a write or send that accepted 0 of the `total - written`
/// bytes it was given.
pub(crate) fn write_zero(written: usize, total: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::WriteZero,
        format!("the sink accepted 0 bytes after {written} of {total}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// EINTR and EAGAIN retry (the first at once), nothing else does, and
    /// an errno and the `io::Error` made from it classify alike.
    #[test]
    fn classes() {
        for (errno, class) in [
            (libc::EINTR, Retry::Now),
            (libc::EAGAIN, Retry::WhenReady),
            (libc::ECONNRESET, Retry::No),
            (libc::ECANCELED, Retry::No),
        ] {
            assert_eq!(retry_of_errno(errno), class, "errno {errno}");
            let e = io::Error::from_raw_os_error(errno);
            assert_eq!(retry_of(&e), class, "{e}");
            assert_eq!(is_retry(&e), class != Retry::No, "{e}");
        }
    }
}
