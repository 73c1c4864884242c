//! The executor: a single-threaded runtime that drives the ring.
//!
//! Each tick polls every task that was woken, then makes one trip to the
//! kernel that submits everything those polls queued and, when no task is
//! ready, waits for the next completion.

pub(crate) mod context;
mod sched;
mod task;
pub mod time;

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::pin;
use std::rc::Rc;
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::driver::eventfd::EventFd;
use crate::driver::{Cap, Caps, Config, Driver, Kind as DriverKind, PoolConfig, PoolStats};
use sched::{Alone, MAIN, Scheduler};

pub(crate) use task::spawn_lingering;
pub use task::{JoinError, JoinHandle, spawn};

/// A single-threaded io_uring runtime.
///
/// ```
/// let rt = uring_bufio::Runtime::new()?;
/// let n = rt.block_on(async {
///     let task = uring_bufio::spawn(async { 40 + 2 });
///     task.await.unwrap()
/// });
/// assert_eq!(n, 42);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Runtime {
    /// The kernel queue.
    driver: Rc<Driver>,
    /// The tasks.
    sched: Rc<Scheduler>,
    /// How long `block_on` keeps finishing background flushes of dropped
    /// writers after its future returned.
    linger: Duration,
}

/// Environment variable that forces a backend: `uring` or `epoll`.
pub const DRIVER_ENV: &str = "URING_BUFIO_DRIVER";

/// Settings for a [`Runtime`].
#[derive(Clone, Debug)]
pub struct Builder {
    /// Submission queue size.
    entries: u32,
    /// The backend chosen in code, if any.
    driver: Option<DriverKind>,
    /// Faults to inject (tests only).
    #[cfg(feature = "fault-injection")]
    faults: Option<crate::driver::faults::FaultPlan>,
    /// Background flush limit.
    linger: Duration,
    /// Receive buffer pool sizing.
    pool: PoolConfig,
    /// Smallest `write_bytes` sent zero-copy; `None`: never.
    zero_copy_threshold: Option<usize>,
}

/// The default of [`Builder::zero_copy_threshold`]: 16 KiB.
pub(crate) const DEFAULT_ZERO_COPY_THRESHOLD: usize = 16 * 1024;

impl Default for Builder {
    fn default() -> Builder {
        Builder {
            entries: 256,
            driver: None,
            #[cfg(feature = "fault-injection")]
            faults: None,
            linger: Duration::from_secs(10),
            pool: PoolConfig::default(),
            zero_copy_threshold: Some(DEFAULT_ZERO_COPY_THRESHOLD),
        }
    }
}

impl Builder {
    /// io_uring submission queue entries (default 256; the kernel rounds up
    /// to a power of two). A full queue is submitted and refilled, never
    /// dropped, so even 8 works for any number of operations. The epoll
    /// backend has no queue and ignores this.
    pub fn entries(&mut self, entries: u32) -> &mut Builder {
        self.entries = entries;
        self
    }

    /// How long [`Runtime::block_on`] keeps running, after its future
    /// finished, to complete the background flushes of `BufWriter`s dropped
    /// with unwritten data (default 10 s).
    pub fn linger(&mut self, limit: Duration) -> &mut Builder {
        self.linger = limit;
        self
    }

    /// Chooses the kernel interface. Without this call the environment
    /// variable `URING_BUFIO_DRIVER` (`uring` or `epoll`) decides, and
    /// without that io_uring is used where the kernel allows it and has the
    /// operations the crate needs, else epoll. Forcing io_uring where it is
    /// refused makes [`build`](Builder::build) fail with an error naming
    /// the cause (seccomp or `kernel.io_uring_disabled`, an old kernel, the
    /// memlock limit).
    pub fn driver(&mut self, driver: DriverKind) -> &mut Builder {
        self.driver = Some(driver);
        self
    }

    /// Sizes the runtime's receive buffer pool, which
    /// [`BufReader::pooled`](crate::io::BufReader::pooled) readers share.
    /// The pool is built when the first pooled reader reads, so a runtime
    /// without one allocates nothing. Default: [`PoolConfig::new`].
    pub fn pool(&mut self, config: PoolConfig) -> &mut Builder {
        self.pool = config;
        self
    }

