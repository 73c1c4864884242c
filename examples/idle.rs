//! Idle connections: what many parked readers cost, and what a few busy
//! ones among them move.
//!
//! `cargo run --release --example idle -- [CONNS] [MiB] [ROUNDS] [HELLO]`
//! (defaults 19000, 1024, 5, 1; about 30 s; `URING_BUFIO_DRIVER=epoll`
//! runs our modes on epoll).
//!
//! Three modes, each in a fresh server process so its RSS is its own:
//! `pool` (`BufReader::pooled`), `ordinary` (`BufReader::with_capacity`,
//! 16 KiB) and `tokio` (`tokio::io::BufReader`, 8 KiB, on a current-thread
//! tokio runtime). A client process opens CONNS loopback connections in
//! batches; on each one it sends HELLO bytes and waits for the server's one
//! byte back, so every connection has been used once and the listen backlog
//! never fills. The server then parks a reader in `fill_buf` on each and
//! reports its RSS growth; afterwards 64 of the connections each receive
//! MiB/64 per round, ROUNDS times, and the server answers each with the
//! count and byte sum it saw, which the client checks. The server is pinned
//! to CPU 0, the client to CPU 1 (where there are two). Kernel socket
//! memory is not in RSS and not measured.

use std::future::{Future, poll_fn};
use std::io::{self, BufRead, Read, Write};
use std::pin::pin;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use uring_bufio::io::BufReader;
use uring_bufio::net::{TcpListener, TcpStream};
use uring_bufio::{PoolConfig, PoolStats, Runtime};

#[path = "support/process.rs"]
mod process;
use process::{raise_fd_limit, rss_kib};

/// Connections when none are asked for: what the fd limit of 20,000 here
/// leaves room for, with a margin for each process's own fds.
const DEFAULT_CONNS: usize = 19_000;
/// fds a process keeps for itself (stdio, pipes, ring, epoll, listener).
const OWN_FDS: usize = 500;
/// Busy connections in the throughput phase.
const ACTIVE: usize = 64;
/// Connects in flight before their handshakes are confirmed (backlog 1024).
const BATCH: usize = 256;
/// The ordinary reader's capacity.
const ORDINARY_CAPACITY: usize = 16 * 1024;
/// `tokio::io::BufReader`'s default capacity.
const TOKIO_CAPACITY: usize = 8 * 1024;
/// Accepts in flight on our runtime.
const ACCEPTORS: usize = 16;
/// Listening ports of a server. The kernel's search for a free ephemeral
/// port slows down as one destination's connections fill the range
/// (`__inet_check_established`: about 1 ms per connect at 19,000 to one
/// port here); spread over 8 ports, a connect takes microseconds.
const PORTS: usize = 8;

/// What a run measures, from the command line.
struct Params {
    /// Connections, idle but for the busy ones.
    conns: usize,
    /// MiB sent per round over the busy connections.
    mib: u64,
    /// Rounds of the throughput phase.
    rounds: usize,
    /// Bytes each connection sends before it goes idle.
    hello: usize,
}

impl Params {
    /// Parses `[CONNS] [MiB] [ROUNDS] [HELLO]` (defaults where absent).
    fn parse(args: &[String]) -> Params {
        let arg =
            |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
        Params {
            conns: arg(0, DEFAULT_CONNS),
            mib: arg(1, 1024) as u64,
            rounds: arg(2, 5).max(1),
            hello: arg(3, 1).max(1),
        }
    }

    /// The same as arguments for a child process.
    fn args(&self) -> [String; 4] {
        [self.conns, self.mib as usize, self.rounds, self.hello].map(|n| n.to_string())
    }
}

/// Readers parked in `fill_buf` for the first time (server process).
static PARKED: AtomicUsize = AtomicUsize::new(0);
/// The server's control thread saw its input end (server process).
static STOP: AtomicBool = AtomicBool::new(false);
/// The pool's counters, copied from the runtime thread every 20 ms.
static POOL: Mutex<Option<PoolStats>> = Mutex::new(None);

