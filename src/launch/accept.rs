//! The accept loop: accepts until shutdown begins, waits while its owner
//! has no room, backs off while the process is out of fds, and closes the
//! listener (its accept cancelled and reaped) before it returns.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use super::shutdown::ShutdownToken;
use super::stats::Counters;
use crate::net::{TcpListener, TcpStream};
use crate::time::sleep;

/// What a failed accept means for the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AcceptError {
    /// Out of fds or kernel memory (`EMFILE`, `ENFILE`, `ENOBUFS`,
    /// `ENOMEM`): the connection waits in the backlog; back off, try again.
    Resource,
    /// That one connection failed (reset, aborted, refused by a filter):
    /// accept the next one at once.
    Connection,
    /// The listener itself is broken: stop.
    Fatal,
}

/// Classifies an accept error.
pub(crate) fn classify(e: &io::Error) -> AcceptError {
    match e.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => AcceptError::Resource,
        Some(
            libc::ECONNABORTED
            | libc::ECONNRESET
            | libc::EPROTO
            | libc::EPERM
            | libc::EINTR
            | libc::EAGAIN
            | libc::ETIMEDOUT
            | libc::ENETDOWN
            | libc::ENETUNREACH
            | libc::EHOSTUNREACH
            | libc::EHOSTDOWN
            | libc::ENONET
            | libc::ENOPROTOOPT
            | libc::EOPNOTSUPP,
        ) => AcceptError::Connection,
        _ => AcceptError::Fatal,
    }
}

/// Exponential backoff between accepts while out of resources.
#[derive(Debug)]
pub(crate) struct Backoff {
    /// The next pause; `FIRST <= next <= LAST`.
    next: Duration,
}

impl Backoff {
    /// The first pause.
    const FIRST: Duration = Duration::from_millis(2);
    /// The longest pause.
    const LAST: Duration = Duration::from_millis(250);

    /// A backoff at its first pause.
    pub(crate) fn new() -> Backoff {
        Backoff {
            next: Backoff::FIRST,
        }
    }

    /// The pause to take now; doubles the next one, up to the longest.
    pub(crate) fn pause(&mut self) -> Duration {
        let now = self.next;
        self.next = (now * 2).min(Backoff::LAST);
        now
    }

    /// Back to the first pause (after a success).
    pub(crate) fn reset(&mut self) {
        self.next = Backoff::FIRST;
    }
}

/// Accepts from `listener` until `shutdown` begins, handing each
/// connection to `admit`; before each accept, waits for `room()`. Returns
/// after closing the listener; `Err` on an error that breaks the listener.
pub(crate) async fn accept_loop<R, Fut>(
    listener: TcpListener,
    shutdown: &ShutdownToken,
    counters: &Counters,
    room: R,
    mut admit: impl FnMut(TcpStream, SocketAddr),
) -> io::Result<()>
where
    R: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut backoff = Backoff::new();
    let res = loop {
        if shutdown.run_until_begun(room()).await.is_none() {
            break Ok(());
        }
        let accepted = match shutdown.run_until_begun(listener.accept()).await {
            None => break Ok(()),
            Some(accepted) => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff.reset();
                counters.add_accepted();
                admit(stream, peer);
            }
            Err(e) => match classify(&e) {
                AcceptError::Connection => {}
                AcceptError::Fatal => break Err(e),
                AcceptError::Resource => {
                    counters.add_resource_wait();
                    let pause = sleep(backoff.pause());
                    if shutdown.run_until_begun(pause).await.is_none() {
                        break Ok(());
                    }
                }
            },
        }
    };
    // Closing waits until the kernel returned the cancelled accept: once
    // this returns, the port is free for a new process to bind.
    let closed = listener.close().await;
    res.and(closed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Out-of-fd errors back off, a reset connection does not stop the
    /// loop, a broken listener does.
    #[test]
    fn errors_are_classified() {
        let err = io::Error::from_raw_os_error;
        assert_eq!(classify(&err(libc::EMFILE)), AcceptError::Resource);
        assert_eq!(classify(&err(libc::ENFILE)), AcceptError::Resource);
        assert_eq!(classify(&err(libc::ECONNABORTED)), AcceptError::Connection);
        assert_eq!(classify(&err(libc::EBADF)), AcceptError::Fatal);
        assert_eq!(classify(&err(libc::EINVAL)), AcceptError::Fatal);
    }

    /// Pauses double up to the longest and start over after a reset.
    #[test]
    fn backoff_doubles_to_a_cap_and_resets() {
        let mut b = Backoff::new();
        let pauses: Vec<_> = (0..10).map(|_| b.pause()).collect();
        assert_eq!(pauses[0], Backoff::FIRST);
        assert_eq!(pauses[1], Backoff::FIRST * 2);
        assert_eq!(*pauses.last().unwrap(), Backoff::LAST);
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]));
        b.reset();
        assert_eq!(b.pause(), Backoff::FIRST);
    }
}