    /// From what size [`BufWriter::write_bytes`](crate::io::BufWriter::write_bytes)
    /// sends with `IORING_OP_SEND_ZC` (where the runtime has
    /// [`Capability::SendZc`](crate::Capability::SendZc)); smaller buffers,
    /// and all of them with `None`, go out with a plain send from their
    /// own memory. Default `Some(16 * 1024)` (16 KiB): a
    /// zero-copy send costs a second completion and pins the pages until
    /// the network is done, which pays only for large buffers. The right
    /// size depends on the NIC: on loopback the kernel copies every
    /// zero-copy send anyway (see `docs/large-responses.md`). The epoll
    /// backend never sends zero-copy and ignores this.
    pub fn zero_copy_threshold(&mut self, threshold: Option<usize>) -> &mut Builder {
        self.zero_copy_threshold = threshold;
        self
    }

    /// Injects faults into this runtime's operations (feature
    /// `fault-injection`, for tests only).
    #[cfg(feature = "fault-injection")]
    pub fn faults(&mut self, plan: crate::driver::faults::FaultPlan) -> &mut Builder {
        self.faults = Some(plan);
        self
    }

    /// Starts the driver these settings describe, woken through `wake_fd`;
    /// `hosted`: for a host's event loop (see `hosted` and `docs/hosted.md`).
    pub(crate) fn driver_for(&self, wake_fd: RawFd, hosted: bool) -> io::Result<Driver> {
        let config = Config {
            entries: self.entries,
            kind: self.chosen_driver()?,
            #[cfg(feature = "fault-injection")]
            faults: self.faults.clone(),
            pool: self.pool,
            zero_copy_threshold: self.zero_copy_threshold,
        };
        let mut off = Caps::switched_off()?;
        if hosted {
            // Deferred task-run keeps completions until the thread enters
            // the ring with GETEVENTS; hosted, it sleeps in tokio's
            // epoll_wait instead, and the kernel's eventfd notice of
            // deferred work came 13-20 ms late (docs/hosted.md).
            off = off.with(Cap::DeferTaskrun, true);
        }
        Driver::start(&config, wake_fd, off)
    }

    /// The backend asked for in code or in the environment.
    fn chosen_driver(&self) -> io::Result<Option<DriverKind>> {
        if self.driver.is_some() {
            return Ok(self.driver);
        }
        match std::env::var(DRIVER_ENV) {
            Err(_) => Ok(None),
            Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
                "" | "auto" => Ok(None),
                "uring" | "io_uring" | "io-uring" => Ok(Some(DriverKind::IoUring)),
                "epoll" => Ok(Some(DriverKind::Epoll)),
                other => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{DRIVER_ENV}={other:?}: expected \"uring\" or \"epoll\""),
                )),
            },
        }
    }

    /// Builds the runtime: starts the backend and probes the kernel. The
    /// environment variable [`CAPS_OFF_ENV`](crate::CAPS_OFF_ENV) (for
    /// tests) turns single capabilities off; an unknown name in it is an
    /// `InvalidInput` error.
    pub fn build(&self) -> io::Result<Runtime> {
        let wake = EventFd::new()?;
        let driver = Rc::new(self.driver_for(wake.as_raw_fd(), false)?);
        // The scheduler owns the eventfd from here on (closed with it, after
        // the driver that watches it).
        let sched = Rc::new(Scheduler::new(wake));
        Ok(Runtime {
            driver,
            sched,
            linger: self.linger,
        })
    }
}

/// Makes a runtime current on this thread for the guard's lifetime.
fn enter_block_on(rt: &Runtime) -> context::EnterGuard {
    if context::has_sched() {
        panic!("cannot start a uring-bufio runtime from within a runtime");
    }
    context::enter(context::Handle {
        driver: rt.driver.clone(),
        sched: Some(rt.sched.clone()),
    })
}

impl Runtime {
    /// A runtime with default settings.
    pub fn new() -> io::Result<Runtime> {
        Builder::default().build()
    }

