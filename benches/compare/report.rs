//! Output: the machine, a table per case, the summary of ratios, the CSV.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use crate::cases::CaseResult;
use crate::measure::{Spread, cpus};
use crate::{ALL, Contender, Params};

/// The first line of `path` that starts with `key`, after the colon.
fn proc_field(path: &str, key: &str) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

/// One line of a file, trimmed.
fn first_line(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.lines().next().unwrap_or("").trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Prints the machine and the parameters.
pub fn header(p: &Params) {
    println!("uring-bufio compare");
    println!(
        "machine: {} CPUs, {}, kernel {}",
        cpus(),
        proc_field("/proc/cpuinfo", "model name"),
        first_line("/proc/sys/kernel/osrelease")
    );
    println!("load average at start: {}", first_line("/proc/loadavg"));
    println!(
        "rounds {}, socket runs {:?} (+ warm-up), scan files {} MiB, bulk {} MiB, codec {} MiB, buffers {} KiB",
        p.rounds,
        p.duration,
        p.scan_bytes >> 20,
        p.bulk_bytes >> 20,
        p.codec_bytes >> 20,
        p.cap >> 10
    );
    println!("ratios are uring-bufio on io_uring over the contender (higher is better for us)\n");
}

/// A figure with three significant digits and a k/M/G suffix.
pub fn fmt_num(x: f64) -> String {
    if x.is_nan() {
        return "-".into();
    }
    let (v, suffix) = match x.abs() {
        a if a >= 1e9 => (x / 1e9, "G"),
        a if a >= 1e6 => (x / 1e6, "M"),
        a if a >= 1e4 => (x / 1e3, "k"),
        _ => (x, ""),
    };
    let digits = match v.abs() {
        a if a >= 100.0 => 0,
        a if a >= 10.0 => 1,
        a if a >= 1.0 => 2,
        _ => 3,
    };
    format!("{v:.digits$}{suffix}")
}

/// The median of the headline (first) metric of `c`, if it ran.
pub fn headline(r: &CaseResult, c: Contender) -> Option<f64> {
    let (_, figs) = r.figures.iter().find(|(x, _)| *x == c)?;
    let (_, values) = figs.first()?;
    Some(Spread::of(values).median)
}

/// Prints the table of one case.
pub fn case(r: &CaseResult) {
    let names: Vec<&str> = r
        .figures
        .iter()
        .flat_map(|(_, f)| f.iter().map(|(n, _)| *n))
        .fold(Vec::new(), |mut acc, n| {
            if !acc.contains(&n) {
                acc.push(n);
            }
            acc
        });
    let mut out = format!(
        "== {} | {} | {} ==\n{:<8}",
        r.workload, r.name, r.placement, ""
    );
    let widths: Vec<usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| if i == 0 { 28 } else { n.len().max(8) + 2 })
        .collect();
    for (n, width) in names.iter().zip(&widths) {
        let _ = write!(out, "{n:>width$}");
    }
    let _ = writeln!(out, "{:>12}", "uring/this");
    let ours = headline(r, Contender::Uring);
    for (c, figs) in &r.figures {
        let _ = write!(out, "{:<8}", c.name());
        for (i, n) in names.iter().enumerate() {
            let s = figs
                .iter()
                .find(|(m, _)| m == n)
                .map_or(Spread::of(&[]), |(_, v)| Spread::of(v));
            let cell = if i == 0 {
                format!(
                    "{} [{}-{}]",
                    fmt_num(s.median),
                    fmt_num(s.min),
                    fmt_num(s.max)
                )
            } else {
                fmt_num(s.median)
            };
            let width = widths[i];
            let _ = write!(out, "{cell:>width$}");
        }
        let ratio = match (ours, headline(r, *c)) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
            _ => "-".into(),
        };
        let _ = writeln!(out, "{ratio:>12}");
    }
    println!("{out}");
}

/// Prints the markdown table of ratios over all cases.
pub fn summary(results: &[CaseResult]) {
    let peers: Vec<Contender> = ALL
        .into_iter()
        .filter(|&c| c != Contender::Uring)
        .filter(|&c| results.iter().any(|r| headline(r, c).is_some()))
        .collect();
    let mut out = String::from("| workload | case | placement | figure | uring-bufio |");
    for p in &peers {
        let _ = write!(out, " vs {} |", p.name());
    }
    out.push_str("\n|---|---|---|---|---:|");
    out.push_str(&"---:|".repeat(peers.len()));
    out.push('\n');
    for r in results {
        let unit = r
            .figures
            .iter()
            .find_map(|(_, f)| f.first().map(|(n, _)| *n))
            .unwrap_or("");
        // Cases without the io_uring contender (`large`: ours against
        // ours) are read against their first contender, named in the cell.
        let (ours, label) = match headline(r, Contender::Uring) {
            Some(v) => (Some(v), fmt_num(v)),
            None => r
                .figures
                .iter()
                .find_map(|(c, _)| headline(r, *c).map(|v| (*c, v)))
                .map_or((None, "-".into()), |(c, v)| {
                    (Some(v), format!("{} ({})", fmt_num(v), c.name()))
                }),
        };
        let _ = write!(
            out,
            "| {} | {} | {} | {} | {label} |",
            r.workload, r.name, r.placement, unit
        );
        for p in &peers {
            let cell = match (ours, headline(r, *p)) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                _ => String::new(),
            };
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    println!("\nSummary: our figure (uring-bufio on io_uring) over each peer's, medians\n\n{out}");
}

/// A CSV field, quoted when it holds a comma or a quote.
fn field(s: &str) -> String {
    if s.contains([',', '"']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes every figure as CSV: one row per case, contender and metric.
pub fn write_csv(path: &Path, results: &[CaseResult]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        f,
        "workload,case,placement,contender,metric,headline,median,min,max,rounds,values"
    )?;
    for r in results {
        for (c, figs) in &r.figures {
            for (i, (name, values)) in figs.iter().enumerate() {
                let s = Spread::of(values);
                let joined: Vec<String> = values.iter().map(|v| format!("{v:.6}")).collect();
                writeln!(
                    f,
                    "{},{},{},{},{},{},{:.6},{:.6},{:.6},{},{}",
                    r.workload,
                    field(&r.name),
                    r.placement,
                    c.name(),
                    field(name),
                    u8::from(i == 0),
                    s.median,
                    s.min,
                    s.max,
                    values.len(),
                    joined.join(";")
                )?;
            }
        }
    }
    f.flush()
}
