//! Workload `cores`: line echo at many connections, served by the launcher
//! with N workers (each its own runtime and `SO_REUSEPORT` listener;
//! contenders `uring` and `epoll`) against tokio's multi-thread runtime with
//! N worker threads (contender `tokio`), for each N of `--workers`. The
//! client runs in its own process (this executable, started again with
//! [`CLIENT_FLAG`]), our io_uring client with `--client-threads` threads,
//! the same for every contender.
//!
//! Placement: the server is confined to the first N CPUs this process may
//! use, the client process to the CPUs after them; when none are left (on
//! 2 CPUs with 2 workers) the client shares the server's CPUs and competes
//! with it, and the placement column says so. On a bigger machine
//! `--workers 1,2,4,8 --client-threads 4` measures more cores the same way.

use std::io;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use uring_bufio::io::{BufReader, BufWriter};
use uring_bufio::launch::{Launcher, Listen, Server};
use uring_bufio::net::TcpStream;
use uring_bufio::{DriverKind, Runtime};

use crate::cases::Case;
use crate::measure::{count_syscalls, process_cpu_secs, quantile_us};
use crate::net::{ClientStats, NetCase, Reply};
use crate::{Contender, Metric, Params, metric, ours};

/// First argument of the client process.
pub const CLIENT_FLAG: &str = "--cores-client";

/// Connections of every case.
const CONNS: usize = 64;

/// Length of each echoed line, newline included.
const LINE: usize = 100;

