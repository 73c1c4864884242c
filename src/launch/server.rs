//! A TCP server on the launcher's workers: listeners, accept loops,
//! connection tasks, graceful shutdown, signals.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::channel::{self, Receiver};
use super::conns::{Connection, Connections, Setup};
use super::listen::{self, Acceptor, Dispatch, Listen};
use super::signal::{SIGINT, SIGTERM, Signals};
use super::stats::{Counters, WorkerStats};
use super::{FailureCause, LaunchError, Launcher, ShutdownToken, Worker, WorkerFailure, Workers};
use crate::net::TcpStream;

/// A TCP server on [`Launcher`] workers.
///
/// ```no_run
/// use uring_bufio::io::BufStream;
/// use uring_bufio::launch::Server;
///
/// let running = Server::new("127.0.0.1:8080".parse().unwrap()).serve(|stream, conn| async move {
///     let mut stream = BufStream::new(stream);
///     // Reply to each line until the peer closes or shutdown begins.
///     while let Some(line) = conn.shutdown().run_until_begun(stream.next_line()).await {
///         let Some(line) = line? else { break };
///         let reply = line.to_ascii_uppercase();
///         stream.write_all(&reply).await?;
///         stream.write_all(b"\n").await?;
///         stream.flush().await?;
///     }
///     stream.shutdown().await
/// })?;
/// running.join()?; // until SIGTERM or ctrl-c
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Server {
    /// The address to listen on.
    addr: SocketAddr,
    /// The workers.
    launcher: Launcher,
    /// How connections reach the workers.
    listen: Listen,
    /// Most connections per worker (`usize::MAX`: no cap).
    cap: usize,
    /// How long connections may finish after shutdown began.
    grace: Duration,
    /// Shut down on SIGTERM and SIGINT.
    signals: bool,
}

impl Server {
    /// A server on `addr` (port 0: the kernel picks one; see
    /// [`Running::local_addr`]) with [`Launcher::new`]'s workers,
    /// [`Listen::ReusePort`], no connection cap, 10 s of grace, and
    /// shutdown on SIGTERM and SIGINT.
    pub fn new(addr: SocketAddr) -> Server {
        Server {
            addr,
            launcher: Launcher::new(),
            listen: Listen::default(),
            cap: usize::MAX,
            grace: Duration::from_secs(10),
            signals: true,
        }
    }

    /// The workers: their number, pinning, names, runtime settings.
    pub fn launcher(&mut self, launcher: Launcher) -> &mut Server {
        self.launcher = launcher;
        self
    }

    /// How connections reach the workers (default [`Listen::ReusePort`]).
    pub fn listen(&mut self, listen: Listen) -> &mut Server {
        self.listen = listen;
        self
    }

    /// Most connections a worker serves at once; while at the cap it
    /// accepts no more (they wait in the listen backlog).
    pub fn max_connections(&mut self, per_worker: usize) -> &mut Server {
        self.cap = per_worker.max(1);
        self
    }

    /// How long connection tasks may run on after shutdown began before
    /// they are cancelled (default 10 s).
    pub fn grace(&mut self, grace: Duration) -> &mut Server {
        self.grace = grace;
        self
    }

    /// Whether SIGTERM and SIGINT begin shutdown (default on). The
    /// handlers are installed by [`serve`](Server::serve) and removed when
    /// the server is joined; see [`signal`](super::signal) on what a
    /// process then does with those signals.
    pub fn shutdown_on_signals(&mut self, on: bool) -> &mut Server {
        self.signals = on;
        self
    }

