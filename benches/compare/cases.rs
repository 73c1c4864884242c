//! The cases of each workload and how one case is run: every contender in
//! turn, round after round.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::deadline::{self, Bound};
use crate::measure::{count_syscalls, quantile_us};
use crate::net::{NetCase, Placement, Reply, run_pair};
use uring_bufio::PoolConfig;

use crate::{
    Contender, Metric, Params, metric, ours, peer_hosted, peer_monoio, peer_std, peer_tokio, scan,
};

/// One run of one contender.
pub type RunFn = Box<dyn Fn(Contender) -> io::Result<Vec<Metric>>>;

/// Per metric name, the figure of each round.
pub type Series = Vec<(&'static str, Vec<f64>)>;

/// One case of a workload.
pub struct Case {
    /// The workload's name.
    pub workload: &'static str,
    /// What differs between the workload's cases.
    pub name: String,
    /// Where the threads run.
    pub placement: &'static str,
    /// Contenders that apply, in the order they take turns.
    pub contenders: Vec<Contender>,
    /// Runs one contender once; the first metric is the headline figure.
    run: RunFn,
    /// Made before the first run.
    prepare: Option<Box<dyn FnOnce() -> io::Result<()>>>,
    /// Files removed after the last run.
    files: Vec<PathBuf>,
}

/// The figures of one case.
#[derive(Debug)]
pub struct CaseResult {
    /// The workload's name.
    pub workload: &'static str,
    /// The case's name.
    pub name: String,
    /// Where the threads ran.
    pub placement: &'static str,
    /// Per contender, per metric name, the figure of each round.
    pub figures: Vec<(Contender, Series)>,
}

impl Case {
    /// A case that runs `run` per contender, with no files.
    pub fn socket(
        workload: &'static str,
        name: String,
        placement: &'static str,
        contenders: Vec<Contender>,
        run: RunFn,
    ) -> Case {
        Case {
            workload,
            name,
            placement,
            contenders,
            run,
            prepare: None,
            files: Vec::new(),
        }
    }

    /// Runs every contender `params.rounds` times, interleaved.
    pub fn run(mut self, params: &Params) -> CaseResult {
        if let Some(prepare) = self.prepare.take()
            && let Err(e) = prepare()
        {
            eprintln!("{} {}: preparing failed: {e}", self.workload, self.name);
        }
        let mut figures: Vec<(Contender, Series)> =
            self.contenders.iter().map(|&c| (c, Vec::new())).collect();
        for _ in 0..params.rounds {
            for (c, figs) in &mut figures {
                match (self.run)(*c) {
                    Ok(metrics) => record(figs, &metrics),
                    Err(e) => eprintln!("{} {} {}: {e}", self.workload, self.name, c.name()),
                }
            }
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
        let result = CaseResult {
            workload: self.workload,
            name: self.name,
            placement: self.placement,
            figures,
        };
        crate::report::case(&result);
        result
    }
}

/// Appends one run's metrics to the per-metric series.
fn record(figs: &mut Series, metrics: &[Metric]) {
    for m in metrics {
        match figs.iter_mut().find(|(n, _)| *n == m.name) {
            Some((_, v)) => v.push(m.value),
            None => figs.push((m.name, vec![m.value])),
        }
    }
}

/// Every case of the chosen workloads, with the chosen contenders.
pub fn all(p: &Params, dir: &Path) -> io::Result<Vec<Case>> {
    let mut cases = Vec::new();
    for w in &p.only {
        match w.as_str() {
            "scan" => cases.extend(scan_cases(p, dir)),
            "pingpong" => cases.extend(pingpong_cases(p)),
            "pipeline" => cases.extend(pipeline_cases(p)),
            "bulk" => cases.push(bulk_case(p)),
            "codec" => cases.push(codec_case(p)),
            "cores" => cases.extend(crate::launcher::cases(p)?),
            "large" => cases.extend(crate::large::cases(p, dir)?),
            _ => unreachable!("workload names are checked when parsing"),
        }
    }
    for c in &mut cases {
        c.contenders.retain(|x| p.contenders.contains(x));
    }
    cases.retain(|c| {
        !c.contenders.is_empty()
            && p.filter
                .as_ref()
                .is_none_or(|f| c.name.contains(f.as_str()))
    });
    Ok(cases)
}

/// Workload 1: line scan of a page-cached file, 64-byte and 1 KiB lines.
fn scan_cases(p: &Params, dir: &Path) -> Vec<Case> {
    [64usize, 1024]
        .into_iter()
        .map(|line_len| {
            let path = dir.join(format!("lines-{line_len}"));
            let (total, cap) = (p.scan_bytes, p.cap);
            let expect = Arc::new(std::sync::OnceLock::new());
            let (file, expect2) = (path.clone(), expect.clone());
            let prepare = move || {
                let lines = scan::make_file(&file, line_len, total)?;
                expect2.set(lines).expect("prepared once");
                Ok(())
            };
            let file = path.clone();
            let run = move |c: Contender| -> io::Result<Vec<Metric>> {
                let start = std::time::Instant::now();
                let (counted, sys) = count_syscalls(|| match c {
                    Contender::Cat => scan::cat(&file).map(|_| (0, 0)),
                    Contender::Tokio => peer_tokio::scan(&file, cap),
                    Contender::Monoio => peer_monoio::scan(&file, cap),
                    Contender::Std => peer_std::scan(&file, cap),
                    c => ours::scan(c.driver().expect("ours"), &file, cap),
                });
                let secs = start.elapsed().as_secs_f64();
                let (lines, bytes) = counted?;
                let len = std::fs::metadata(&file)?.len();
                if c != Contender::Cat && (Some(&lines) != expect.get() || bytes != len) {
                    return Err(io::Error::other(format!(
                        "counted {lines} lines / {bytes} bytes, expected {:?} / {len}",
                        expect.get()
                    )));
                }
                let mib = len as f64 / f64::from(1 << 20);
                Ok(vec![
                    metric("GB/s", len as f64 / secs / 1e9),
                    metric("Mlines/s", len as f64 / line_len as f64 / secs / 1e6),
                    metric("sys/MiB", sys / mib),
                ])
            };
            Case {
                workload: "scan",
                name: format!("{line_len} B lines"),
                placement: "unpinned",
                contenders: vec![
                    Contender::Uring,
                    Contender::Epoll,
                    Contender::Tokio,
                    Contender::Monoio,
                    Contender::Std,
                    Contender::Cat,
                ],
                run: Box::new(run),
                prepare: Some(Box::new(prepare)),
                files: vec![path],
            }
        })
        .collect()
}

/// How our contender `c` runs a socket case; `pool` sizes the runtime's
/// pool when `c` is the pooled one.
fn mode(c: Contender, pool: PoolConfig) -> ours::Mode {
    ours::Mode {
        kind: c.driver().expect("ours"),
        pool: (c == Contender::Pool).then_some(pool),
    }
}

/// Buffer size of the `pool` contender's pool in the request/response
/// cases: far more than a batch of requests or replies (at most 1 KiB here),
/// and the pool's default.
const NET_POOL_BUFFER: usize = 16 << 10;

/// Buffers one pooled reader may hold received and not consumed in the
/// request/response cases.
const NET_PER_READER: usize = 4;

/// The pool of the `pool` contender for `conns` connections: `size`-byte
/// buffers, two per connection to start (one being read, one being received
/// into), growing up to `per_reader` per connection, all its readers can
/// hold (at least 16 and 64).
fn pool_for(conns: usize, size: usize, per_reader: usize) -> PoolConfig {
    PoolConfig::new()
        .buffer_size(size)
        .buffers((2 * conns).max(16))
        .max_buffers((per_reader * conns).max(64))
        .per_reader(per_reader)
}

/// Runs one request/response case for contender `c`; returns the client's
/// figures and the server's and client's system calls per request.
fn run_net(c: Contender, placement: Placement, case: &NetCase) -> io::Result<Vec<Metric>> {
    let (sc, cc) = (case.clone(), case.clone());
    let pool = pool_for(case.conns, NET_POOL_BUFFER, NET_PER_READER);
    let pair = run_pair(
        placement,
        case.conns,
        move |l| match c {
            Contender::Tokio => peer_tokio::serve(l, &sc),
            Contender::Hosted => peer_hosted::serve(l, &sc),
            Contender::Monoio => peer_monoio::serve(l, &sc),
            Contender::Std => peer_std::serve(l, &sc),
            Contender::Deadline => deadline::serve(Bound::Deadline, l, &sc),
            Contender::TimeoutEach => deadline::serve(Bound::TimeoutEach, l, &sc),
            c => ours::serve(mode(c, pool), l, &sc),
        },
        move |a| match c {
            Contender::Tokio => peer_tokio::client(a, &cc),
            Contender::Hosted => peer_hosted::client(a, &cc),
            Contender::Monoio => peer_monoio::client(a, &cc),
            Contender::Std => peer_std::client(a, &cc),
            Contender::Deadline | Contender::TimeoutEach => {
                ours::client(mode(Contender::Uring, pool), a, &cc)
            }
            c => ours::client(mode(c, pool), a, &cc),
        },
    )?;
    let stats = pair.client;
    let served = pair.server.max(1) as f64;
    Ok(vec![
        metric("req/s", stats.ops as f64 / stats.secs),
        metric("p50 us", quantile_us(&stats.lat, 0.50)),
        metric("p99 us", quantile_us(&stats.lat, 0.99)),
        metric("server sys/req", pair.server_syscalls / served),
        metric("client sys/req", pair.client_syscalls / served),
        metric("server us/req", pair.server_cpu * 1e6 / served),
    ])
}

/// The contenders of a request/response case with `conns` connections.
fn net_contenders(conns: usize) -> Vec<Contender> {
    let mut v = vec![
        Contender::Uring,
        Contender::Epoll,
        Contender::Pool,
        Contender::Deadline,
        Contender::TimeoutEach,
        Contender::Tokio,
        Contender::Monoio,
    ];
    if conns == 1 {
        v.push(Contender::Std);
    }
    if peer_hosted::available() {
        v.push(Contender::Hosted);
    }
    v
}

/// A request/response case.
fn net_case(workload: &'static str, name: String, placement: Placement, case: NetCase) -> Case {
    Case {
        workload,
        name,
        placement: placement.name(),
        contenders: net_contenders(case.conns),
        run: Box::new(move |c| run_net(c, placement, &case)),
        prepare: None,
        files: Vec::new(),
    }
}

/// A line of `len` bytes, newline included.
fn line(len: usize) -> Vec<u8> {
    let mut v = vec![b'x'; len - 1];
    v.push(b'\n');
    v
}

/// The warm-up before each measured socket run.
fn warmup(p: &Params) -> Duration {
    (p.duration / 5).max(Duration::from_millis(20))
}

/// Workload 2: line ping-pong, 100 B and 1 KiB lines, 1 to 256 connections,
/// client and server on the same core and on two.
fn pingpong_cases(p: &Params) -> Vec<Case> {
    let mut cases = Vec::new();
    for placement in [Placement::SameCore, Placement::DiffCores] {
        for len in [100usize, 1024] {
            for conns in [1usize, 16, 64, 256] {
                let case = NetCase {
                    conns,
                    req: line(len),
                    reply: Reply::Echo,
                    depth: 1,
                    duration: p.duration,
                    warmup: warmup(p),
                    cap: p.cap,
                };
                let name = format!("{len} B x{conns}");
                cases.push(net_case("pingpong", name, placement, case));
            }
        }
    }
    cases
}

/// Workload 3: pipelined PING/PONG, depth 1, 16, 64, with 1 and 64
/// connections; client and server on two cores.
fn pipeline_cases(p: &Params) -> Vec<Case> {
    let mut cases = Vec::new();
    for conns in [1usize, 64] {
        for depth in [1usize, 16, 64] {
            let case = NetCase {
                conns,
                req: b"PING\n".to_vec(),
                reply: Reply::Pong,
                depth,
                duration: p.duration,
                warmup: warmup(p),
                cap: p.cap,
            };
            let name = format!("depth {depth} x{conns}");
            cases.push(net_case("pipeline", name, Placement::DiffCores, case));
        }
    }
    cases
}

/// Size of each `write_all` of the bulk stream.
const BULK_CHUNK: usize = 16 << 10;

/// Buffers a pooled reader may hold in the one-connection streams (bulk,
/// codec): the pool's default.
const STREAM_PER_READER: usize = 8;

/// Workload 4: one bulk stream through `BufWriter` and `BufReader`.
fn bulk_case(p: &Params) -> Case {
    let (total, cap) = (p.bulk_bytes, p.cap);
    let pool = pool_for(1, cap, STREAM_PER_READER);
    let chunk: &'static [u8] = Box::leak(vec![b'x'; BULK_CHUNK].into_boxed_slice());
    let run = move |c: Contender| -> io::Result<Vec<Metric>> {
        let pair = run_pair(
            Placement::DiffCores,
            1,
            move |l| match c {
                Contender::Tokio => peer_tokio::bulk_recv(l, cap),
                Contender::Monoio => peer_monoio::bulk_recv(l, cap),
                Contender::Std => peer_std::bulk_recv(l, cap),
                c => ours::bulk_recv(mode(c, pool), l, cap),
            },
            move |a| match c {
                Contender::Tokio => peer_tokio::bulk_send(a, total, chunk, cap),
                Contender::Monoio => peer_monoio::bulk_send(a, total, chunk, cap),
                Contender::Std => peer_std::bulk_send(a, total, chunk, cap),
                c => ours::bulk_send(c.driver().expect("ours"), a, total, chunk, cap),
            },
        )?;
        let (bytes, secs) = pair.server;
        if bytes != total {
            return Err(io::Error::other(format!(
                "received {bytes} of {total} bytes"
            )));
        }
        let mib = bytes as f64 / f64::from(1 << 20);
        Ok(vec![
            metric("GB/s", bytes as f64 / secs / 1e9),
            metric("recv sys/MiB", pair.server_syscalls / mib),
            metric("send sys/MiB", pair.client_syscalls / mib),
            metric("recv CPU s/GB", pair.server_cpu / (bytes as f64 / 1e9)),
        ])
    };
    Case {
        workload: "bulk",
        name: format!("{} MiB", total >> 20),
        placement: Placement::DiffCores.name(),
        contenders: vec![
            Contender::Uring,
            Contender::Epoll,
            Contender::Pool,
            Contender::Tokio,
            Contender::Monoio,
            Contender::Std,
        ],
        run: Box::new(run),
        prepare: None,
        files: Vec::new(),
    }
}

/// Length of each line of the codec workload, newline included.
const CODEC_LINE: usize = 64;

/// Workload 5: a `LinesCodec` server, `FramedRead` over our `BufReader`
/// against `FramedRead` over a tokio `TcpStream`; a plain std client sends
/// the lines.
fn codec_case(p: &Params) -> Case {
    let cap = p.cap;
    let pool = pool_for(1, cap, STREAM_PER_READER);
    let n_lines = (p.codec_bytes / CODEC_LINE as u64).max(1);
    let data: Arc<[u8]> = line(CODEC_LINE)
        .iter()
        .copied()
        .cycle()
        .take(n_lines as usize * CODEC_LINE)
        .collect();
    let run = move |c: Contender| -> io::Result<Vec<Metric>> {
        let data = data.clone();
        let pair = run_pair(
            Placement::DiffCores,
            1,
            move |l| match c {
                Contender::Tokio => peer_tokio::codec_recv(l, cap),
                Contender::Hosted => peer_hosted::codec_recv(l, cap),
                Contender::Frames => ours::codec_recv(mode(c, pool), l, cap, false),
                c => ours::codec_recv(mode(c, pool), l, cap, true),
            },
            move |a| peer_std::blast(a, &data),
        )?;
        let (lines, secs) = pair.server;
        if lines != n_lines {
            return Err(io::Error::other(format!(
                "decoded {lines} of {n_lines} lines"
            )));
        }
        Ok(vec![
            metric("Mlines/s", lines as f64 / secs / 1e6),
            metric(
                "server sys/kline",
                pair.server_syscalls / lines as f64 * 1000.0,
            ),
            metric("server us/kline", pair.server_cpu * 1e9 / lines as f64),
        ])
    };
    Case {
        workload: "codec",
        name: format!("{CODEC_LINE} B lines, {} MiB", p.codec_bytes >> 20),
        placement: Placement::DiffCores.name(),
        contenders: [
            Contender::Uring,
            Contender::Epoll,
            Contender::Frames,
            Contender::Pool,
            Contender::Tokio,
            Contender::Hosted,
        ]
        .into_iter()
        .filter(|&c| c != Contender::Hosted || peer_hosted::available())
        .collect(),
        run: Box::new(run),
        prepare: None,
        files: Vec::new(),
    }
}