/// Bytes per pool buffer: 16 KiB, like the ordinary reader.
const POOL_BUFFER_SIZE: usize = 16 * 1024;

/// The pool of the `pool` mode: 16 KiB buffers like the ordinary reader.
fn pool_config() -> PoolConfig {
    PoolConfig::new()
        .buffer_size(POOL_BUFFER_SIZE)
        .buffers(64)
        .max_buffers(1024)
        .per_reader(4)
}

/// How a server reads.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// `BufReader::pooled`.
    Pool,
    /// `BufReader::with_capacity(ORDINARY_CAPACITY, ..)`.
    Ordinary,
    /// `tokio::io::BufReader::new` on tokio.
    Tokio,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::Pool, Mode::Ordinary, Mode::Tokio];

    fn name(self) -> &'static str {
        match self {
            Mode::Pool => "pool",
            Mode::Ordinary => "ordinary",
            Mode::Tokio => "tokio",
        }
    }

    fn parse(s: &str) -> io::Result<Mode> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| io::Error::other(format!("unknown mode {s:?}")))
    }
}

/// Pins this thread (and threads it starts later) to `cpu`, if this machine
/// has two CPUs or more; returns whether it did.
fn pin_to(cpu: usize) -> bool {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return false;
    }
    // SAFETY: `set` is a plain bitmask the libc macros write; the kernel
    // reads `size_of` bytes of it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// The server's side of a round: an 8-byte length, then that many bytes,
/// answered with their count and wrapping byte sum (16 bytes).
#[derive(Default)]
struct Sink {
    /// Length header bytes received so far.
    header: Vec<u8>,
    /// Body bytes still to come (`None` while the header is incomplete).
    left: Option<u64>,
    /// Body bytes counted.
    count: u64,
    /// Wrapping sum of the body bytes.
    sum: u64,
}

impl Sink {
    /// Takes bytes from `buf`; returns how many it used, and the reply
    /// once a round is complete.
    fn feed(&mut self, buf: &[u8]) -> (usize, Option<[u8; 16]>) {
        let mut used = 0;
        if self.left.is_none() {
            used = buf.len().min(8 - self.header.len());
            self.header.extend_from_slice(&buf[..used]);
            if self.header.len() < 8 {
                return (used, None);
            }
            let len = u64::from_le_bytes(self.header[..].try_into().expect("8 bytes"));
            self.left = Some(len);
        }
        let left = self.left.expect("set above");
        let body = &buf[used..][..(buf.len() - used).min(left as usize)];
        self.count += body.len() as u64;
        self.sum = body
            .iter()
            .fold(self.sum, |s, &b| s.wrapping_add(u64::from(b)));
        used += body.len();
        self.left = Some(left - body.len() as u64);
        if self.left != Some(0) {
            return (used, None);
        }
        let mut reply = [0; 16];
        reply[..8].copy_from_slice(&self.count.to_le_bytes());
        reply[8..].copy_from_slice(&self.sum.to_le_bytes());
        *self = Sink::default();
        (used, Some(reply))
    }
}

/// Runs `fut`, counting its first poll as one more parked reader.
async fn parked<F: Future>(fut: F, first: &mut bool) -> F::Output {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        if std::mem::take(first) {
            PARKED.fetch_add(1, Ordering::Relaxed);
        }
        fut.as_mut().poll(cx)
    })
    .await
}

/// One connection on our runtime: hello, then rounds until the end.
async fn conn_ours(socket: TcpStream, mode: Mode, mut hello: usize) -> io::Result<()> {
    let mut r = match mode {
        Mode::Pool => BufReader::pooled(socket),
        _ => BufReader::with_capacity(ORDINARY_CAPACITY, socket),
    };
    while hello > 0 {
        let n = r.fill_buf().await?.len().min(hello);
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        r.consume(n);
        hello -= n;
    }
    r.get_ref().write_all(&b"+"[..]).await.0?;
    let (mut sink, mut first) = (Sink::default(), true);
    loop {
        let buf = parked(r.fill_buf(), &mut first).await?;
        if buf.is_empty() {
            return Ok(());
        }
        let (used, reply) = sink.feed(buf);
        r.consume(used);
        if let Some(reply) = reply {
            r.get_ref()
                .write_all(Bytes::copy_from_slice(&reply))
                .await
                .0?;
        }
    }
}

