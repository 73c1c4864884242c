//! Hosted on tokio: this crate's streams inside a tokio application
//! (feature `hosted`).
//!
//! The same sources and buffered types ([`TcpListener`](crate::net::TcpListener),
//! [`TcpStream`](crate::net::TcpStream), [`File`](crate::fs::File),
//! [`BufReader`](crate::io::BufReader), [`BufWriter`](crate::io::BufWriter),
//! [`BufStream`](crate::io::BufStream), ...) run in tasks spawned with
//! `tokio::task::spawn_local`, next to `tokio::time`, `tokio::sync`,
//! `tokio::select!`, `tokio::net` and any crate written against tokio's IO
//! traits. The ring (or the epoll backend, where io_uring is refused or
//! `URING_BUFIO_DRIVER=epoll`) is driven by tokio's reactor: its completion
//! fd (an eventfd registered with the ring, or the epoll fd) is watched
//! through `tokio::io::unix::AsyncFd` by a driver task on the same
//! `LocalSet`.
//!
//! # What tokio must provide
//!
//! * A **current-thread** runtime (`Builder::new_current_thread`) with
//!   **IO enabled** (`enable_io` or `enable_all`; registering the
//!   completion fd panics otherwise, as tokio's own sockets do).
//! * A [`LocalSet`] driven on that thread (`LocalSet::block_on`,
//!   `run_until`): our types are `!Send` (one ring per thread), so they
//!   live in `spawn_local` tasks, never in `tokio::spawn` ones.
//! * Nothing else: no per-tick hook. Submissions are batched without one
//!   (see below), and timers are tokio's own if its `time` feature is on
//!   ([`crate::time`] works too, on the ring).
//!
//! A multi-thread runtime's workers are not supported: tasks move between
//! threads there, and a ring belongs to one. For many cores, run one
//! current-thread runtime per core ([`crate::launch`]).
//!
//! # Entry points
//!
//! * [`start`]: builds the runtime and the `LocalSet`, runs a future, and
//!   tears everything down in the safe order. As simple as
//!   [`Runtime::block_on`](crate::Runtime::block_on).
//! * [`attach`] (or [`Builder::attach`](crate::Builder::attach) with
//!   settings): attaches to a runtime and `LocalSet` the caller built, and
//!   returns a [`Host`] that keeps this crate's driver current on the thread.
//!
//! ```
//! use uring_bufio::io::{BufReader, BufWriter};
//! use uring_bufio::net::{TcpListener, TcpStream};
//!
//! let reply = uring_bufio::hosted::start(async {
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?;
//!     let server = tokio::task::spawn_local(async move {
//!         let (socket, _) = listener.accept().await?;
//!         let (r, w) = socket.into_split();
//!         let (mut r, mut w) = (BufReader::new(r), BufWriter::new(w));
//!         while let Some(line) = r.next_line().await? {
//!             w.write_all(&line.to_ascii_uppercase()).await?;
//!             w.write_all(b"\n").await?;
//!             w.flush().await?;
//!         }
//!         w.shutdown().await
//!     });
//!     let (r, w) = TcpStream::connect(addr).await?.into_split();
//!     let (mut r, mut w) = (BufReader::new(r), BufWriter::new(w));
//!     w.write_all(b"hello\n").await?;
//!     w.flush().await?;
//!     let reply = r.next_line().await?.map(<[u8]>::to_vec);
//!     w.shutdown().await?;
//!     server.await.map_err(std::io::Error::other)??;
//!     Ok::<_, std::io::Error>(reply)
//! })??;
//! assert_eq!(reply.as_deref(), Some(&b"HELLO"[..]));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # How it is driven
//!
//! Operations queue their submission entries; the first entry queued after
//! a flush wakes the driver task, which tokio runs before the thread parks
//! (a woken task of a `LocalSet` always does), after the tasks woken before
//! it: one `io_uring_enter` submits the batch of a tick and reaps what
//! completed. Completions make the eventfd readable, tokio's reactor wakes
//! the driver task, and it wakes the tasks whose operations completed.
//! `docs/hosted.md` has the system-call counts.
//!
//! Collecting a completed operation spends a unit of the task's tokio
//! budget (`tokio::task::coop`), so a loop over always-ready IO yields to
//! tokio's reactor and timers as tokio's own IO does.
//!
//! # Guarantees
//!
//! As on our runtime: a future dropped at any await (by
//! `tokio::time::timeout`, `select!`, an aborted task) loses no bytes and
//! leaks nothing; memory the kernel may write belongs to the driver's
//! in-flight table until the kernel is done with it. When the runtime and
//! the `LocalSet` are dropped with operations in flight, the tasks release
//! them, and the last holder of the driver (the [`Host`], or the last task)
//! cancels what is left, waits for the kernel (at most 5 s, normally
//! microseconds) and frees it, or leaks it if the kernel never answers.

use std::future::Future;
use std::io;
use std::rc::Rc;

use tokio::task::LocalSet;

use crate::Builder;
use crate::driver::eventfd::EventFd;
use crate::driver::{Cap, Driver, DriverTask, Kind, PoolStats, SHUTDOWN_LIMIT};
use crate::rt::context::{self, EnterGuard};

