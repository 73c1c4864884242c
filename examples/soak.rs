//! Soak: many loopback connections on a tiny ring, with random timeouts that
//! drop futures and connections mid-exchange, for a given time. Prints bytes
//! sent and echoed, lost bytes (an echo that differs or is missing on a
//! connection that was not dropped on purpose), and fd count and memory at
//! start and end of both processes (the server runs in a child process).
//! Not part of CI.
//!
//! `cargo run --release --example soak -- [minutes] [connections] [ring entries]`
//! (defaults 1, 10000, 8; minutes may be fractional; `URING_BUFIO_DRIVER=epoll`
//! runs it on epoll; `SOAK_POOLED=1` makes the server read with
//! `BufStream::pooled` from a pool of 256 to 1024 buffers of 4 KiB and print
//! the pool's counters at the end).

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use uring_bufio::io::BufStream;
use uring_bufio::net::{TcpListener, TcpStream};
use uring_bufio::time::{sleep, timeout};
use uring_bufio::{PoolConfig, Runtime};

#[path = "support/process.rs"]
mod process;
use process::{fd_count, raise_fd_limit, rss_kib};

/// Counters shared by every task (one thread: plain cells).
#[derive(Default)]
struct Totals {
    /// Bytes clients handed to their writers.
    sent: Cell<u64>,
    /// Bytes that came back intact.
    echoed: Cell<u64>,
    /// Bytes that came back wrong or not at all on a live connection.
    lost: Cell<u64>,
    /// Exchanges cut short on purpose by a timeout (futures dropped).
    dropped: Cell<u64>,
    /// Connections opened by clients.
    connections: Cell<u64>,
    /// Exchanges that did not finish within the long (30 s) deadline: an
    /// echo that never came on a live connection.
    stalled: Cell<u64>,
    /// Of those, the first exchange of a connection (the server may not
    /// have accepted it yet).
    stalled_first: Cell<u64>,
}

/// Adds `n` to a counter.
fn add(c: &Cell<u64>, n: u64) {
    c.set(c.get() + n);
}

/// A small xorshift generator.
struct Rng(u64);