    /// Binds, starts the workers, and serves each connection with
    /// `handler(stream, connection)` in its own task on a worker.
    pub fn serve<H, Fut>(&self, handler: H) -> io::Result<Running>
    where
        H: Fn(TcpStream, Connection) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<()>> + 'static,
    {
        let n = self.launcher.worker_count();
        let per_worker = self.listen == Listen::ReusePort;
        let mut listeners = listen::bind(self.addr, if per_worker { n } else { 1 }, per_worker)?;
        let local_addr = listeners[0].local_addr()?;
        // Installed before anything can answer a client: a SIGTERM sent as
        // soon as the server replied must find the handler, not the default.
        let signals = self
            .signals
            .then(|| Signals::new(&[SIGTERM, SIGINT]))
            .transpose()?;
        let counters: Vec<Arc<Counters>> = (0..n).map(|_| Arc::default()).collect();
        let (inboxes, receivers): (Vec<_>, Vec<_>) = (0..n).map(|_| channel::channel()).unzip();
        let own = per_worker.then(|| std::mem::take(&mut listeners));
        let slots = slots(receivers, &counters, own);
        let plan = Arc::new(Plan {
            slots,
            handler: Arc::new(handler),
            cap: self.cap,
            grace: self.grace,
        });
        let workers = self
            .launcher
            .start(move |worker| serve_worker(worker, plan.clone()))?;
        let shutdown = workers.shutdown_token().clone();
        let dispatch = Dispatch {
            inboxes,
            counters: counters.clone(),
            cap: self.cap,
        };
        let acceptor = listeners
            .pop()
            .map(|listener| self.start_acceptor(listener, &dispatch, &shutdown))
            .transpose();
        let runtime = &self.launcher.runtime;
        let watcher = signals.map(|s| super::signal::watch(s, shutdown.clone(), runtime));
        let (acceptor, signals) = match (acceptor, watcher.transpose()) {
            (Ok(acceptor), Ok(signals)) => (acceptor, signals),
            (Err(e), _) | (_, Err(e)) => {
                // The workers (and a started acceptor) must not wait forever.
                shutdown.begin();
                return Err(e);
            }
        };
        Ok(Running {
            workers,
            local_addr,
            dispatch,
            counters,
            acceptor,
            signals,
        })
    }

    /// Starts the acceptor thread on `listener` ([`Listen::Acceptor`]).
    fn start_acceptor(
        &self,
        listener: std::net::TcpListener,
        dispatch: &Dispatch,
        shutdown: &ShutdownToken,
    ) -> io::Result<JoinHandle<io::Result<()>>> {
        let acceptor = Acceptor {
            listener,
            dispatch: dispatch.clone(),
            shutdown: shutdown.clone(),
            counters: Arc::default(),
        };
        let name = format!("{}-acceptor", self.launcher.name);
        listen::spawn_acceptor(acceptor, &self.launcher.runtime, name)
    }
}

/// What every worker shares: its own part (taken once) and the settings.
struct Plan<H> {
    /// Each worker's part, in worker order; taken by the worker.
    slots: Vec<Mutex<Option<Slot>>>,
    /// Serves one connection.
    handler: Arc<H>,
    /// Most connections per worker.
    cap: usize,
    /// The shutdown deadline.
    grace: Duration,
}

/// One worker's part.
struct Slot {
    /// Its listener (`Listen::ReusePort`), else `None`.
    listener: Option<std::net::TcpListener>,
    /// Connections handed in by the acceptor or by `Running::hand_off`.
    streams: Receiver<std::net::TcpStream>,
    /// Its counters.
    counters: Arc<Counters>,
}

/// Each worker's part: its inbox, its counters and, with `own`
/// listeners (one per worker), its listener.
fn slots(
    receivers: Vec<Receiver<std::net::TcpStream>>,
    counters: &[Arc<Counters>],
    own: Option<Vec<std::net::TcpListener>>,
) -> Vec<Mutex<Option<Slot>>> {
    let mut own = own.map(Vec::into_iter);
    let parts = receivers.into_iter().zip(counters);
    parts
        .map(|(streams, counters)| {
            let listener = own.as_mut().and_then(Iterator::next);
            let counters = counters.clone();
            Mutex::new(Some(Slot {
                listener,
                streams,
                counters,
            }))
        })
        .collect()
}

/// A worker's main future: accept (or receive) connections until shutdown
/// begins, then let them finish within the grace period.
async fn serve_worker<H, Fut>(worker: Worker, plan: Arc<Plan<H>>) -> io::Result<()>
where
    H: Fn(TcpStream, Connection) -> Fut + 'static,
    Fut: Future<Output = io::Result<()>> + 'static,
{
    let slot = plan.slots[worker.index()]
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    let Slot {
        listener,
        streams,
        counters,
    } = slot.expect("each worker takes its slot once");
    let shutdown = worker.shutdown().clone();
    let conns = Connections::new(Setup {
        handler: plan.handler.clone(),
        worker: worker.index(),
        shutdown: shutdown.clone(),
        cap: plan.cap,
        counters: counters.clone(),
    });
    let handed_in = crate::spawn(receive_streams(
        streams,
        shutdown.clone(),
        conns.clone(),
        counters.clone(),
    ));
    let accepted = match listener {
        Some(listener) => {
            let listener = crate::net::TcpListener::from_std(listener);
            let admit = |stream, peer| conns.admit(stream, peer);
            super::accept::accept_loop(listener, &shutdown, &counters, || conns.room(), admit).await
        }
        None => {
            shutdown.begun().await;
            Ok(())
        }
    };
    let _ = handed_in.await;
    conns.drain(plan.grace).await;
    accepted
}

