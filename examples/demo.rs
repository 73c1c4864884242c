//! The crate in one run, with no input or setup: counts the lines of a
//! temporary file, runs a line-protocol server and client over loopback,
//! parks idle connections on pooled readers that hold no buffer, runs a
//! tokio-util codec over our reader, and says how fast and on which kernel
//! interface.
//!
//! `cargo run --release --example demo` (add `URING_BUFIO_DRIVER=epoll` in
//! front to run it on the epoll backend).

use std::io;
use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec, LinesCodec};
use uring_bufio::fs::File;
use uring_bufio::io::{BufReader, BufWriter};
use uring_bufio::net::{TcpListener, TcpStream};
use uring_bufio::{Capability, DriverKind, PoolConfig, Runtime};

/// Lines in the demo file.
const FILE_LINES: usize = 1_000_000;
/// Request/response round trips, one at a time.
const ROUND_TRIPS: usize = 20_000;
/// Requests sent back to back before reading the answers.
const PIPELINED: usize = 200_000;
/// Idle connections parked on pooled readers (both ends in this process,
/// so twice as many fds: under the usual soft limit of 1024).
const IDLE: usize = 400;

fn main() -> io::Result<()> {
    let rt = Runtime::builder()
        .pool(PoolConfig::new().buffer_size(16 * 1024).buffers(16))
        .build()?;
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let kernel = kernel.trim();
    match rt.driver() {
        DriverKind::IoUring => println!(
            "kernel interface: io_uring (Linux {kernel}, deferred task-run: {}, provided buffer rings: {})",
            rt.has(Capability::DeferTaskrun),
            rt.has(Capability::BufRing)
        ),
        DriverKind::Epoll => println!(
            "kernel interface: epoll (Linux {kernel}; io_uring refused here, or {} chose epoll)",
            uring_bufio::DRIVER_ENV
        ),
    }
    let dir = std::env::temp_dir().join(format!("uring-bufio-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = rt.block_on(async {
        count_lines(&dir.join("lines.txt")).await?;
        line_protocol().await?;
        pooled_idle(&rt).await?;
        codecs().await
    });
    std::fs::remove_dir_all(&dir)?;
    result
}

/// Parks `IDLE` connections on pooled readers, shows that they hold no pool
/// buffer, then wakes each with a line.
async fn pooled_idle(rt: &Runtime) -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut clients = Vec::with_capacity(IDLE);
    let mut readers = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        clients.push(TcpStream::connect(addr).await?);
        let (socket, _) = listener.accept().await?;
        readers.push(uring_bufio::spawn(async move {
            let mut r = BufReader::pooled(socket);
            let line = r.next_line().await?.map(<[u8]>::len);
            Ok::<_, io::Error>((r.is_pooled(), line))
        }));
    }
    uring_bufio::time::sleep(std::time::Duration::from_millis(20)).await;
    let idle = rt.pool_stats();
    let start = Instant::now();
    for c in &clients {
        let (res, _) = c.write_all(Bytes::from_static(b"wake up\n")).await;
        res?;
    }
    let mut pooled = 0;
    for r in readers {
        let (was_pooled, line) = r.await??;
        assert_eq!(line, Some(7), "each reader gets its line");
        pooled += usize::from(was_pooled);
    }
    match idle {
        Some(s) => println!(
            "pooled readers: {IDLE} idle connections held {} of the pool's {} buffers of {} KiB \
             (ordinary 64 KiB readers would hold {} MiB once read from); all {pooled} woke with \
             their line in {:.2?}",
            s.out,
            s.buffers,
            s.buffer_size / 1024,
            IDLE * 64 / 1024,
            start.elapsed()
        ),
        None => println!(
            "pooled readers: this kernel has no provided buffer rings; {IDLE} readers read the \
             ordinary way"
        ),
    }
    Ok(())
}

/// Writes a file with BufWriter, then counts its lines with BufReader.
async fn count_lines(path: &std::path::Path) -> io::Result<()> {
    let start = Instant::now();
    let mut out = BufWriter::new(File::create(path).await?);
    for i in 0..FILE_LINES {
        out.write_all(
            format!("line {i}: the quick brown fox jumps over the lazy dog\n").as_bytes(),
        )
        .await?;
    }
    out.flush().await?;
    let written = start.elapsed();

    let start = Instant::now();
    let mut reader = BufReader::new(File::open(path).await?);
    let (mut lines, mut bytes) = (0usize, 0usize);
    while let Some(line) = reader.next_line().await? {
        lines += 1;
        bytes += line.len() + 1;
    }
    let read = start.elapsed();
    assert_eq!(lines, FILE_LINES);
    println!(
        "file: wrote {lines} lines ({:.1} MB) in {written:.2?}; counted them with next_line in {read:.2?} ({:.2} GB/s, {:.1} M lines/s)",
        bytes as f64 / 1e6,
        bytes as f64 / read.as_secs_f64() / 1e9,
        lines as f64 / read.as_secs_f64() / 1e6,
    );
    Ok(())
}

