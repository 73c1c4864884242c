//! What every contender's socket code shares: the case description, the
//! client's bookkeeping, and running a server and a client on two pinned
//! threads.

use std::io;
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use crate::measure::{count_syscalls, pin_to, thread_cpu_secs};

/// How the server answers a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// With the same line (ping-pong).
    Echo,
    /// With `PONG\n` (pipelined PING/PONG).
    Pong,
}

/// One request/response case.
#[derive(Debug, Clone)]
pub struct NetCase {
    /// Client connections, all served by one server thread.
    pub conns: usize,
    /// The request line, newline included.
    pub req: Vec<u8>,
    /// How the server answers.
    pub reply: Reply,
    /// Requests sent before the client reads their replies.
    pub depth: usize,
    /// Measured time, after `warmup`.
    pub duration: Duration,
    /// Time run before measuring.
    pub warmup: Duration,
    /// Buffer size of every reader and writer.
    pub cap: usize,
}

impl NetCase {
    /// The reply line's length without its newline.
    pub fn reply_len(&self) -> usize {
        match self.reply {
            Reply::Echo => self.req.len() - 1,
            Reply::Pong => 4,
        }
    }
}

/// The client's bookkeeping for one connection.
#[derive(Debug)]
pub struct ConnStats {
    /// Requests answered within the measured window.
    ops: u64,
    /// Time of each measured batch, request written to last reply read.
    lat: Vec<Duration>,
    /// Start of the measured window.
    from: Instant,
    /// End of the run: no batch starts after it.
    end: Instant,
    /// Requests per batch.
    depth: u64,
}

impl ConnStats {
    /// Bookkeeping for a connection of `case` whose run started at `start`.
    pub fn new(case: &NetCase, start: Instant) -> ConnStats {
        let from = start + case.warmup;
        ConnStats {
            ops: 0,
            lat: Vec::new(),
            from,
            end: from + case.duration,
            depth: case.depth as u64,
        }
    }

    /// The start time of the next batch, or `None` when the run is over.
    pub fn next_batch(&self) -> Option<Instant> {
        let now = Instant::now();
        (now < self.end).then_some(now)
    }

    /// The batch started at `t` got all its replies.
    pub fn done(&mut self, t: Instant) {
        if t >= self.from {
            self.ops += self.depth;
            self.lat.push(t.elapsed());
        }
    }
}

/// What a client run measured over all its connections.
#[derive(Debug)]
pub struct ClientStats {
    /// Requests answered in the measured window.
    pub ops: u64,
    /// Length of the measured window, in seconds.
    pub secs: f64,
    /// Batch latencies, sorted.
    pub lat: Vec<Duration>,
}

impl ClientStats {
    /// Joins the connections' figures.
    pub fn merge(conns: Vec<ConnStats>) -> ClientStats {
        let secs = conns
            .first()
            .map_or(0.0, |c| (c.end - c.from).as_secs_f64());
        let ops = conns.iter().map(|c| c.ops).sum();
        let mut lat: Vec<Duration> = conns.into_iter().flat_map(|c| c.lat).collect();
        lat.sort_unstable();
        ClientStats { ops, secs, lat }
    }
}

/// The error for a stream that ended before the reply.
pub fn eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "server closed before replying",
    )
}

/// Checks a reply line (without its newline).
pub fn line_ok(line: &[u8], case: &NetCase) -> io::Result<()> {
    if line.len() == case.reply_len() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "reply of {} bytes, expected {}",
                line.len(),
                case.reply_len()
            ),
        ))
    }
}

/// Where the two threads of a socket case run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Server and client pinned to the same CPU.
    SameCore,
    /// Server on CPU 0, client on CPU 1.
    DiffCores,
}

impl Placement {
    /// The CPUs of the server and the client.
    fn cpus(self) -> (usize, usize) {
        match self {
            Placement::SameCore => (0, 0),
            Placement::DiffCores => (0, 1),
        }
    }

    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Placement::SameCore => "same core",
            Placement::DiffCores => "2 cores",
        }
    }
}

/// What one run of a server thread and a client thread gave, each with the
/// system calls its thread made (and threads it started).
#[derive(Debug)]
pub struct Pair<S, C> {
    /// The server's result.
    pub server: S,
    /// The server thread's system calls.
    pub server_syscalls: f64,
    /// The server thread's CPU time (user and system), in seconds, over
    /// its whole run (warm-up included, like `server_syscalls`).
    pub server_cpu: f64,
    /// The client's result.
    pub client: C,
    /// The client thread's system calls.
    pub client_syscalls: f64,
}

/// Runs `server` with a fresh listener on one pinned thread and `client`
/// with its address on another. Should the client fail, `conns` plain
/// connections are opened and closed so that a server still waiting in
/// `accept` gets to its end.
pub fn run_pair<S, C>(
    placement: Placement,
    conns: usize,
    server: impl FnOnce(std::net::TcpListener) -> io::Result<S> + Send + 'static,
    client: impl FnOnce(SocketAddr) -> io::Result<C> + Send + 'static,
) -> io::Result<Pair<S, C>>
where
    S: Send + 'static,
    C: Send + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let (scpu, ccpu) = placement.cpus();
    let s = thread::spawn(move || {
        pin_to(scpu)?;
        let cpu = thread_cpu_secs();
        let (res, n) = count_syscalls(|| server(listener));
        res.map(|r| (r, n, thread_cpu_secs() - cpu))
    });
    let c = thread::spawn(move || {
        pin_to(ccpu)?;
        let (res, n) = count_syscalls(|| client(addr));
        res.map(|r| (r, n))
    });
    let client = c
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("client panicked")));
    if client.is_err() {
        for _ in 0..conns {
            let _ = std::net::TcpStream::connect(addr);
        }
    }
    let server = s.join().map_err(|_| io::Error::other("server panicked"))?;
    let ((client, client_syscalls), (server, server_syscalls, server_cpu)) = (client?, server?);
    Ok(Pair {
        server,
        server_syscalls,
        server_cpu,
        client,
        client_syscalls,
    })
}