/// One connection on tokio, as [`conn_ours`].
async fn conn_tokio(socket: tokio::net::TcpStream, mut hello: usize) -> io::Result<()> {
    let mut r = tokio::io::BufReader::new(socket);
    while hello > 0 {
        let n = r.fill_buf().await?.len().min(hello);
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        r.consume(n);
        hello -= n;
    }
    r.get_mut().write_all(b"+").await?;
    let (mut sink, mut first) = (Sink::default(), true);
    loop {
        let buf = parked(r.fill_buf(), &mut first).await?;
        if buf.is_empty() {
            return Ok(());
        }
        let (used, reply) = sink.feed(buf);
        r.consume(used);
        if let Some(reply) = reply {
            r.get_mut().write_all(&reply).await?;
        }
    }
}

/// Answers the orchestrator's commands on stdin: `idle` waits for `conns`
/// parked readers, then reports memory; `after` reports it as is. At the
/// end of input, `stop` runs.
fn control(conns: usize, stop: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            let line = line.unwrap_or_default();
            let waited = Instant::now();
            while line == "idle"
                && PARKED.load(Ordering::Relaxed) < conns
                && waited.elapsed() < Duration::from_secs(60)
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            // Lets the last submissions reach the kernel and the pool
            // counters be copied.
            std::thread::sleep(Duration::from_millis(300));
            let p = POOL.lock().expect("no panics hold it").unwrap_or_default();
            println!(
                "{line} parked={} rss={} buffers={} free={} out={} grown={} exhausted={}",
                PARKED.load(Ordering::Relaxed),
                rss_kib(),
                p.buffers,
                p.free,
                p.out,
                p.grown,
                p.exhausted
            );
        }
        stop();
    });
}

/// The server process on our runtime.
fn serve_ours(mode: Mode, p: &Params) -> io::Result<()> {
    let rt = Runtime::builder().pool(pool_config()).build()?;
    let mut listeners = Vec::new();
    for _ in 0..PORTS {
        listeners.push(Rc::new(TcpListener::bind("127.0.0.1:0")?));
    }
    let ports = listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect::<io::Result<Vec<u16>>>()?;
    control(p.conns, || STOP.store(true, Ordering::Relaxed));
    ready(&ports, &rt.driver().to_string());
    let hello = p.hello;
    rt.block_on(async {
        for listener in listeners.iter().cycle().take(ACCEPTORS) {
            let listener = listener.clone();
            uring_bufio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    uring_bufio::spawn(async move {
                        if let Err(e) = conn_ours(socket, mode, hello).await {
                            eprintln!("server connection: {e}");
                        }
                    });
                }
            });
        }
        while !STOP.load(Ordering::Relaxed) {
            uring_bufio::time::sleep(Duration::from_millis(20)).await;
            *POOL.lock().expect("no panics hold it") = rt.pool_stats();
        }
    });
    let dropped = Instant::now();
    drop(rt);
    println!("shutdown ms={}", dropped.elapsed().as_millis());
    Ok(())
}

/// The server process on tokio.
fn serve_tokio(p: &Params) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let hello = p.hello;
    rt.block_on(async {
        let mut listeners = Vec::new();
        for _ in 0..PORTS {
            // tokio's own `bind` (mio 1.2) listens with a backlog of 128,
            // which a batch of connects overflows (SYNs dropped, retried
            // after 1 s); ours has 1024.
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(([127, 0, 0, 1], 0).into())?;
            listeners.push(socket.listen(1024)?);
        }
        let ports = listeners
            .iter()
            .map(|l| Ok(l.local_addr()?.port()))
            .collect::<io::Result<Vec<u16>>>()?;
        control(p.conns, || std::process::exit(0));
        ready(&ports, "tokio-epoll");
        for listener in listeners {
            tokio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    tokio::spawn(async move {
                        if let Err(e) = conn_tokio(socket, hello).await {
                            eprintln!("server connection: {e}");
                        }
                    });
                }
            });
        }
        std::future::pending().await
    })
}