/// A line echo server and a client on 127.0.0.1, in this one thread.
async fn line_protocol() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = uring_bufio::spawn(async move {
        let (socket, _) = listener.accept().await?;
        socket.set_nodelay(true)?;
        let (r, w) = socket.into_split();
        let (mut r, mut w) = (BufReader::new(r), BufWriter::new(w));
        let mut answered = 0usize;
        while let Some(line) = r.next_line().await? {
            let reply = if line == b"PING" {
                &b"PONG\n"[..]
            } else {
                &b"ERR\n"[..]
            };
            w.write_all(reply).await?;
            answered += 1;
            // Answer once everything that already arrived is handled.
            if r.buffer().is_empty() {
                w.flush().await?;
            }
        }
        w.shutdown().await?;
        Ok::<_, io::Error>(answered)
    });

    let socket = TcpStream::connect(addr).await?;
    socket.set_nodelay(true)?;
    let (r, w) = socket.into_split();
    let (mut r, mut w) = (BufReader::new(r), BufWriter::new(w));

    let start = Instant::now();
    for _ in 0..ROUND_TRIPS {
        w.write_all(b"PING\n").await?;
        w.flush().await?;
        assert_eq!(r.next_line().await?, Some(&b"PONG"[..]));
    }
    let one_by_one = start.elapsed();

    let start = Instant::now();
    let writer = uring_bufio::spawn(async move {
        for _ in 0..PIPELINED {
            w.write_all(b"PING\n").await?;
        }
        w.shutdown().await
    });
    let mut pongs = 0;
    while let Some(line) = r.next_line().await? {
        assert_eq!(line, b"PONG");
        pongs += 1;
    }
    let pipelined = start.elapsed();
    writer.await??;
    let answered = server.await??;
    assert_eq!((pongs, answered), (PIPELINED, ROUND_TRIPS + PIPELINED));
    println!(
        "tcp 127.0.0.1, client and server in one thread: {ROUND_TRIPS} round trips in {one_by_one:.2?} ({:.0}/s); {PIPELINED} pipelined requests in {pipelined:.2?} ({:.0}/s)",
        ROUND_TRIPS as f64 / one_by_one.as_secs_f64(),
        PIPELINED as f64 / pipelined.as_secs_f64(),
    );
    Ok(())
}

/// tokio-util codecs over our reader: FramedRead with LinesCodec, and
/// zero-copy frames() with LengthDelimitedCodec.
async fn codecs() -> io::Result<()> {
    let (a, b) = uring_bufio::net::UnixStream::pair()?;
    let sender = uring_bufio::spawn(async move {
        let mut w = BufWriter::new(a);
        for i in 0..10_000u32 {
            let body = format!("frame {i}");
            w.write_all(&(body.len() as u32).to_be_bytes()).await?;
            w.write_all(body.as_bytes()).await?;
        }
        w.shutdown().await
    });
    let start = Instant::now();
    let mut frames = BufReader::new(b).frames(LengthDelimitedCodec::new());
    let (mut n, mut shared) = (0, 0);
    let mut previous: Option<Bytes> = None;
    while let Some(frame) = frames.next().await {
        let frame = frame?.freeze();
        // Frames cut from one read lie back to back in the reader's buffer.
        if let Some(p) = &previous
            && p.as_ptr() as usize + p.len() + 4 == frame.as_ptr() as usize
        {
            shared += 1;
        }
        previous = Some(frame);
        n += 1;
    }
    sender.await??;
    println!(
        "frames(LengthDelimitedCodec) over a unix socket: {n} frames in {:.2?}, {shared} of them cut out of the reader's buffer next to the previous one (no copy)",
        start.elapsed()
    );

    let (a, b) = uring_bufio::net::UnixStream::pair()?;
    let sender = uring_bufio::spawn(async move {
        let mut w = BufWriter::new(a);
        for i in 0..10_000 {
            w.write_all(format!("codec line {i}\n").as_bytes()).await?;
        }
        w.shutdown().await
    });
    let mut lines = FramedRead::new(BufReader::new(b), LinesCodec::new());
    let mut n = 0;
    while let Some(line) = lines.next().await {
        let line = line.map_err(io::Error::other)?;
        assert_eq!(line, format!("codec line {n}"));
        n += 1;
    }
    sender.await??;
    println!(
        "tokio_util FramedRead<BufReader<UnixStream>, LinesCodec>: {n} lines, unchanged codec"
    );
    Ok(())
}
