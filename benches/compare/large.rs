//! Workload `large`: large responses over TCP loopback, measured at the
//! sender (docs/large-responses.md).
//!
//! * `1 MiB writes`: `BufWriter::write_bytes` of a 1 MiB `Bytes` (zero-copy
//!   sends, `zc_send`) against `write_all` of the same 1 MiB slice
//!   (copied into the writer's buffer, `copy_all`);
//! * `file`: a page-cached file sent with `io::copy_file` (splice through
//!   a pipe, `copyfile`), with `BufReader<File>` + `write_all` (`rd_wr`),
//!   and with std's `io::copy` from a std `File` to a std `TcpStream`
//!   (`std`: sendfile).
//!
//! The sender is the thread that accepts (pinned to CPU 0). `send CPU
//! s/GB` is the process's CPU time less the receiver thread's: the
//! sender's thread and the io-wq workers its splices run in (which
//! `send thread s/GB`, the sender's thread alone, misses). The receiver (CPU 1) is the same for
//! every contender: a blocking std read loop, whose time from connect to
//! end of stream gives GB/s.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::Bytes;
use uring_bufio::io::{BufReader, BufWriter, copy_file, zero_copy_usage};
use uring_bufio::net::{TcpListener, TcpStream};
use uring_bufio::{DriverKind, Runtime, fs::File};

use crate::cases::Case;
use crate::measure::{process_cpu_secs, thread_cpu_secs};
use crate::net::{Placement, run_pair};
use crate::{Contender, Metric, Params, metric};

/// Size of each write of the `1 MiB writes` case.
const CHUNK: usize = 1 << 20;

/// The two cases of the workload; the file (`p.large_bytes`) is written
/// into `dir` and read once so that it is in the page cache.
pub fn cases(p: &Params, dir: &Path) -> io::Result<Vec<Case>> {
    let (total, cap) = (p.large_bytes, p.cap);
    let writes = move |c: Contender| sender_run(c, move |l| send_writes(c, l, total, cap));
    let file = dir.join("large.bin");
    write_file(&file, total)?;
    let sends = move |c: Contender| {
        let path: PathBuf = file.clone();
        sender_run(c, move |l| send_file(c, l, &path, cap))
    };
    Ok(vec![
        Case::socket(
            "large",
            format!("{} x 1 MiB writes", total / CHUNK as u64),
            Placement::DiffCores.name(),
            vec![Contender::ZcSend, Contender::CopyAll],
            Box::new(writes),
        ),
        Case::socket(
            "large",
            format!("file {} MiB", total >> 20),
            Placement::DiffCores.name(),
            vec![Contender::CopyFile, Contender::ReadWrite, Contender::Std],
            Box::new(sends),
        ),
    ])
}

/// Writes `len` bytes to `path`, then reads them back (page cache).
fn write_file(path: &Path, len: u64) -> io::Result<()> {
    use std::io::Write;
    let block = vec![b'y'; CHUNK];
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut left = len;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        f.write_all(&block[..n])?;
        left -= n as u64;
    }
    f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    io::copy(&mut std::fs::File::open(path)?, &mut io::sink())?;
    Ok(())
}

/// Runs `send` as the accepting thread and a std receiver; reports GB/s,
/// the sender's CPU per GB and (zero-copy sends only) how many of the
/// kernel's notifications said it copied after all.
fn sender_run(
    c: Contender,
    send: impl FnOnce(std::net::TcpListener) -> io::Result<u64> + Send + 'static,
) -> io::Result<Vec<Metric>> {
    let before = zero_copy_usage();
    let cpu = process_cpu_secs();
    let pair = run_pair(Placement::DiffCores, 1, send, receive)?;
    // The whole process's CPU but the receiver's thread: the sender's
    // thread and the io-wq workers it handed splices to.
    let (bytes, secs, recv_cpu) = pair.client;
    let send_cpu = process_cpu_secs() - cpu - recv_cpu;
    if bytes != pair.server {
        return Err(io::Error::other(format!(
            "{}: received {bytes} of {} bytes",
            c.name(),
            pair.server
        )));
    }
    let after = zero_copy_usage();
    let notes = (after.notifications - before.notifications) as f64;
    let copied = (after.copied - before.copied) as f64;
    let gb = bytes as f64 / 1e9;
    Ok(vec![
        metric("GB/s", gb / secs),
        metric("send CPU s/GB", send_cpu / gb),
        metric("send thread s/GB", pair.server_cpu / gb),
        metric("zc notifs", notes),
        metric("zc copied", copied),
    ])
}

/// Connects and reads to end of stream; returns bytes, seconds, and the
/// CPU seconds of this (the receiver's) thread.
fn receive(addr: std::net::SocketAddr) -> io::Result<(u64, f64, f64)> {
    let cpu = thread_cpu_secs();
    let mut s = std::net::TcpStream::connect(addr)?;
    let start = Instant::now();
    let mut buf = vec![0u8; 256 << 10];
    let mut n = 0u64;
    loop {
        match s.read(&mut buf)? {
            0 => {
                let secs = start.elapsed().as_secs_f64();
                return Ok((n, secs, thread_cpu_secs() - cpu));
            }
            k => n += k as u64,
        }
    }
}

/// An io_uring runtime with the default zero-copy threshold.
fn runtime() -> io::Result<Runtime> {
    Runtime::builder().driver(DriverKind::IoUring).build()
}

/// Accepts one connection and sends `total` bytes in 1 MiB writes:
/// `write_bytes` (`ZcSend`) or `write_all` (`CopyAll`).
fn send_writes(c: Contender, l: std::net::TcpListener, total: u64, cap: usize) -> io::Result<u64> {
    let chunk = Bytes::from(vec![b'x'; CHUNK]);
    runtime()?.block_on(async {
        let (socket, _) = TcpListener::from_std(l).accept().await?;
        let mut w = BufWriter::with_capacity(cap, socket);
        let mut left = total;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            match c {
                Contender::ZcSend => w.write_bytes(chunk.slice(..n)).await?,
                _ => w.write_all(&chunk[..n]).await?,
            }
            left -= n as u64;
        }
        w.shutdown().await?;
        Ok(total)
    })
}

/// Accepts one connection and sends the file at `path`: `copy_file`,
/// `BufReader<File>` + `write_all`, or std's `io::copy`.
fn send_file(c: Contender, l: std::net::TcpListener, path: &Path, cap: usize) -> io::Result<u64> {
    if c == Contender::Std {
        let (mut s, _) = l.accept()?;
        return io::copy(&mut std::fs::File::open(path)?, &mut s);
    }
    runtime()?.block_on(async {
        let (socket, _) = TcpListener::from_std(l).accept().await?;
        let mut w = BufWriter::with_capacity(cap, socket);
        let file = File::open(path).await?;
        let n = match c {
            Contender::CopyFile => copy_file(&file, &mut w, ..).await?,
            _ => read_write(file, &mut w, cap).await?,
        };
        w.shutdown().await?;
        Ok(n)
    })
}

/// Copies `file` into `w` through a `BufReader` and `write_all`.
async fn read_write(file: File, w: &mut BufWriter<TcpStream>, cap: usize) -> io::Result<u64> {
    let mut r = BufReader::with_capacity(cap, file);
    let mut n = 0u64;
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(n);
        }
        let len = buf.len();
        w.write_all(buf).await?;
        r.consume(len);
        n += len as u64;
    }
}