impl Rng {
    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Echoes lines until the client goes away; `pooled` reads with buffers
/// from the runtime's pool.
async fn echo(socket: TcpStream, pooled: bool) -> io::Result<()> {
    let mut s = if pooled {
        BufStream::pooled_with_capacity(4096, socket)
    } else {
        BufStream::with_capacity(4096, 4096, socket)
    };
    while let Some(line) = s.next_line().await? {
        let reply = [line, b"\n"].concat();
        s.write_all(&reply).await?;
        if s.reader().buffer().is_empty() {
            s.flush().await?;
        }
    }
    s.shutdown().await
}

/// One exchange: a random line out, the same line back.
async fn exchange(s: &mut BufStream<TcpStream>, rng: &mut Rng, totals: &Totals) -> io::Result<()> {
    let len = 1 + rng.below(2000) as usize;
    let byte = b'a' + rng.below(26) as u8;
    let mut line = vec![byte; len];
    line.push(b'\n');
    s.write_all(&line).await?;
    s.flush().await?;
    add(&totals.sent, line.len() as u64);
    match s.next_line().await? {
        Some(back) if back.len() == len && back.iter().all(|&b| b == byte) => {
            add(&totals.echoed, line.len() as u64);
        }
        _ => add(&totals.lost, line.len() as u64),
    }
    Ok(())
}

/// A client: connects, exchanges lines, and now and then gives an exchange
/// a deadline too short to make, dropping the connection when it passes.
async fn client(addr: std::net::SocketAddr, seed: u64, until: Instant, totals: Rc<Totals>) {
    let mut rng = Rng(seed | 1);
    // Clients arrive over the first seconds rather than in one instant.
    sleep(Duration::from_micros(seed * 300)).await;
    while Instant::now() < until {
        // A full accept queue makes the kernel retry SYNs for seconds; do
        // not outlive the run waiting for one.
        let left = until.saturating_duration_since(Instant::now());
        let Ok(Ok(socket)) = timeout(left, TcpStream::connect(addr)).await else {
            sleep(Duration::from_millis(10)).await;
            continue;
        };
        add(&totals.connections, 1);
        let mut s = BufStream::with_capacity(4096, 4096, socket);
        let mut first = true;
        while Instant::now() < until {
            let limit = if rng.below(50) == 0 {
                Duration::from_micros(rng.below(500))
            } else {
                Duration::from_secs(30)
            };
            match timeout(limit, exchange(&mut s, &mut rng, &totals)).await {
                Ok(Ok(())) => {
                    first = false;
                    sleep(Duration::from_millis(rng.below(200))).await;
                }
                // Cut short on purpose: the futures are dropped mid-exchange
                // and the connection is dropped with them.
                Err(_) if limit >= Duration::from_secs(30) => {
                    add(&totals.stalled, 1);
                    if first {
                        add(&totals.stalled_first, 1);
                    }
                    break;
                }
                Err(_) => {
                    add(&totals.dropped, 1);
                    break;
                }
                Ok(Err(_)) => break,
            }
        }
    }
}

/// Settings from the command line.
struct Args {
    /// How long the clients run.
    minutes: f64,
    /// Client connections wanted.
    conns: u64,
    /// io_uring submission queue entries.
    entries: u32,
}

/// Parses `[minutes] [connections] [ring entries]`.
fn args() -> Args {
    let v: Vec<f64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    Args {
        minutes: v.first().copied().unwrap_or(1.0),
        conns: v.get(1).copied().unwrap_or(10_000.0) as u64,
        entries: v.get(2).copied().unwrap_or(8.0) as u32,
    }
}

/// The server process: echoes on 127.0.0.1, prints its port, and stops
/// when its standard input ends (the client process closes it).
fn server(a: &Args) -> io::Result<()> {
    raise_fd_limit(a.conns + 100);
    let (fd_start, rss_start) = (fd_count(), rss_kib());
    let pooled = std::env::var_os("SOAK_POOLED").is_some();
    let rt = Runtime::builder()
        .entries(a.entries)
        .pool(
            PoolConfig::new()
                .buffer_size(4096)
                .buffers(256)
                .max_buffers(1024)
                .per_reader(4),
        )
        .build()?;
    rt.block_on(async {
        let listener = Rc::new(TcpListener::bind("127.0.0.1:0")?);
        println!("PORT {}", listener.local_addr()?.port());
        // Several accept tasks on one listener: on io_uring they share one
        // multishot accept; on epoll each is an accept in flight (one accept
        // loop would take one connection per tick there, too few for
        // thousands of connects at once).
        let acceptors: Vec<_> = (0..32)
            .map(|_| {
                let listener = listener.clone();
                uring_bufio::spawn(async move {
                    loop {
                        if let Ok((socket, _)) = listener.accept().await {
                            uring_bufio::spawn(async move {
                                let _ = echo(socket, pooled).await;
                            });
                        }
                    }
                })
            })
            .collect();
        let mut stdin = uring_bufio::io::BufReader::new(uring_bufio::stdio::stdin());
        while !stdin.fill_buf().await?.is_empty() {
            let n = stdin.buffer().len();
            stdin.consume(n);
        }
        for a in acceptors {
            a.abort();
        }
        Ok::<_, io::Error>(())
    })?;
    if let Some(stats) = rt.pool_stats() {
        println!(
            "server pool at the end: {} buffers of {} B, {} free, {} out, exhausted {} times, grown {} times, {} receives ({} bundled, {} partial)",
            stats.buffers,
            stats.buffer_size,
            stats.free,
            stats.out,
            stats.exhausted,
            stats.grown,
            stats.receives,
            stats.bundled,
            stats.partial
        );
    }
    drop(rt);
    println!(
        "server: fds {fd_start} before the runtime, {} after it was dropped; RSS {rss_start} KiB at start, {} KiB at end",
        fd_count(),
        rss_kib()
    );
    Ok(())
}

fn main() -> io::Result<()> {
    if std::env::var_os("SOAK_SERVER").is_some() {
        return server(&args());
    }
    let a = args();
    // The server runs in its own process: each side gets its own fd limit
    // (one process cannot hold both ends of 10,000 connections under a
    // 20,000 limit) and its own core.
    let limit = raise_fd_limit(a.conns + 100);
    let conns = a.conns.min(limit.saturating_sub(100));
    // Counted before the pipes to the server and the runtime exist.
    let (fd_start, rss_start) = (fd_count(), rss_kib());
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(std::env::args().skip(1))
        .env("SOAK_SERVER", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut out = io::BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut first = String::new();
    io::BufRead::read_line(&mut out, &mut first)?;
    let port: u16 = first
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| io::Error::other(format!("server said {first:?}")))?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let rt = Runtime::builder().entries(a.entries).build()?;
    println!(
        "soak: {} min, {conns} connections (asked {}, fd limit {limit} per process), ring of {}, backend {}, server in a second process",
        a.minutes,
        a.conns,
        a.entries,
        rt.driver()
    );
    let totals = Rc::new(Totals::default());
    let started = Instant::now();
    rt.block_on(async {
        let until = Instant::now() + Duration::from_secs_f64(a.minutes * 60.0);
        let clients: Vec<_> = (0..conns)
            .map(|i| uring_bufio::spawn(client(addr, i + 1, until, totals.clone())))
            .collect();
        for c in clients {
            let _ = c.await;
        }
    });
    drop(rt);
    drop(child.stdin.take());
    let mut rest = String::new();
    io::Read::read_to_string(&mut out, &mut rest)?;
    drop(out);
    let status = child.wait()?;
    let t = &totals;
    println!(
        "ran {:.1?}: {} connections opened, {} bytes sent, {} echoed intact, {} lost, {} exchanges dropped on purpose, {} stalled ({} of them first exchanges)",
        started.elapsed(),
        t.connections.get(),
        t.sent.get(),
        t.echoed.get(),
        t.lost.get(),
        t.dropped.get(),
        t.stalled.get(),
        t.stalled_first.get()
    );
    println!(
        "client: fds {fd_start} before the runtime and the server, {} after both ended; RSS {rss_start} KiB at start, {} KiB at end",
        fd_count(),
        rss_kib()
    );
    print!("{rest}");
    println!("(freed memory stays with the allocator, so RSS does not fall back)");
    if t.lost.get() > 0 || t.stalled.get() > 0 || fd_count() != fd_start || !status.success() {
        std::process::exit(1);
    }
    Ok(())
}