/// Tells the orchestrator the listening ports, the RSS before any
/// connection, and the backend.
fn ready(ports: &[u16], backend: &str) {
    let list: Vec<_> = ports.iter().map(u16::to_string).collect();
    println!(
        "ready ports={} rss={} backend={backend}",
        list.join(","),
        rss_kib()
    );
}

/// Bytes a client sends, repeated.
fn pattern() -> Arc<Vec<u8>> {
    Arc::new((0..64 * 1024u32).map(|i| (i * 7 + 3) as u8).collect())
}

/// The wrapping byte sum of `len` bytes of the repeated pattern.
fn pattern_sum(pattern: &[u8], len: u64) -> u64 {
    let sum = |b: &[u8]| b.iter().map(|&b| u64::from(b)).sum::<u64>();
    let (full, rest) = (len / pattern.len() as u64, len % pattern.len() as u64);
    full.wrapping_mul(sum(pattern))
        .wrapping_add(sum(&pattern[..rest as usize]))
}

/// One round on one busy connection: `len` bytes out, their count and sum
/// back, checked.
async fn send_round(
    mut s: tokio::net::TcpStream,
    len: u64,
    pattern: Arc<Vec<u8>>,
) -> io::Result<tokio::net::TcpStream> {
    s.write_all(&len.to_le_bytes()).await?;
    let mut left = len;
    while left > 0 {
        let n = left.min(pattern.len() as u64);
        s.write_all(&pattern[..n as usize]).await?;
        left -= n;
    }
    let mut reply = [0; 16];
    s.read_exact(&mut reply).await?;
    let count = u64::from_le_bytes(reply[..8].try_into().expect("8 bytes"));
    let sum = u64::from_le_bytes(reply[8..].try_into().expect("8 bytes"));
    if count != len || sum != pattern_sum(&pattern, len) {
        return Err(io::Error::other(format!(
            "sent {len} bytes, server counted {count} with sum {sum}"
        )));
    }
    Ok(s)
}

/// Opens `conns` connections in batches, each confirmed by the server.
fn connect_all(ports: &[u16], p: &Params) -> io::Result<Vec<std::net::TcpStream>> {
    let mut all = Vec::with_capacity(p.conns);
    let hello = vec![b'h'; p.hello];
    while all.len() < p.conns {
        let start = all.len();
        for i in start..p.conns.min(start + BATCH) {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", ports[i % ports.len()]))?;
            s.write_all(&hello)?;
            all.push(s);
        }
        for s in &mut all[start..] {
            let mut b = [0];
            s.read_exact(&mut b)?;
        }
    }
    Ok(all)
}

/// The client process: connects, waits for `go`, runs the rounds, and
/// holds every connection until its input ends.
fn client(ports: &str, p: &Params) -> io::Result<()> {
    let ports: Vec<u16> = ports.split(',').filter_map(|p| p.parse().ok()).collect();
    let (conns, mib, rounds) = (p.conns, p.mib, p.rounds);
    pin_to(1);
    raise_fd_limit(0);
    let started = Instant::now();
    let all = connect_all(&ports, p)?;
    println!("connected secs={:.2}", started.elapsed().as_secs_f64());
    let mut stdin = io::stdin().lock();
    stdin.read_line(&mut String::new())?;
    let stride = conns / ACTIVE.min(conns);
    let (busy, _idle): (Vec<_>, Vec<_>) = all
        .into_iter()
        .enumerate()
        .partition(|(i, _)| i % stride == 0 && i / stride < ACTIVE);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let per_conn = (mib << 20) / busy.len() as u64;
    let secs = rt.block_on(async {
        let mut streams = busy
            .into_iter()
            .map(|(_, s)| {
                s.set_nonblocking(true)?;
                tokio::net::TcpStream::from_std(s)
            })
            .collect::<io::Result<Vec<_>>>()?;
        let (pattern, mut secs) = (pattern(), Vec::new());
        for _ in 0..rounds {
            let start = Instant::now();
            let tasks: Vec<_> = streams
                .drain(..)
                .map(|s| tokio::spawn(send_round(s, per_conn, pattern.clone())))
                .collect();
            for t in tasks {
                streams.push(t.await.map_err(io::Error::other)??);
            }
            secs.push(format!("{:.4}", start.elapsed().as_secs_f64()));
        }
        Ok::<_, io::Error>(secs)
    })?;
    let total = per_conn * (conns.min(ACTIVE) as u64);
    println!("rounds bytes={total} secs={}", secs.join(","));
    io::copy(&mut stdin, &mut io::sink())?;
    Ok(())
}

