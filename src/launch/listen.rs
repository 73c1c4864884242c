//! Listening sockets for a server: one per worker with `SO_REUSEPORT`, or
//! one for the acceptor thread, which hands connections to the workers.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::accept::accept_loop;
use super::channel::Sender;
use super::shutdown::ShutdownToken;
use super::stats::Counters;
use crate::Builder;
use crate::net::{TcpListener, TcpStream};

/// How connections reach the workers of a [`Server`](super::Server).
/// `docs/launcher.md` compares the two.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Listen {
    /// Each worker has its own listening socket, all bound to one address
    /// with `SO_REUSEPORT`; the kernel spreads new connections over them by
    /// a hash of the addresses. No thread hop per connection and no shared
    /// accept queue; but the spread is by hash, not by load, and a
    /// connection stays in the backlog of the worker it was hashed to.
    #[default]
    ReusePort,
    /// One listening socket and one acceptor thread (with its own runtime)
    /// that hands each accepted socket to the next live worker below its
    /// cap, round-robin. Even spread and one backlog; costs a thread, a
    /// hop between threads and a wake-up per connection.
    Acceptor,
}

/// The listen backlog (std uses 128).
const BACKLOG: i32 = 1024;

/// Binds `count` listening sockets to `addr`, with `SO_REUSEPORT` if
/// `reuse_port`. For port 0 the kernel picks the port at the first bind and
/// the others bind to it. `SO_REUSEADDR` is set, as std does.
pub(crate) fn bind(
    addr: SocketAddr,
    count: usize,
    reuse_port: bool,
) -> io::Result<Vec<std::net::TcpListener>> {
    let first = bind_one(addr, reuse_port)?;
    let addr = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..count {
        all.push(bind_one(addr, reuse_port)?);
    }
    Ok(all)
}

/// One listening socket (close-on-exec, blocking: io_uring waits).
fn bind_one(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Where the acceptor sends connections: each worker's inbox and counters.
#[derive(Clone, Debug)]
pub(crate) struct Dispatch {
    /// Each worker's connection inbox, in worker order.
    pub(crate) inboxes: Vec<Sender<std::net::TcpStream>>,
    /// Each worker's counters (their `live` is checked against the cap).
    pub(crate) counters: Vec<Arc<Counters>>,
    /// Most connections per worker (`usize::MAX`: no cap).
    pub(crate) cap: usize,
}

/// How often the acceptor looks again while every worker is at its cap.
const FULL_RECHECK: Duration = Duration::from_millis(2);

impl Dispatch {
    /// Whether worker `i` is alive and below its cap.
    fn has_room(&self, i: usize) -> bool {
        !self.inboxes[i].is_closed() && (self.counters[i].live() as usize) < self.cap
    }

    /// Ready once some worker is alive and below its cap.
    async fn room(&self) {
        while !(0..self.inboxes.len()).any(|i| self.has_room(i)) {
            crate::time::sleep(FULL_RECHECK).await;
        }
    }

    /// Sends `stream` to the first worker from `start` on (round-robin)
    /// with room, else to the first live one; `Err` gives it back if every
    /// worker has ended.
    pub(crate) fn send(
        &self,
        start: usize,
        mut stream: std::net::TcpStream,
    ) -> Result<(), std::net::TcpStream> {
        let n = self.inboxes.len();
        let order = (0..n).map(|i| (start + i) % n);
        let with_room: Vec<usize> = order.clone().filter(|&i| self.has_room(i)).collect();
        for i in with_room.into_iter().chain(order) {
            match self.inboxes[i].send(stream) {
                Ok(()) => return Ok(()),
                Err(back) => stream = back,
            }
        }
        Err(stream)
    }
}

/// What the acceptor thread needs.
pub(crate) struct Acceptor {
    /// The one listening socket.
    pub(crate) listener: std::net::TcpListener,
    /// The workers' inboxes.
    pub(crate) dispatch: Dispatch,
    /// The server's token: the acceptor stops and closes the listener.
    pub(crate) shutdown: ShutdownToken,
    /// The acceptor's own counters (accepts, resource waits).
    pub(crate) counters: Arc<Counters>,
}

/// Starts the acceptor thread `name` on a runtime built by `builder`.
pub(crate) fn spawn_acceptor(
    acceptor: Acceptor,
    builder: &Builder,
    name: String,
) -> io::Result<JoinHandle<io::Result<()>>> {
    let builder = builder.clone();
    std::thread::Builder::new()
        .name(name)
        .spawn(move || builder.build()?.block_on(run_acceptor(acceptor)))
}

/// The acceptor's loop: accept, then hand over as a std stream.
async fn run_acceptor(acceptor: Acceptor) -> io::Result<()> {
    let Acceptor {
        listener,
        dispatch,
        shutdown,
        counters,
    } = acceptor;
    let next = Cell::new(0usize);
    let hand_over = |stream: TcpStream, _peer| {
        // Freshly accepted: nothing is in flight, so this never fails.
        if let Ok(std) = stream.into_std() {
            let start = next.get();
            next.set(start.wrapping_add(1));
            // Refused only once every worker ended: the socket is closed.
            let _ = dispatch.send(start, std);
        }
    };
    let listener = TcpListener::from_std(listener);
    accept_loop(
        listener,
        &shutdown,
        &counters,
        || dispatch.room(),
        hand_over,
    )
    .await
}
