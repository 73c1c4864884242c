//! Side-by-side comparison of uring-bufio (io_uring and epoll, ordinary and
//! pooled readers) with tokio, monoio, std and `cat`, reported as ratios.
//!
//! ```sh
//! cargo bench --bench compare                # the full run (several minutes)
//! cargo bench --bench compare -- --quick     # a short run that checks it all works
//! cargo bench --bench compare -- --help      # parameters
//! ```
//!
//! Every workload is a list of cases; each case runs its contenders in
//! turn (A B C A B C ...) for a number of rounds and reports the median and
//! the spread (min, max) of each figure. The table goes to stdout and the
//! figures to a CSV file (`<target dir>/compare.csv` unless `--csv`), which
//! `scripts/chart.py` turns into `docs/compare.svg`.

#[path = "compare/cases.rs"]
mod cases;
#[path = "compare/deadline.rs"]
mod deadline;
#[path = "compare/large.rs"]
mod large;
#[path = "compare/launcher.rs"]
mod launcher;
#[path = "compare/measure.rs"]
mod measure;
#[path = "compare/net.rs"]
mod net;
#[path = "compare/ours.rs"]
mod ours;
#[path = "compare/peer_hosted.rs"]
mod peer_hosted;
#[path = "compare/peer_monoio.rs"]
mod peer_monoio;
#[path = "compare/peer_std.rs"]
mod peer_std;
#[path = "compare/peer_tokio.rs"]
mod peer_tokio;
#[path = "compare/report.rs"]
mod report;
#[path = "compare/scan.rs"]
mod scan;

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use uring_bufio::DriverKind;

/// A contender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Contender {
    /// uring-bufio on io_uring: the figure every ratio is taken of.
    Uring,
    /// uring-bufio on epoll.
    Epoll,
    /// uring-bufio on io_uring, with its own `frames()` instead of
    /// tokio-util's `FramedRead` (codec workload only).
    Frames,
    /// uring-bufio on io_uring, its socket readers `BufReader::pooled`
    /// (multishot receive into the runtime's provided buffer ring; socket
    /// workloads only).
    Pool,
    /// uring-bufio on io_uring hosted on tokio (`--features hosted`).
    Hosted,
    /// `uring` whose server sets read deadlines on every reader
    /// (request/response workloads only; `compare/deadline.rs`).
    Deadline,
    /// `uring` whose server wraps every read call in `time::timeout`
    /// (request/response workloads only).
    TimeoutEach,
    /// tokio, current-thread runtime.
    Tokio,
    /// monoio, io_uring.
    Monoio,
    /// std, blocking.
    Std,
    /// `cat FILE > /dev/null` (line scan only).
    Cat,
    /// `large` workload: 1 MiB `write_bytes` (zero-copy sends).
    ZcSend,
    /// `large` workload: 1 MiB `write_all` (copied into the buffer).
    CopyAll,
    /// `large` workload: `io::copy_file` (splice).
    CopyFile,
    /// `large` workload: `BufReader<File>` + `write_all`.
    ReadWrite,
}

/// Every contender, in table order.
pub const ALL: [Contender; 15] = [
    Contender::Uring,
    Contender::Epoll,
    Contender::Frames,
    Contender::Pool,
    Contender::Hosted,
    Contender::Deadline,
    Contender::TimeoutEach,
    Contender::Tokio,
    Contender::Monoio,
    Contender::Std,
    Contender::Cat,
    Contender::ZcSend,
    Contender::CopyAll,
    Contender::CopyFile,
    Contender::ReadWrite,
];

impl Contender {
    /// Its name in tables, the CSV and `--contenders`.
    pub fn name(self) -> &'static str {
        match self {
            Contender::Uring => "uring",
            Contender::Epoll => "epoll",
            Contender::Frames => "frames",
            Contender::Pool => "pool",
            Contender::Hosted => "hosted",
            Contender::Deadline => "deadline",
            Contender::TimeoutEach => "timeout",
            Contender::Tokio => "tokio",
            Contender::Monoio => "monoio",
            Contender::Std => "std",
            Contender::Cat => "cat",
            Contender::ZcSend => "zc_send",
            Contender::CopyAll => "copy_all",
            Contender::CopyFile => "copyfile",
            Contender::ReadWrite => "rd_wr",
        }
    }

    /// The backend of our contenders.
    pub fn driver(self) -> Option<DriverKind> {
        match self {
            Contender::Uring | Contender::Frames | Contender::Pool => Some(DriverKind::IoUring),
            Contender::Epoll => Some(DriverKind::Epoll),
            _ => None,
        }
    }
}

/// One figure of one run.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// Name with its unit, as in the table and the CSV.
    pub name: &'static str,
    /// The figure.
    pub value: f64,
}

/// Shorthand for a [`Metric`].
pub fn metric(name: &'static str, value: f64) -> Metric {
    Metric { name, value }
}

/// The parameters of a run.
#[derive(Debug, Clone)]
pub struct Params {
    /// Rounds of every case.
    pub rounds: usize,
    /// Measured seconds of each timed socket run.
    pub duration: Duration,
    /// Size of the scanned files.
    pub scan_bytes: u64,
    /// Bytes of the bulk stream.
    pub bulk_bytes: u64,
    /// Bytes of lines sent in the codec workload.
    pub codec_bytes: u64,
    /// Buffer size of every reader and writer.
    pub cap: usize,
    /// Workloads to run.
    pub only: Vec<String>,
    /// Contenders to run.
    pub contenders: Vec<Contender>,
    /// Only cases whose name contains this.
    pub filter: Option<String>,
    /// Where the CSV goes.
    pub csv: PathBuf,
    /// Worker counts of the `cores` workload.
    pub workers: Vec<usize>,
    /// Threads of the `cores` workload's client process.
    pub client_threads: usize,
    /// Bytes of each `large` case (the file's size, the 1 MiB writes' total).
    pub large_bytes: u64,
}