/// The CPUs this process may run on, in order.
fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: `cpu_set_t` is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live cpu_set_t of the size given.
    if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `set` was filled by the kernel; CPU_ISSET only reads it.
    Ok((0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// Confines the calling thread (and the threads it starts later) to `cpus`.
fn confine(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: `cpu_set_t` is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        // SAFETY: `set` is live and exclusively borrowed; `c` came from
        // `allowed_cpus`, so it is below CPU_SETSIZE.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: passes a pointer to a live cpu_set_t of the size given.
    if unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `0-1` or `3` for a list of CPUs.
fn show_cpus(cpus: &[usize]) -> String {
    match (cpus.first(), cpus.last()) {
        (Some(a), Some(b)) if a != b => format!("{a}-{b}"),
        (Some(a), _) => a.to_string(),
        _ => "-".into(),
    }
}

/// Where the server and the client run with `workers` workers.
#[derive(Debug, Clone)]
struct Placement {
    /// CPUs of the server's threads.
    server: Vec<usize>,
    /// CPUs of the client process.
    client: Vec<usize>,
    /// The client shares the server's CPUs.
    shared: bool,
}

impl Placement {
    /// The first `workers` allowed CPUs for the server, the rest for the
    /// client (all of them, shared, when there is no rest).
    fn of(workers: usize) -> io::Result<Placement> {
        let all = allowed_cpus()?;
        let n = workers.min(all.len());
        let (server, rest) = all.split_at(n);
        let shared = rest.is_empty();
        Ok(Placement {
            server: server.to_vec(),
            client: if shared { all.clone() } else { rest.to_vec() },
            shared,
        })
    }

    /// For the table (no commas: it goes into the CSV unquoted).
    fn describe(&self, client_threads: usize) -> String {
        let shared = if self.shared {
            " (shared: the client competes with the server)"
        } else {
            ""
        };
        format!(
            "server CPUs {}; client process ({client_threads} threads) CPUs {}{shared}",
            show_cpus(&self.server),
            show_cpus(&self.client)
        )
    }
}

/// The cases of the workload: one per worker count.
pub fn cases(p: &Params) -> io::Result<Vec<Case>> {
    let mut cases = Vec::new();
    for &workers in &p.workers {
        let placement = Placement::of(workers)?;
        let text: &'static str = Box::leak(placement.describe(p.client_threads).into_boxed_str());
        let case = NetCase {
            conns: CONNS,
            req: [vec![b'x'; LINE - 1], vec![b'\n']].concat(),
            reply: Reply::Echo,
            depth: 1,
            duration: p.duration,
            warmup: (p.duration / 5).max(Duration::from_millis(20)),
            cap: p.cap,
        };
        let threads = p.client_threads;
        let plural = if workers == 1 { "" } else { "s" };
        let name = format!("echo {LINE} B x{CONNS}; {workers} worker{plural}");
        let run = move |c: Contender| run(c, workers, &placement, threads, &case);
        cases.push(Case::socket(
            "cores",
            name,
            text,
            vec![Contender::Uring, Contender::Epoll, Contender::Tokio],
            Box::new(run),
        ));
    }
    Ok(cases)
}

/// One run: the server on its CPUs in this process, the client process on
/// its CPUs; the client's figures, the server's CPU time and system calls
/// per request.
fn run(
    c: Contender,
    workers: usize,
    place: &Placement,
    threads: usize,
    case: &NetCase,
) -> io::Result<Vec<Metric>> {
    let (addr_tx, addr_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (server_cpus, cap) = (place.server.clone(), case.cap);
    let server = std::thread::spawn(move || {
        confine(&server_cpus)?;
        let (served, sys) = count_syscalls(|| match c {
            Contender::Tokio => serve_tokio(workers, cap, addr_tx, done_rx),
            c => serve_launcher(c.driver().expect("ours"), workers, cap, addr_tx, done_rx),
        });
        served.map(|n| (n, sys))
    });
    let addr: SocketAddr = addr_rx
        .recv()
        .map_err(|_| io::Error::other("the server did not start"))?;
    let cpu = process_cpu_secs();
    let client = run_client(addr, place, threads, case);
    let cpu = process_cpu_secs() - cpu;
    let _ = done_tx.send(());
    let (served, sys) = server
        .join()
        .map_err(|_| io::Error::other("server panicked"))??;
    let (ops, secs, p50, p99) = client?;
    let served = served.max(1) as f64;
    Ok(vec![
        metric("req/s", ops as f64 / secs),
        metric("p50 us", p50),
        metric("p99 us", p99),
        metric("server us/req", cpu * 1e6 / served),
        metric("server sys/req", sys / served),
    ])
}

/// Serves with the launcher until told the client is done; returns the
/// requests answered.
fn serve_launcher(
    kind: DriverKind,
    workers: usize,
    cap: usize,
    addr: mpsc::Sender<SocketAddr>,
    done: mpsc::Receiver<()>,
) -> io::Result<u64> {
    let mut builder = Runtime::builder();
    builder.driver(kind);
    let mut launcher = Launcher::new();
    launcher
        .workers(workers)
        .thread_name("cores")
        .runtime(builder);
    let served = Arc::new(AtomicU64::new(0));
    let counter = served.clone();
    let running = Server::new("127.0.0.1:0".parse().expect("an address"))
        .launcher(launcher)
        .listen(Listen::ReusePort)
        .shutdown_on_signals(false)
        .serve(move |stream, _| echo(stream, cap, counter.clone()))?;
    let _ = addr.send(running.local_addr());
    let _ = done.recv();
    running.shutdown();
    running.join().map_err(io::Error::other)?;
    Ok(served.load(Ordering::Relaxed))
}

/// One connection on a worker: each line echoed, replies flushed when no
/// more input is buffered (as the single-runtime `uring` contender does).
async fn echo(stream: TcpStream, cap: usize, served: Arc<AtomicU64>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let (r, w) = stream.into_split();
    let (mut r, mut w) = (
        BufReader::with_capacity(cap, r),
        BufWriter::with_capacity(cap, w),
    );
    let mut n = 0;
    while let Some(line) = r.next_line().await? {
        w.write_all(line).await?;
        w.write_all(b"\n").await?;
        n += 1;
        if r.buffer().is_empty() {
            w.flush().await?;
        }
    }
    served.fetch_add(n, Ordering::Relaxed);
    w.shutdown().await
}

/// Serves with tokio's multi-thread runtime (`workers` worker threads, a
/// task per connection) until told the client is done.
fn serve_tokio(
    workers: usize,
    cap: usize,
    addr: mpsc::Sender<SocketAddr>,
    done: mpsc::Receiver<()>,
) -> io::Result<u64> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_io()
        .build()?;
    let served = Arc::new(AtomicU64::new(0));
    let counter = served.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let _ = addr.send(listener.local_addr()?);
    rt.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        loop {
            let (socket, _) = listener.accept().await?;
            tokio::spawn(echo_tokio(socket, cap, counter.clone()));
        }
        #[allow(unreachable_code)]
        Ok::<_, io::Error>(())
    });
    let _ = done.recv();
    // The client process has exited: its connections are closed, so the
    // tasks end; dropping the runtime waits for its threads.
    rt.shutdown_timeout(Duration::from_secs(5));
    Ok(served.load(Ordering::Relaxed))
}

/// One connection on tokio, the idiomatic way (as the `tokio` contender of
/// the ping-pong workload).
async fn echo_tokio(socket: tokio::net::TcpStream, cap: usize, served: Arc<AtomicU64>) {
    let _ = socket.set_nodelay(true);
    let (r, w) = socket.into_split();
    let mut r = tokio::io::BufReader::with_capacity(cap, r);
    let mut w = tokio::io::BufWriter::with_capacity(cap, w);
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if w.write_all(&line).await.is_err() {
            break;
        }
        served.fetch_add(1, Ordering::Relaxed);
        if r.buffer().is_empty() && w.flush().await.is_err() {
            break;
        }
    }
    let _ = w.shutdown().await;
}

