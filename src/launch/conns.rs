//! The connections of one worker: a task per connection, a count the
//! accept loops wait on (the cap), and the graceful drain at shutdown.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use super::remote::CatchUnwind;
use super::shutdown::ShutdownToken;
use super::stats::{Counters, Ended};
use crate::JoinHandle;
use crate::net::TcpStream;

/// What a connection's handler is given besides the stream.
#[derive(Clone, Debug)]
pub struct Connection {
    /// The peer's address.
    peer: SocketAddr,
    /// The worker serving it.
    worker: usize,
    /// The server's shutdown token.
    shutdown: ShutdownToken,
}

impl Connection {
    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The index of the worker serving this connection.
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// The server's shutdown token: once it has begun, finish the reply in
    /// progress and return (before the grace period ends, after which the
    /// task is cancelled).
    pub fn shutdown(&self) -> &ShutdownToken {
        &self.shutdown
    }
}

/// The connection tasks of one worker. Lives on the worker's thread.
pub(crate) struct Connections<H> {
    /// Serves one connection.
    handler: Arc<H>,
    /// This worker's index.
    worker: usize,
    /// The server's token, given to every connection.
    shutdown: ShutdownToken,
    /// Most connections served at once (`usize::MAX`: no cap).
    cap: usize,
    /// This worker's counters.
    counters: Arc<Counters>,
    /// The running connection tasks by id; an entry leaves when its task
    /// ends or is dropped (the task's [`Tracked`] guard removes it).
    tasks: RefCell<HashMap<u64, JoinHandle<()>>>,
    /// Id of the next connection.
    next_id: Cell<u64>,
    /// Woken whenever a task leaves `tasks` (accept loops, the drain).
    watchers: RefCell<Vec<Waker>>,
}

/// Settings of a [`Connections`].
pub(crate) struct Setup<H> {
    /// Serves one connection.
    pub(crate) handler: Arc<H>,
    /// This worker's index.
    pub(crate) worker: usize,
    /// The server's token.
    pub(crate) shutdown: ShutdownToken,
    /// Most connections at once (`usize::MAX`: no cap).
    pub(crate) cap: usize,
    /// This worker's counters.
    pub(crate) counters: Arc<Counters>,
}

impl<H, Fut> Connections<H>
where
    H: Fn(TcpStream, Connection) -> Fut + 'static,
    Fut: Future<Output = io::Result<()>> + 'static,
{
    /// No connections yet.
    pub(crate) fn new(setup: Setup<H>) -> Rc<Connections<H>> {
        Rc::new(Connections {
            handler: setup.handler,
            worker: setup.worker,
            shutdown: setup.shutdown,
            cap: setup.cap,
            counters: setup.counters,
            tasks: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
            watchers: RefCell::new(Vec::new()),
        })
    }

    /// Starts a task serving `stream`.
    pub(crate) fn admit(self: &Rc<Self>, stream: TcpStream, peer: SocketAddr) {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let conn = Connection {
            peer,
            worker: self.worker,
            shutdown: self.shutdown.clone(),
        };
        let tracked = Tracked {
            conns: self.clone(),
            id,
            how: Ended::Cancelled,
        };
        let handler = self.handler.clone();
        self.counters.started();
        let task = crate::spawn(async move {
            // The whole guard moves in (not only the field assigned below).
            let mut tracked = tracked;
            let served = CatchUnwind::new(async move { handler(stream, conn).await }).await;
            tracked.how = match served {
                Ok(Ok(())) => Ended::Finished,
                Ok(Err(_)) => Ended::Failed,
                Err(_) => Ended::Panicked,
            };
        });
        self.tasks.borrow_mut().insert(id, task);
    }
}

impl<H> Connections<H> {
    /// Ready while fewer connections than the cap run.
    pub(crate) async fn room(&self) {
        self.until(|n| n < self.cap).await
    }

    /// Waits up to `grace` for every connection task to end, then cancels
    /// those left and waits until they are dropped (their operations
    /// released, their sockets closed once the kernel is done with them).
    pub(crate) async fn drain(&self, grace: Duration) {
        let idle = self.until(|n| n == 0);
        if crate::time::timeout(grace, idle).await.is_ok() {
            return;
        }
        for task in self.tasks.borrow().values() {
            task.abort();
        }
        self.until(|n| n == 0).await;
    }

    /// Ready once `done(number of tasks)` holds.
    fn until<'a>(&'a self, done: impl Fn(usize) -> bool + 'a) -> impl Future<Output = ()> + 'a {
        poll_fn(move |cx| {
            if done(self.tasks.borrow().len()) {
                return Poll::Ready(());
            }
            let mut watchers = self.watchers.borrow_mut();
            if !watchers.iter().any(|w| w.will_wake(cx.waker())) {
                watchers.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }

    /// Task `id` ended as `how`.
    fn leave(&self, id: u64, how: Ended) {
        self.tasks.borrow_mut().remove(&id);
        self.counters.ended(how);
        let watchers = std::mem::take(&mut *self.watchers.borrow_mut());
        watchers.into_iter().for_each(Waker::wake);
    }
}

/// Inside a connection task: takes it out of the set when the task ends or
/// is dropped (cancelled at the deadline, or with the runtime).
struct Tracked<H> {
    /// The worker's connections.
    conns: Rc<Connections<H>>,
    /// This task's id.
    id: u64,
    /// How it ended; `Cancelled` until the handler returned.
    how: Ended,
}

impl<H> Drop for Tracked<H> {
    fn drop(&mut self) {
        self.conns.leave(self.id, self.how);
    }
}