/// The workloads, by name.
pub const WORKLOADS: [&str; 7] = [
    "scan", "pingpong", "pipeline", "bulk", "codec", "cores", "large",
];

const HELP: &str = "\
compare: uring-bufio against tokio, monoio, std and cat

  --quick            short run (2 rounds, 16 MiB file, 50 ms runs, 64 MiB bulk and large)
  --rounds N         rounds per case (default 5)
  --duration SECS    measured seconds per socket run (default 0.5)
  --scan-bytes SIZE  size of each scanned file (default 1G)
  --bulk-bytes SIZE  bytes of the bulk stream (default 4G)
  --codec-bytes SIZE bytes of lines in the codec workload (default 256M)
  --large-bytes SIZE bytes of each large case (file, 1 MiB writes; default 1G)
  --cap SIZE         buffer size of every reader and writer (default 64K)
  --only LIST        workloads: scan,pingpong,pipeline,bulk,codec,cores,large
                     (large: 1 MiB write_bytes against write_all, and
                     copy_file against read+write_all and std io::copy)
                     (cores: the launcher with N workers against tokio's
                     multi-thread runtime with N threads, client process apart)
  --workers LIST     worker counts of the cores workload (default 1,2)
  --client-threads N threads of the cores workload's client (default 1)
  --contenders LIST  uring,epoll,frames,pool,hosted,deadline,timeout,tokio,
                     monoio,std,cat,zc_send,copy_all,copyfile,rd_wr
                     (pool: pooled readers, socket workloads only;
                     hosted: needs --features hosted; deadline, timeout:
                     the uring server with read deadlines on every reader,
                     or time::timeout around every read; pingpong and
                     pipeline only)
  --filter TEXT      only cases whose name contains TEXT
  --csv PATH         CSV output (default <target dir>/compare.csv)
SIZE takes K, M, G suffixes (powers of 1024).";

/// A size such as `64K` or `4G`.
fn parse_size(s: &str) -> Result<u64, String> {
    let (num, shift) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    num.parse::<u64>()
        .map(|n| n << shift)
        .map_err(|e| format!("bad size {s:?}: {e}"))
}

/// `<target dir>/compare.csv`, found from this executable's path
/// (`<target dir>/release/deps/compare-<hash>`).
fn default_csv() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("compare.csv")
}

/// Parses the command line (`cargo bench` adds `--bench`, ignored).
fn parse_args(args: impl Iterator<Item = String>) -> Result<Params, String> {
    let mut p = Params {
        rounds: 5,
        duration: Duration::from_millis(500),
        scan_bytes: 1 << 30,
        bulk_bytes: 4 << 30,
        codec_bytes: 256 << 20,
        cap: 64 << 10,
        only: WORKLOADS.iter().map(|s| s.to_string()).collect(),
        contenders: ALL.to_vec(),
        filter: None,
        csv: default_csv(),
        workers: vec![1, 2],
        client_threads: 1,
        large_bytes: 1 << 30,
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--bench" => {}
            "--help" | "-h" => return Err(HELP.to_string()),
            "--quick" => {
                p.rounds = 2;
                p.duration = Duration::from_millis(50);
                p.scan_bytes = 16 << 20;
                p.bulk_bytes = 64 << 20;
                p.codec_bytes = 8 << 20;
                p.large_bytes = 64 << 20;
            }
            "--rounds" => p.rounds = value()?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--duration" => {
                let secs: f64 = value()?.parse().map_err(|e| format!("--duration: {e}"))?;
                p.duration = Duration::from_secs_f64(secs);
            }
            "--scan-bytes" => p.scan_bytes = parse_size(&value()?)?,
            "--bulk-bytes" => p.bulk_bytes = parse_size(&value()?)?,
            "--codec-bytes" => p.codec_bytes = parse_size(&value()?)?,
            "--large-bytes" => p.large_bytes = parse_size(&value()?)?,
            "--cap" => p.cap = parse_size(&value()?)? as usize,
            "--only" => p.only = value()?.split(',').map(str::to_string).collect(),
            "--contenders" => {
                p.contenders = value()?
                    .split(',')
                    .map(|n| {
                        ALL.into_iter()
                            .find(|c| c.name() == n)
                            .ok_or(format!("unknown contender {n:?}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--filter" => p.filter = Some(value()?),
            "--csv" => p.csv = PathBuf::from(value()?),
            "--workers" => {
                p.workers = value()?
                    .split(',')
                    .map(|n| n.parse().map_err(|e| format!("--workers: {e}")))
                    .collect::<Result<_, _>>()?;
            }
            "--client-threads" => {
                p.client_threads = value()?
                    .parse()
                    .map_err(|e| format!("--client-threads: {e}"))?;
            }
            other => return Err(format!("unknown argument {other:?}\n\n{HELP}")),
        }
    }
    if let Some(w) = p.only.iter().find(|w| !WORKLOADS.contains(&w.as_str())) {
        return Err(format!("unknown workload {w:?}"));
    }
    Ok(p)
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(launcher::CLIENT_FLAG) {
        return launcher::client_main(&args[1..]);
    }
    let params = match parse_args(args.into_iter()) {
        Ok(p) => p,
        Err(msg) if msg == HELP => {
            println!("{HELP}");
            return Ok(());
        }
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    let dir = tempfile::tempdir()?;
    report::header(&params);
    let mut results = Vec::new();
    for case in cases::all(&params, dir.path())? {
        results.push(case.run(&params));
    }
    report::summary(&results);
    report::write_csv(&params.csv, &results)?;
    println!("\nCSV: {}", params.csv.display());
    Ok(())
}
