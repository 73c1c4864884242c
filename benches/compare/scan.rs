//! Workload 1: line scan of a page-cached file, and `cat` as the ceiling.

use std::hint::black_box;
use std::io::{self, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Cuts lines out of the chunks a peer's `fill_buf` returns, the way a
/// borrowed-line loop must: `memchr` per line, and a line cut by the end of
/// the buffer carried over in a `Vec`.
#[derive(Debug, Default)]
pub struct LineCount {
    /// Complete lines seen.
    lines: u64,
    /// Bytes of complete lines, newline included.
    bytes: u64,
    /// The start of a line whose end is not buffered yet.
    carry: Vec<u8>,
}

impl LineCount {
    /// Takes one chunk.
    pub fn feed(&mut self, mut buf: &[u8]) {
        while let Some(i) = memchr::memchr(b'\n', buf) {
            let line = if self.carry.is_empty() {
                black_box(&buf[..i]).len()
            } else {
                self.carry.extend_from_slice(&buf[..i]);
                let n = black_box(&self.carry[..]).len();
                self.carry.clear();
                n
            };
            self.lines += 1;
            self.bytes += line as u64 + 1;
            buf = &buf[i + 1..];
        }
        self.carry.extend_from_slice(buf);
    }

    /// Lines and bytes, counting a last line without a newline.
    pub fn finish(self) -> (u64, u64) {
        let tail = self.carry.len() as u64;
        (self.lines + u64::from(tail > 0), self.bytes + tail)
    }
}

/// Writes a file of `total` bytes of `line_len`-byte lines (newline
/// included), then reads it once so that it is in the page cache.
pub fn make_file(path: &Path, line_len: usize, total: u64) -> io::Result<u64> {
    let mut line = vec![b'x'; line_len - 1];
    line.push(b'\n');
    let block: Vec<u8> = line
        .iter()
        .copied()
        .cycle()
        .take(line_len * ((1 << 20) / line_len).max(1))
        .collect();
    let mut out = io::BufWriter::new(std::fs::File::create(path)?);
    let mut written = 0u64;
    while written + block.len() as u64 <= total.max(block.len() as u64) {
        out.write_all(&block)?;
        written += block.len() as u64;
    }
    out.flush()?;
    io::copy(&mut std::fs::File::open(path)?, &mut io::sink())?;
    Ok(written / line_len as u64)
}

/// Seconds `cat FILE > /dev/null` takes, process start included.
pub fn cat(path: &Path) -> io::Result<f64> {
    let start = Instant::now();
    let status = Command::new("cat")
        .arg(path)
        .stdout(std::fs::File::create("/dev/null")?)
        .stdin(Stdio::null())
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!("cat failed: {status}")));
    }
    Ok(start.elapsed().as_secs_f64())
}