/// Starts the client process and waits for its figures: requests, seconds,
/// p50 and p99 in microseconds.
fn run_client(
    addr: SocketAddr,
    place: &Placement,
    threads: usize,
    case: &NetCase,
) -> io::Result<(u64, f64, f64, f64)> {
    let cpus: Vec<String> = place.client.iter().map(usize::to_string).collect();
    let out = Command::new(std::env::current_exe()?)
        .args([
            CLIENT_FLAG.to_string(),
            addr.to_string(),
            case.conns.to_string(),
            (case.req.len()).to_string(),
            case.duration.as_secs_f64().to_string(),
            case.warmup.as_secs_f64().to_string(),
            threads.to_string(),
            cpus.join(","),
            case.cap.to_string(),
        ])
        .stderr(Stdio::inherit())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(io::Error::other(format!("client process failed: {text}")));
    }
    let f: Vec<f64> = text
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    match f[..] {
        [ops, secs, p50, p99] => Ok((ops as u64, secs, p50, p99)),
        _ => Err(io::Error::other(format!("client process said {text:?}"))),
    }
}

/// The client process: `addr conns line_len secs warmup threads cpus cap`.
/// Prints `requests seconds p50_us p99_us`.
pub fn client_main(args: &[String]) -> io::Result<()> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_string());
    let [addr, conns, len, secs, warmup, threads, cpus, cap] = args else {
        return Err(bad("client arguments"));
    };
    let num = |s: &String| s.parse::<usize>().map_err(|_| bad(s));
    let secs_of = |s: &String| s.parse::<f64>().map_err(|_| bad(s));
    let cpus: Vec<usize> = cpus
        .split(',')
        .map(|c| c.parse().map_err(|_| bad(c)))
        .collect::<io::Result<_>>()?;
    confine(&cpus)?;
    let addr: SocketAddr = addr.parse().map_err(|_| bad(addr))?;
    let (conns, threads) = (num(conns)?, num(threads)?.clamp(1, num(conns)?));
    let base = NetCase {
        conns,
        req: [vec![b'x'; num(len)? - 1], vec![b'\n']].concat(),
        reply: Reply::Echo,
        depth: 1,
        duration: Duration::from_secs_f64(secs_of(secs)?),
        warmup: Duration::from_secs_f64(secs_of(warmup)?),
        cap: num(cap)?,
    };
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let mut case = base.clone();
            case.conns = conns / threads + usize::from(i < conns % threads);
            std::thread::spawn(move || {
                ours::client(ours::Mode::plain(DriverKind::IoUring), addr, &case)
            })
        })
        .collect();
    let mut all = ClientStats {
        ops: 0,
        secs: 0.0,
        lat: Vec::new(),
    };
    for h in handles {
        let s = h
            .join()
            .map_err(|_| io::Error::other("client thread panicked"))??;
        all.ops += s.ops;
        all.secs = all.secs.max(s.secs);
        all.lat.extend(s.lat);
    }
    all.lat.sort_unstable();
    println!(
        "{} {} {} {}",
        all.ops,
        all.secs,
        quantile_us(&all.lat, 0.50),
        quantile_us(&all.lat, 0.99)
    );
    Ok(())
}
