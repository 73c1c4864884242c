//! Unix signals as futures on this crate's runtime (both backends), as
//! `tokio::signal` offers them: [`ctrl_c`], [`terminate`], and
//! [`Signals`] for a set of signals received again and again.
//!
//! The handler (installed with `signal-hook`) only writes the signal's
//! number to a socket pair, which a normal read on the runtime waits for:
//! the self-pipe trick, so nothing runs in signal context but one `send`.
//!
//! Note, as with `signal-hook`: once a handler for a signal was installed
//! the process no longer takes that signal's default action, also after
//! [`Signals`] is dropped (the signal is then ignored). A process that
//! stops handling SIGTERM should exit, as servers do after shutdown.
//!
//! ```no_run
//! uring_bufio::Runtime::new()?.block_on(async {
//!     uring_bufio::launch::signal::ctrl_c().await?;
//!     println!("interrupted");
//!     Ok::<(), std::io::Error>(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::BytesMut;
use signal_hook::SigId;

pub use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};

use super::ShutdownToken;
use crate::Builder;
use crate::net::UnixStream;

/// Waits for one SIGINT (ctrl-c). The handler is installed at the first
/// poll and removed when the future ends or is dropped.
pub async fn ctrl_c() -> io::Result<()> {
    Signals::new(&[SIGINT])?.recv().await.map(drop)
}

/// Waits for one SIGTERM (what `kill` and service managers send).
pub async fn terminate() -> io::Result<()> {
    Signals::new(&[SIGTERM])?.recv().await.map(drop)
}

/// Handlers for some signals, received in order. `Send`: install them on
/// one thread (early, so no signal finds the default action) and receive
/// on another; [`recv`](Signals::recv) runs on this crate's runtime.
#[derive(Debug)]
pub struct Signals {
    /// The installed handlers; removed on drop.
    ids: Vec<SigId>,
    /// The read end of the socket pair the handlers write signal numbers to.
    read: StdUnixStream,
    /// Signal numbers read and not yet returned, oldest first.
    pending: VecDeque<libc::c_int>,
}

impl Signals {
    /// Installs handlers for `signals` (for example `[SIGTERM, SIGINT]`).
    /// `InvalidInput` for a signal that cannot be handled (`SIGKILL`,
    /// `SIGSTOP`, `SIGSEGV`, ...).
    pub fn new(signals: &[libc::c_int]) -> io::Result<Signals> {
        let (read, write) = StdUnixStream::pair()?;
        write.set_nonblocking(true)?;
        let write = Arc::new(write);
        let mut this = Signals {
            ids: Vec::new(),
            read,
            pending: VecDeque::new(),
        };
        for &signal in signals {
            this.ids.push(install(signal, write.clone())?);
        }
        Ok(this)
    }

    /// The next signal received (its number). Must run on this crate's
    /// runtime. Signals that arrive while nobody waits are kept (up to the
    /// socket's buffer, some 200 KiB of them) for the next calls; a call
    /// dropped just as a signal arrived may lose that one.
    pub async fn recv(&mut self) -> io::Result<libc::c_int> {
        while self.pending.is_empty() {
            let ours = UnixStream::from_std(self.read.try_clone()?);
            let (n, buf) = ours.read(BytesMut::with_capacity(64)).await;
            if n? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.pending
                .extend(buf.iter().map(|&b| libc::c_int::from(b)));
        }
        Ok(self
            .pending
            .pop_front()
            .expect("loop ends with one pending"))
    }
}

/// Installs a handler that writes `signal` (one byte) to `write`.
fn install(signal: libc::c_int, write: Arc<StdUnixStream>) -> io::Result<SigId> {
    if signal_hook::consts::FORBIDDEN.contains(&signal) || !(1..=255).contains(&signal) {
        let msg = format!("signal {signal} cannot be handled");
        return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
    }
    let byte = [signal as u8];
    let action = move || {
        // SAFETY: `byte` is a live 1-byte buffer and the fd is kept open by
        // the `Arc` this action owns; send(2) is async-signal-safe, and
        // nothing here allocates or locks. A full buffer drops the byte
        // (MSG_DONTWAIT): the signal was already seen many times.
        unsafe {
            libc::send(
                write.as_raw_fd(),
                byte.as_ptr().cast(),
                1,
                libc::MSG_DONTWAIT,
            )
        };
    };
    // SAFETY: the action only calls send(2), which is async-signal-safe
    // (see above), and the signal is not a forbidden one (checked above).
    unsafe { signal_hook::low_level::register(signal, action) }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// Starts a thread (with a small runtime) that begins `shutdown` at the
/// first of `signals`, or ends once shutdown began otherwise.
pub(crate) fn watch(
    mut signals: Signals,
    shutdown: ShutdownToken,
    builder: &Builder,
) -> io::Result<JoinHandle<()>> {
    let mut builder = builder.clone();
    builder.entries(8);
    std::thread::Builder::new()
        .name("uring-signals".to_string())
        .spawn(move || {
            let rt = match builder.build() {
                Ok(rt) => rt,
                Err(e) => return eprintln!("uring-bufio: no signal watcher: {e}"),
            };
            let received = rt.block_on(shutdown.run_until_begun(signals.recv()));
            if let Some(received) = received {
                match received {
                    Ok(signal) => eprintln!("uring-bufio: signal {signal}: shutting down"),
                    Err(e) => eprintln!("uring-bufio: signal watcher failed ({e}): shutting down"),
                }
                shutdown.begin();
            }
        })
}