    /// Settings for a runtime.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Faults injected so far (feature `fault-injection`, tests only).
    #[cfg(feature = "fault-injection")]
    pub fn fault_stats(&self) -> crate::driver::faults::FaultStats {
        self.driver.fault_stats()
    }

    /// Counters of the receive buffer pool (buffers, free, lent out, times
    /// exhausted and grown), or `None` before the first pooled reader read
    /// or where the kernel cannot pick buffers.
    pub fn pool_stats(&self) -> Option<PoolStats> {
        self.driver.pool_stats()
    }

    /// Which kernel interface this runtime drives.
    pub fn driver(&self) -> DriverKind {
        self.driver.kind()
    }

    /// Whether this runtime's kernel interface has `capability`, decided
    /// when the runtime started (always `false` on epoll). The crate falls
    /// back on its own where one is missing; this says which paths run.
    ///
    /// ```
    /// use uring_bufio::{Capability, DriverKind, Runtime};
    ///
    /// let rt = Runtime::new()?;
    /// if rt.driver() == DriverKind::Epoll {
    ///     assert!(!rt.has(Capability::MultishotAccept));
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn has(&self, capability: Cap) -> bool {
        self.driver.has(capability)
    }

    /// An fd that is readable while completions wait to be reaped, so
    /// another event loop can watch it and then run this runtime for a tick.
    /// (The ring fd itself is not enough: with deferred task-run the kernel
    /// signals nothing on it, so an eventfd is registered with the ring on
    /// the first call; it costs a little per completion from then on.)
    pub fn completion_fd(&self) -> io::Result<RawFd> {
        self.driver.completion_fd()
    }

    /// Runs `future` to completion on this thread, together with the tasks
    /// it spawns. After it finished, background flushes of dropped
    /// `BufWriter`s are completed (see [`Builder::linger`]).
    ///
    /// # Panics
    /// If called from within a runtime, or if the kernel queue fails
    /// unrecoverably.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let _enter = enter_block_on(self);
        let mut future = pin!(future);
        let main_handle = self.sched.waker(MAIN, false);
        let main = Waker::from(main_handle.clone());
        let mut ready = VecDeque::new();
        // The main future is polled first, without waiting for a wake-up.
        let mut main_woken = true;
        let mut output = None;
        let mut linger_deadline = None;
        loop {
            if main_woken && output.is_none() {
                Scheduler::unmark(&main_handle);
                let alone = !self.driver.queued();
                self.sched
                    .set_alone(if alone { Alone::UnlessWoken } else { Alone::No });
                if let std::task::Poll::Ready(v) = sched::poll_with(future.as_mut(), &main) {
                    output = Some(v);
                }
            }
            main_woken = false;
            self.sched.take_ready(&mut ready);
            while let Some(id) = ready.pop_front() {
                if id == MAIN {
                    main_woken = true;
                } else {
                    let alone = ready.is_empty() && !self.driver.queued();
                    self.sched
                        .set_alone(if alone { Alone::Yes } else { Alone::No });
                    self.sched.run(id);
                }
            }
            self.sched.set_alone(Alone::No);
            if output.is_some() {
                if self.sched.lingering() == 0 {
                    break;
                }
                let deadline = *linger_deadline.get_or_insert_with(|| Instant::now() + self.linger);
                if Instant::now() >= deadline {
                    break;
                }
            }
            self.turn(main_woken, linger_deadline);
        }
        // Submit whatever the last polls queued (cancels of dropped operations).
        let _ = self.driver.turn(false, None);
        output.expect("loop ends only with the output")
    }

    /// One trip to the kernel; sleeps only when no task is ready.
    fn turn(&self, main_woken: bool, deadline: Option<Instant>) {
        let wait = !main_woken && self.sched.park();
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let res = self.driver.turn(wait, timeout);
        if wait {
            self.sched.unpark();
        }
        if let Err(e) = res {
            panic!("uring-bufio: the kernel queue failed: {e}");
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // The driver only: tasks dropped now must not spawn new ones.
        let _driver = context::enter(context::Handle {
            driver: self.driver.clone(),
            sched: None,
        });
        // Dropping tasks releases their operations (abandoned, cancelled).
        self.sched.close();
        self.driver.shutdown_and_report();
    }
}
