//! The monoio contender: its io_uring runtime, `monoio::io::BufReader` and
//! `BufWriter` with the same capacity as ours. Writes pass owned buffers
//! (monoio's API), which come back to be reused.
//!
//! monoio 0.2.4's `BufWriter::write` decides whether to flush by comparing
//! the start of its unflushed bytes (always 0) plus the new bytes with its
//! size, but copies to their end: small writes that add up to more than
//! the buffer run past its heap allocation (the bulk stream crashed with
//! SIGSEGV in `memcpy`). Every write here goes through [`put`], which
//! flushes first when the bytes would not fit, as `BufWriter` means to.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use monoio::buf::{IoBufMut, IoVecBufMut};
use monoio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, BufReader,
    BufWriter, Splitable,
};
use monoio::net::{TcpListener, TcpStream};
use monoio::{BufResult, IoUringDriver, Runtime, RuntimeBuilder};

use crate::net::{ClientStats, ConnStats, NetCase, Reply, eof, line_ok};

/// `write_all` through a monoio `BufWriter` of `cap` bytes without
/// overrunning it (see the module docs); returns the buffer.
async fn put<W: AsyncWriteRent, T: monoio::buf::IoBuf + 'static>(
    w: &mut BufWriter<W>,
    buf: T,
    cap: usize,
) -> BufResult<(), T> {
    if w.buffer().len() + buf.bytes_init() > cap
        && let Err(e) = w.flush().await
    {
        return (Err(e), buf);
    }
    let (res, buf) = w.write_all(buf).await;
    (res.map(drop), buf)
}

/// A monoio io_uring runtime with as many entries as ours.
fn runtime() -> io::Result<Runtime<IoUringDriver>> {
    RuntimeBuilder::<IoUringDriver>::new()
        .with_entries(256)
        .build()
}

/// A file read from its start: monoio 0.2's `File` only has `read_at`, so
/// this keeps the offset for `BufReader`.
struct PosFile {
    /// The file.
    file: monoio::fs::File,
    /// Offset of the next read.
    pos: u64,
}

impl AsyncReadRent for PosFile {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        let (res, buf) = self.file.read_at(buf, self.pos).await;
        if let Ok(n) = res {
            self.pos += n as u64;
        }
        (res, buf)
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        (Err(io::ErrorKind::Unsupported.into()), buf)
    }
}

/// Lines and bytes of a file: `fill_buf`, `memchr`, `consume`.
pub fn scan(path: &Path, cap: usize) -> io::Result<(u64, u64)> {
    runtime()?.block_on(async {
        let file = monoio::fs::File::open(path).await?;
        let mut r = BufReader::with_capacity(cap, PosFile { file, pos: 0 });
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
    runtime()?.block_on(async move {
        let listener = TcpListener::from_std(listener)?;
        let mut tasks = Vec::with_capacity(conns);
        for _ in 0..conns {
            let (socket, _) = listener.accept().await?;
            socket.set_nodelay(true)?;
            tasks.push(monoio::spawn(answer(socket, reply, cap)));
        }
        let mut served = 0;
        for t in tasks {
            served += t.await?;
        }
        Ok(served)
    })
}

/// One server connection: `read_until` into a `Vec` that is then handed to
/// `write_all` and comes back; flushed when no more input is buffered.
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
            Reply::Echo => {
                let (res, back) = put(&mut w, line, cap).await;
                line = back;
                res?;
            }
            Reply::Pong => put(&mut w, &b"PONG\n"[..], cap).await.0?,
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
    let case = Rc::new(case.clone());
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
            .map(|s| monoio::spawn(ask(s, case.clone(), start)))
            .collect();
        let mut stats = Vec::with_capacity(tasks.len());
        for t in tasks {
            stats.push(t.await?);
        }
        Ok(ClientStats::merge(stats))
    })
}

/// One client connection: batches of `depth` requests, then their replies.
async fn ask(socket: TcpStream, case: Rc<NetCase>, start: Instant) -> io::Result<ConnStats> {
    let (r, w) = socket.into_split();
    let (mut r, mut w) = (
        BufReader::with_capacity(case.cap, r),
        BufWriter::with_capacity(case.cap, w),
    );
    let mut stats = ConnStats::new(&case, start);
    let (mut req, mut line) = (case.req.clone(), Vec::with_capacity(case.req.len()));
    while let Some(t) = stats.next_batch() {
        for _ in 0..case.depth {
            let (res, back) = put(&mut w, req, case.cap).await;
            req = back;
            res?;
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
pub fn bulk_send(addr: SocketAddr, total: u64, chunk: &'static [u8], cap: usize) -> io::Result<()> {
    runtime()?.block_on(async {
        let mut w = BufWriter::with_capacity(cap, TcpStream::connect(addr).await?);
        let mut left = total;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            put(&mut w, &chunk[..n], cap).await.0?;
            left -= n as u64;
        }
        w.shutdown().await
    })
}

/// Receives one connection to its end through a `BufReader`.
pub fn bulk_recv(listener: std::net::TcpListener, cap: usize) -> io::Result<(u64, f64)> {
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
