//! What read deadlines cost a server (request/response workloads only):
//! the `uring` server (io_uring, ordinary readers) with a read deadline on
//! every reader, against the same server without, and against our
//! `time::timeout` around every read call.
//!
//! * `deadline`: `set_read_timeout(30 s)` and `set_read_deadline(now +
//!   1 h)` once per connection: the stream's one timer is armed once and
//!   re-armed only when it fires. (Moving the absolute deadline for every
//!   request adds the caller's clock read, about 20 ns per request, which
//!   is measurable only where a request costs well under a microsecond,
//!   as in deep pipelines.)
//! * `timeout`: every `next_line` wrapped in `time::timeout(30 s, ..)`: a
//!   kernel timeout submitted, and cancelled, for every call that waits.
//!
//! Both contenders' clients are the `uring` client, unchanged.

use std::io;
use std::time::{Duration, Instant};

use uring_bufio::io::{BufReader, BufWriter};
use uring_bufio::net::{TcpListener, TcpStream};
use uring_bufio::time::timeout;
use uring_bufio::{DriverKind, Runtime, spawn};

use crate::net::{NetCase, Reply};

/// How the server bounds its reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// The stream's read deadlines.
    Deadline,
    /// `time::timeout` around each read call.
    TimeoutEach,
}

/// The idle limit of every read.
const IDLE: Duration = Duration::from_secs(30);
/// How far ahead of the connection's start its absolute deadline lies.
const WHOLE: Duration = Duration::from_secs(3600);

/// Accepts `case.conns` connections on io_uring and answers each line,
/// every read bounded as `bound` says, until every client closed; returns
/// the requests answered.
pub fn serve(bound: Bound, listener: std::net::TcpListener, case: &NetCase) -> io::Result<u64> {
    let (cap, reply) = (case.cap, case.reply);
    let rt = Runtime::builder().driver(DriverKind::IoUring).build()?;
    rt.block_on(async move {
        let listener = TcpListener::from_std(listener);
        let mut tasks = Vec::with_capacity(case.conns);
        for _ in 0..case.conns {
            let (socket, _) = listener.accept().await?;
            socket.set_nodelay(true)?;
            tasks.push(spawn(answer(bound, socket, reply, cap)));
        }
        let mut served = 0;
        for t in tasks {
            served += t.await.map_err(|e| io::Error::other(e.to_string()))??;
        }
        Ok(served)
    })
}

/// One server connection, as `ours::answer` with bounded reads.
async fn answer(bound: Bound, socket: TcpStream, reply: Reply, cap: usize) -> io::Result<u64> {
    let (r, w) = socket.into_split();
    let (mut r, mut w) = (
        BufReader::with_capacity(cap, r),
        BufWriter::with_capacity(cap, w),
    );
    if bound == Bound::Deadline {
        r.set_read_timeout(Some(IDLE))?;
        r.set_read_deadline(Some(Instant::now() + WHOLE));
    }
    let mut served = 0;
    loop {
        let line = match bound {
            Bound::Deadline => r.next_line().await?,
            Bound::TimeoutEach => timeout(IDLE, r.next_line()).await??,
        };
        let Some(line) = line else { break };
        match reply {
            Reply::Echo => {
                w.write_all(line).await?;
                w.write_all(b"\n").await?;
            }
            Reply::Pong => w.write_all(b"PONG\n").await?,
        }
        served += 1;
        if r.buffer().is_empty() {
            w.flush().await?;
        }
    }
    w.shutdown().await?;
    Ok(served)
}