/// A child process of this example, spoken to by lines.
struct Proc {
    child: Child,
    /// Commands; dropping it tells the child to finish.
    stdin: Option<ChildStdin>,
    /// Its reports, one line each.
    stdout: io::BufReader<ChildStdout>,
}

/// A report line's `key=value` fields.
struct Fields(String);

impl Fields {
    /// The value of `key` as text.
    fn text(&self, key: &str) -> &str {
        let prefix = format!("{key}=");
        self.0
            .split_whitespace()
            .find_map(|w| w.strip_prefix(prefix.as_str()))
            .unwrap_or("")
    }

    /// The value of `key` as a number (0 if absent).
    fn num(&self, key: &str) -> f64 {
        self.text(key).parse().unwrap_or(0.0)
    }
}

impl Proc {
    /// Starts this example with `args`.
    fn spawn(args: &[String]) -> io::Result<Proc> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = io::BufReader::new(child.stdout.take().expect("piped"));
        Ok(Proc {
            child,
            stdin,
            stdout,
        })
    }

    /// Sends one command line.
    fn send(&mut self, line: &str) -> io::Result<()> {
        writeln!(self.stdin.as_mut().expect("open until finish"), "{line}")
    }

    /// Reads the next report, which must start with `word`.
    fn expect(&mut self, word: &str) -> io::Result<Fields> {
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        if !line.starts_with(word) {
            return Err(io::Error::other(format!(
                "expected {word}, child said {line:?}"
            )));
        }
        Ok(Fields(line))
    }

    /// Ends its input, then waits for it; returns its last report.
    fn finish(mut self) -> io::Result<Fields> {
        drop(self.stdin.take());
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest)?;
        let status = self.child.wait()?;
        if !status.success() {
            return Err(io::Error::other(format!("child failed: {status}")));
        }
        Ok(Fields(rest))
    }
}

/// What one mode measured.
struct Outcome {
    mode: Mode,
    /// Backend line of the server.
    ready: Fields,
    connected: Fields,
    idle: Fields,
    rounds: Fields,
    after: Fields,
    /// The server's last words (our runtime: how long dropping it took).
    end: Fields,
}

/// Runs one server and one client process for `mode`.
fn run_mode(mode: Mode, p: &Params) -> io::Result<Outcome> {
    let mut server =
        Proc::spawn(&[&["--server".into(), mode.name().into()][..], &p.args()].concat())?;
    let ready = server.expect("ready")?;
    let ports = ready.text("ports").to_string();
    let mut client = Proc::spawn(&[&["--client".into(), ports][..], &p.args()].concat())?;
    let connected = client.expect("connected")?;
    server.send("idle")?;
    let idle = server.expect("idle")?;
    client.send("go")?;
    let rounds = client.expect("rounds")?;
    server.send("after")?;
    let after = server.expect("after")?;
    // The server closes first, so TIME_WAIT sockets stay on its listening
    // ports and do not use up the client's ephemeral ports for the next mode.
    let end = server.finish()?;
    client.finish()?;
    Ok(Outcome {
        mode,
        ready,
        connected,
        idle,
        rounds,
        after,
        end,
    })
}

/// Median MB/s (10^6 bytes per second) over the rounds.
fn median_mbps(o: &Outcome) -> f64 {
    let bytes = o.rounds.num("bytes");
    let mut rates: Vec<f64> = o
        .rounds
        .text("secs")
        .split(',')
        .filter_map(|s| s.parse::<f64>().ok())
        .map(|s| bytes / s / 1e6)
        .collect();
    rates.sort_by(f64::total_cmp);
    rates.get(rates.len() / 2).copied().unwrap_or(0.0)
}