/// Serves the connections handed in until shutdown begins; those still
/// queued then are closed.
async fn receive_streams<H, Fut>(
    streams: Receiver<std::net::TcpStream>,
    shutdown: ShutdownToken,
    conns: Rc<Connections<H>>,
    counters: Arc<Counters>,
) where
    H: Fn(TcpStream, Connection) -> Fut + 'static,
    Fut: Future<Output = io::Result<()>> + 'static,
{
    while shutdown.run_until_begun(conns.room()).await.is_some() {
        let Some(stream) = shutdown.run_until_begun(streams.recv()).await else {
            break;
        };
        counters.add_handed_in();
        // A peer that already reset has no address: nothing to serve.
        if let Ok(peer) = stream.peer_addr() {
            conns.admit(TcpStream::from_std(stream), peer);
        }
    }
}

/// A serving [`Server`]. Call [`join`](Running::join) to wait for its end.
#[derive(Debug)]
pub struct Running {
    /// The worker threads.
    workers: Workers,
    /// The bound address.
    local_addr: SocketAddr,
    /// The workers' connection inboxes.
    dispatch: Dispatch,
    /// Each worker's counters.
    counters: Vec<Arc<Counters>>,
    /// The acceptor thread ([`Listen::Acceptor`]).
    acceptor: Option<JoinHandle<io::Result<()>>>,
    /// The signal watcher thread, if signals shut the server down.
    signals: Option<JoinHandle<()>>,
}

impl Running {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The workers, to hand them other work ([`Workers::spawn_on`]).
    pub fn workers(&self) -> &Workers {
        &self.workers
    }

    /// The server's shutdown token (the one connections get).
    pub fn shutdown_token(&self) -> &ShutdownToken {
        self.workers.shutdown_token()
    }

    /// Begins graceful shutdown: listeners close, connections see the token
    /// and have the grace period to finish.
    pub fn shutdown(&self) {
        self.workers.shutdown();
    }

    /// Hands a connection accepted elsewhere (by a tokio application, say)
    /// to the next live worker below its cap, which serves it with the
    /// handler. `Err` gives it back once every worker has ended.
    pub fn hand_off(&self, stream: std::net::TcpStream) -> Result<(), std::net::TcpStream> {
        self.dispatch.send(self.workers.next_live(), stream)
    }

    /// Each worker's counters, in worker order.
    pub fn stats(&self) -> Vec<WorkerStats> {
        self.counters.iter().map(|c| c.snapshot()).collect()
    }

    /// Waits until every worker has ended (after shutdown, or failing) and
    /// the acceptor and signal threads with them; returns the workers' final
    /// counters. `Err` names each worker that panicked or failed; an
    /// acceptor failure is reported as one more worker, index `n`.
    pub fn join(self) -> Result<Vec<WorkerStats>, LaunchError> {
        let shutdown = self.shutdown_token().clone();
        let n = self.workers.len();
        let name = self
            .acceptor
            .as_ref()
            .and_then(|t| t.thread().name().map(String::from));
        let mut failures = match self.workers.join() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_failures(),
        };
        // Every worker ended (maybe all failed): stop the other threads.
        shutdown.begin();
        if let Some(acceptor) = self.acceptor {
            let cause = match acceptor.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(FailureCause::Error(e)),
                Err(p) => Some(FailureCause::Panic(super::worker::panic_message(&*p))),
            };
            let name = name.unwrap_or_default();
            failures.extend(cause.map(|cause| WorkerFailure {
                index: n,
                name,
                cause,
            }));
        }
        if let Some(signals) = self.signals {
            let _ = signals.join();
        }
        if !failures.is_empty() {
            return Err(LaunchError::new(failures));
        }
        Ok(self.counters.iter().map(|c| c.snapshot()).collect())
    }
}