/// Runs `future` to completion inside a new tokio current-thread runtime
/// (`enable_all`) and `LocalSet`, with this crate's driver attached. Tasks
/// it spawns with `tokio::task::spawn_local` (or [`crate::spawn`]) run
/// until it returns; then the `LocalSet` and the runtime are dropped and
/// the driver is shut down.
///
/// # Errors
/// If tokio's runtime or the driver cannot be built (a uring-bufio runtime
/// is already current on this thread, io_uring forced but refused, ...).
///
/// # Panics
/// If `future` panics.
pub fn start<F: Future>(future: F) -> io::Result<F::Output> {
    Builder::default().start(future)
}

/// Attaches a driver with default settings to the tokio runtime current
/// on this thread and to `local`; see [`Builder::attach`].
pub fn attach(local: &LocalSet) -> io::Result<Host> {
    Builder::default().attach(local)
}

impl Builder {
    /// Builds a driver with these settings and attaches it to the tokio
    /// runtime current on this thread (call it inside `Runtime::enter` or
    /// a `block_on`) and to `local`, on which it spawns its driver task.
    /// The driver is current on this thread until the returned [`Host`]
    /// drops; drive `local` on this thread.
    ///
    /// ```
    /// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// let local = tokio::task::LocalSet::new();
    /// let host = {
    ///     let _rt = rt.enter();
    ///     uring_bufio::Runtime::builder().entries(64).attach(&local)?
    /// };
    /// let n = local.block_on(&rt, async {
    ///     let (a, b) = uring_bufio::net::UnixStream::pair()?;
    ///     let mut w = uring_bufio::io::BufWriter::new(a);
    ///     w.write_all(b"hi").await?;
    ///     w.shutdown().await?;
    ///     let mut r = uring_bufio::io::BufReader::new(b);
    ///     Ok::<_, std::io::Error>(r.fill_at_least(2).await?.len())
    /// })?;
    /// assert_eq!(n, 2);
    /// drop(local);
    /// assert_eq!(host.shutdown(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    /// If no tokio runtime is current, a uring-bufio runtime already is, or
    /// the driver cannot start.
    ///
    /// # Panics
    /// If the tokio runtime has IO disabled.
    pub fn attach(&self, local: &LocalSet) -> io::Result<Host> {
        if context::current_driver().is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a uring-bufio runtime is already current on this thread",
            ));
        }
        let wake = EventFd::new()?;
        let mut driver = self.driver_for(std::os::fd::AsRawFd::as_raw_fd(&wake), true)?;
        driver.own_wake_fd(wake);
        let driver = Rc::new(driver);
        let task = DriverTask::new(driver.clone())?;
        local.spawn_local(task);
        let enter = context::enter(context::Handle {
            driver: driver.clone(),
            sched: None,
        });
        Ok(Host {
            _enter: enter,
            driver,
        })
    }

    /// [`start`] with these settings.
    ///
    /// # Errors
    /// As [`start`].
    pub fn start<F: Future>(&self, future: F) -> io::Result<F::Output> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let local = LocalSet::new();
        let host = {
            let _rt = rt.enter();
            self.attach(&local)?
        };
        let out = local.block_on(&rt, future);
        // Tasks first (they release their operations), then the reactor,
        // then the driver: cancel, wait for the kernel, free.
        drop(local);
        drop(rt);
        let leaked = host.shutdown();
        if leaked > 0 {
            eprintln!(
                "uring-bufio: {leaked} operations did not complete within {SHUTDOWN_LIMIT:?} of \
                 shutdown; their memory is leaked rather than freed while the kernel may use it"
            );
        }
        Ok(out)
    }
}

/// This crate's driver attached to a tokio runtime and `LocalSet` (see
/// [`attach`]). While it lives, the driver is current on the thread that
/// attached it: sources, buffered streams and [`crate::time`] work in the
/// `LocalSet`'s tasks there.
///
/// Dropping it only makes the driver no longer current (new operations
/// then fail with an error); the driver itself ends with its last holder,
/// usually the last task the `LocalSet` drops: it cancels what is still in
/// flight, waits for the kernel and frees it. [`Host::shutdown`] ends it
/// at once and says whether anything had to be leaked.
#[derive(Debug)]
pub struct Host {
    /// Keeps the driver current on this thread; restores what was before.
    _enter: EnterGuard,
    /// The driver.
    driver: Rc<Driver>,
}

impl Host {
    /// Which kernel interface the driver uses.
    pub fn driver(&self) -> Kind {
        self.driver.kind()
    }

    /// Whether the driver's kernel interface has `capability`.
    pub fn has(&self, capability: Cap) -> bool {
        self.driver.has(capability)
    }

    /// Operations the kernel may still touch or whose result was not
    /// collected (including those released by dropped futures whose
    /// completion has not arrived yet).
    pub fn in_flight(&self) -> usize {
        self.driver.live()
    }

    /// Counters of the receive buffer pool, if it was built.
    pub fn pool_stats(&self) -> Option<PoolStats> {
        self.driver.pool_stats()
    }

    /// Ends the driver now: stops its driver task, cancels every operation
    /// in flight and waits (at most 5 s) for the kernel to give them back.
    /// Returns how many it had to leak (never free) because the kernel kept
    /// them; 0 normally. Call it after the tasks that use the driver ended
    /// or were dropped (drop the `LocalSet` first): their operations are
    /// cancelled.
    pub fn shutdown(self) -> usize {
        self.driver.shutdown(SHUTDOWN_LIMIT)
    }
}