/// Buffer bytes per connection while idle: the pool's buffers shared out,
/// or the reader's capacity.
fn buffer_per_conn(o: &Outcome, conns: usize) -> f64 {
    match o.mode {
        Mode::Pool => o.idle.num("buffers") * POOL_BUFFER_SIZE as f64 / conns as f64,
        Mode::Ordinary => ORDINARY_CAPACITY as f64,
        Mode::Tokio => TOKIO_CAPACITY as f64,
    }
}

/// Prints the results as a Markdown table.
fn print_table(outcomes: &[Outcome], conns: usize) {
    println!();
    println!(
        "| mode | backend | connections | buffer B/conn | RSS growth B/conn | pool idle: buffers/free/out | MB/s, {ACTIVE} busy | pool after load | RSS after load, MiB |"
    );
    println!("|---|---|---:|---:|---:|---|---:|---|---:|");
    for o in outcomes {
        let growth = (o.idle.num("rss") - o.ready.num("rss")) * 1024.0 / conns as f64;
        let pool = |f: &Fields| match o.mode {
            Mode::Pool => format!("{}/{}/{}", f.text("buffers"), f.text("free"), f.text("out")),
            _ => "-".to_string(),
        };
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {} | {:.0} | {} | {:.1} |",
            o.mode.name(),
            o.ready.text("backend"),
            o.idle.text("parked"),
            buffer_per_conn(o, conns),
            growth,
            pool(&o.idle),
            median_mbps(o),
            pool(&o.after),
            o.after.num("rss") / 1024.0
        );
    }
}

/// Runs the three modes and prints what they measured.
fn orchestrate(args: &[String]) -> io::Result<()> {
    let mut p = Params::parse(args);
    let limit = raise_fd_limit(0) as usize;
    let asked = p.conns;
    p.conns = asked.min(limit.saturating_sub(OWN_FDS)).max(1);
    let conns = p.conns;
    println!(
        "idle: {conns} connections (asked {asked}); the fd limit is {limit} per process and cannot be raised here, \
         so the server holds one fd per connection in a process of its own and the client the other ends in another \
         ({OWN_FDS} fds kept for each process's own use)"
    );
    let pinned = std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2;
    println!(
        "placement: {}; each connection sends {} B and gets 1 B back, then idles; {} busy connections get {} MiB \
         per round, {} rounds; pool {:?}",
        if pinned {
            "server pinned to CPU 0, client to CPU 1 (sched_setaffinity)"
        } else {
            "unpinned (one CPU)"
        },
        p.hello,
        ACTIVE.min(conns),
        p.mib,
        p.rounds,
        pool_config()
    );
    let mut outcomes = Vec::new();
    for mode in Mode::ALL {
        let o = run_mode(mode, &p)?;
        println!(
            "{}: backend {}, connected in {} s, idle RSS +{} KiB over {} KiB, rounds {} s; after load {}; {}",
            mode.name(),
            o.ready.text("backend"),
            o.connected.text("secs"),
            o.idle.num("rss") - o.ready.num("rss"),
            o.ready.num("rss"),
            o.rounds.text("secs"),
            o.after.0.trim(),
            o.end.0.trim()
        );
        outcomes.push(o);
    }
    print_table(&outcomes, conns);
    println!(
        "\nRSS is the server process's; kernel socket memory and io_uring's own kernel memory are not in it \
         and not measured. MB/s = 10^6 bytes/s, median of the rounds, client on tokio in all modes."
    );
    Ok(())
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--server") if args.len() > 2 => {
            pin_to(0);
            raise_fd_limit(0);
            match Mode::parse(&args[1])? {
                Mode::Tokio => serve_tokio(&Params::parse(&args[2..])),
                mode => serve_ours(mode, &Params::parse(&args[2..])),
            }
        }
        Some("--client") if args.len() > 2 => client(&args[1], &Params::parse(&args[2..])),
        _ => orchestrate(&args),
    }
}
