//! The tokio contender: a current-thread runtime, `tokio::io::BufReader`
//! and `BufWriter` with the same capacity as ours.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio_util::codec::{FramedRead, LinesCodec};

use crate::net::{ClientStats, ConnStats, NetCase, Reply, eof, line_ok};

/// A current-thread runtime with IO (and its blocking pool, for files).
fn runtime() -> io::Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
}

/// Lines and bytes of a file: `fill_buf`, `memchr`, `consume` (a line cut
/// by the buffer's end is carried over in a `Vec`).
pub fn scan(path: &Path, cap: usize) -> io::Result<(u64, u64)> {
    runtime()?.block_on(async {
        let file = tokio::fs::File::open(path).await?;
        let mut r = BufReader::with_capacity(cap, file);
        let mut count = crate::scan::LineCount::default();
        loop {
            let buf = r.fill_buf().await?;
            if buf.is_empty() {
                return Ok(count.finish());
            }
            let n = buf.len();
            count.feed(buf);
            r.consume(n);
        }
    })
}

/// Accepts `case.conns` connections and answers each line until every
/// client closed; returns the requests answered.
pub fn serve(listener: std::net::TcpListener, case: &NetCase) -> io::Result<u64> {
    let (cap, reply, conns) = (case.cap, case.reply, case.conns);
    listener.set_nonblocking(true)?;
    runtime()?.block_on(async move {
        let listener = TcpListener::from_std(listener)?;
        let mut tasks = Vec::with_capacity(conns);
        for _ in 0..conns {
            let (socket, _) = listener.accept().await?;
            socket.set_nodelay(true)?;
            tasks.push(tokio::spawn(answer(socket, reply, cap)));
        }
        let mut served = 0;
        for t in tasks {
            served += t.await.map_err(io::Error::other)??;
        }
        Ok(served)
    })
}

/// One server connection, the idiomatic tokio way: `read_until` into a
/// reused `Vec`, replies flushed when no more input is buffered.
async fn answer(socket: TcpStream, reply: Reply, cap: usize) -> io::Result<u64> {
    let (r, w) = socket.into_split();
    let (mut r, mut w) = (
        BufReader::with_capacity(cap, r),
        BufWriter::with_capacity(cap, w),
    );
    let (mut line, mut served) = (Vec::with_capacity(1024), 0);
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).await? == 0 {
            break;
        }
        match reply {
            Reply::Echo => w.write_all(&line).await?,
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

/// Runs `case.conns` client connections until the deadline.
pub fn client(addr: SocketAddr, case: &NetCase) -> io::Result<ClientStats> {
    let case = Arc::new(case.clone());
    runtime()?.block_on(async move {
        let mut conns = Vec::with_capacity(case.conns);
        for _ in 0..case.conns {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            conns.push(stream);
        }
        let start = Instant::now();
        let tasks: Vec<_> = conns
            .into_iter()
            .map(|s| tokio::spawn(ask(s, case.clone(), start)))
            .collect();
        let mut stats = Vec::with_capacity(tasks.len());
        for t in tasks {
            stats.push(t.await.map_err(io::Error::other)??);
        }
        Ok(ClientStats::merge(stats))
    })
}

/// One client connection: batches of `depth` requests, then their replies.
async fn ask(socket: TcpStream, case: Arc<NetCase>, start: Instant) -> io::Result<ConnStats> {
    let (r, w) = socket.into_split();
    let (mut r, mut w) = (
        BufReader::with_capacity(case.cap, r),
        BufWriter::with_capacity(case.cap, w),
    );
    let mut stats = ConnStats::new(&case, start);
    let mut line = Vec::with_capacity(case.req.len());
    while let Some(t) = stats.next_batch() {
        for _ in 0..case.depth {
            w.write_all(&case.req).await?;
        }
        w.flush().await?;
        for _ in 0..case.depth {
            line.clear();
            if r.read_until(b'\n', &mut line).await? == 0 {
                return Err(eof());
            }
            line_ok(&line[..line.len() - 1], &case)?;
        }
        stats.done(t);
    }
    w.shutdown().await?;
    while r.read_until(b'\n', &mut line).await? > 0 {}
    Ok(stats)
}

/// Sends `total` bytes in `chunk`-sized writes through a `BufWriter`.
pub fn bulk_send(addr: SocketAddr, total: u64, chunk: &[u8], cap: usize) -> io::Result<()> {
    runtime()?.block_on(async {
        let mut w = BufWriter::with_capacity(cap, TcpStream::connect(addr).await?);
        let mut left = total;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            w.write_all(&chunk[..n]).await?;
            left -= n as u64;
        }
        w.shutdown().await
    })
}

/// Receives one connection to its end through a `BufReader`.
pub fn bulk_recv(listener: std::net::TcpListener, cap: usize) -> io::Result<(u64, f64)> {
    listener.set_nonblocking(true)?;
    runtime()?.block_on(async {
        let (socket, _) = TcpListener::from_std(listener)?.accept().await?;
        let start = Instant::now();
        let mut r = BufReader::with_capacity(cap, socket);
        let mut n = 0u64;
        loop {
            let len = r.fill_buf().await?.len();
            if len == 0 {
                return Ok((n, start.elapsed().as_secs_f64()));
            }
            n += len as u64;
            r.consume(len);
        }
    })
}

/// Counts the lines of one connection with `FramedRead` over a tokio
/// `TcpStream`.
pub fn codec_recv(listener: std::net::TcpListener, cap: usize) -> io::Result<(u64, f64)> {
    listener.set_nonblocking(true)?;
    runtime()?.block_on(async {
        let (socket, _) = TcpListener::from_std(listener)?.accept().await?;
        let start = Instant::now();
        let codec = LinesCodec::new_with_max_length(cap);
        let mut frames = FramedRead::with_capacity(socket, codec, cap);
        let mut lines = 0u64;
        while let Some(line) = frames.next().await {
            line.map_err(io::Error::other)?;
            lines += 1;
        }
        Ok((lines, start.elapsed().as_secs_f64()))
    })
}
