//! The uring-bufio contenders: on either backend, with ordinary readers or
//! with pooled ones (`BufReader::pooled`, receiving into the runtime's pool).

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use futures_util::StreamExt;
use tokio_util::codec::{FramedRead, LinesCodec};
use uring_bufio::io::{BufReader, BufWriter};
use uring_bufio::net::{TcpListener, TcpStream};
use uring_bufio::{DriverKind, PoolConfig, ReadSource, Runtime, fs::File, spawn};

use crate::net::{ClientStats, ConnStats, NetCase, Reply, eof, line_ok};

/// How one of our contenders runs.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    /// The backend.
    pub kind: DriverKind,
    /// `Some`: socket readers are `BufReader::pooled`, over a runtime pool
    /// sized so; `None`: `BufReader::with_capacity`.
    pub pool: Option<PoolConfig>,
}

impl Mode {
    /// Ordinary readers on `kind`.
    pub fn plain(kind: DriverKind) -> Mode {
        Mode { kind, pool: None }
    }

    /// A runtime on the backend, with the pool if there is one.
    fn runtime(&self) -> io::Result<Runtime> {
        let mut builder = Runtime::builder();
        builder.driver(self.kind);
        if let Some(pool) = self.pool {
            builder.pool(pool);
        }
        builder.build()
    }

    /// A socket reader: pooled, or reading `cap` bytes at a time.
    fn reader<S: ReadSource>(&self, cap: usize, source: S) -> BufReader<S> {
        match self.pool {
            Some(_) => BufReader::pooled(source),
            None => BufReader::with_capacity(cap, source),
        }
    }

    /// After a reader's first read: in the pooled mode it must really be
    /// pooled (it falls back to ordinary reads where the kernel lacks
    /// provided buffer rings or multishot receive, which would measure the
    /// `uring` contender under another name).
    fn check_reader<S: ReadSource>(&self, r: &BufReader<S>) -> io::Result<()> {
        if self.pool.is_some() && !r.is_pooled() {
            return Err(io::Error::other(
                "BufReader::pooled fell back to ordinary reads: no pool on this kernel",
            ));
        }
        Ok(())
    }

    /// Runs `f` on a fresh runtime; in the pooled mode, checks afterwards
    /// that the pool was used and that every buffer came back to it.
    fn block_on<T>(&self, f: impl std::future::Future<Output = io::Result<T>>) -> io::Result<T> {
        let rt = self.runtime()?;
        let out = rt.block_on(f)?;
        if self.pool.is_some() {
            let stats = rt
                .pool_stats()
                .ok_or_else(|| io::Error::other("pooled run never built the pool"))?;
            if stats.out != 0 || stats.free != stats.buffers {
                return Err(io::Error::other(format!(
                    "pool buffers not all back after the run: {stats:?}"
                )));
            }
        }
        Ok(out)
    }
}

/// Lines and bytes of a file, read with `next_line`.
pub fn scan(kind: DriverKind, path: &Path, cap: usize) -> io::Result<(u64, u64)> {
    Mode::plain(kind).runtime()?.block_on(async {
        let mut r = BufReader::with_capacity(cap, File::open(path).await?);
        let (mut lines, mut bytes) = (0u64, 0u64);
        while let Some(line) = r.next_line().await? {
            lines += 1;
            bytes += line.len() as u64 + 1;
        }
        Ok((lines, bytes))
    })
}

/// Accepts `case.conns` connections and answers each line until every
/// client closed; returns the requests answered.
pub fn serve(mode: Mode, listener: std::net::TcpListener, case: &NetCase) -> io::Result<u64> {
    let (cap, reply) = (case.cap, case.reply);
    mode.block_on(async move {
        let listener = TcpListener::from_std(listener);
        let mut tasks = Vec::with_capacity(case.conns);
        for _ in 0..case.conns {
            let (socket, _) = listener.accept().await?;
            socket.set_nodelay(true)?;
            tasks.push(spawn(answer(mode, socket, reply, cap)));
        }
        let mut served = 0;
        for t in tasks {
            served += t.await.map_err(|e| io::Error::other(e.to_string()))??;
        }
        Ok(served)
    })
}

/// One server connection: a reply per line, flushed when no more input is
/// buffered (one send per batch of pipelined requests).
async fn answer(mode: Mode, socket: TcpStream, reply: Reply, cap: usize) -> io::Result<u64> {
    let (r, w) = socket.into_split();
    let (mut r, mut w) = (mode.reader(cap, r), BufWriter::with_capacity(cap, w));
    let mut served = 0;
    while let Some(line) = r.next_line().await? {
        match reply {
            Reply::Echo => {
                w.write_all(line).await?;
                w.write_all(b"\n").await?;
            }
            Reply::Pong => w.write_all(b"PONG\n").await?,
        }
        served += 1;
        if r.buffer().is_empty() {
            w.flush().await?;
        }
    }
    mode.check_reader(&r)?;
    w.shutdown().await?;
    Ok(served)
}

/// Runs `case.conns` client connections until the deadline.
pub fn client(mode: Mode, addr: SocketAddr, case: &NetCase) -> io::Result<ClientStats> {
    let case = Rc::new(case.clone());
    mode.block_on(async move {
        let mut conns = Vec::with_capacity(case.conns);
        for _ in 0..case.conns {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            conns.push(stream);
        }
        let start = Instant::now();
        let tasks: Vec<_> = conns
            .into_iter()
            .map(|s| spawn(ask(mode, s, case.clone(), start)))
            .collect();
        let mut stats = Vec::with_capacity(tasks.len());
        for t in tasks {
            stats.push(t.await.map_err(|e| io::Error::other(e.to_string()))??);
        }
        Ok(ClientStats::merge(stats))
    })
}

/// One client connection: batches of `depth` requests, then their replies.
async fn ask(
    mode: Mode,
    socket: TcpStream,
    case: Rc<NetCase>,
    start: Instant,
) -> io::Result<ConnStats> {
    let (r, w) = socket.into_split();
    let (mut r, mut w) = (
        mode.reader(case.cap, r),
        BufWriter::with_capacity(case.cap, w),
    );
    let mut stats = ConnStats::new(&case, start);
    while let Some(t) = stats.next_batch() {
        for _ in 0..case.depth {
            w.write_all(&case.req).await?;
        }
        w.flush().await?;
        for _ in 0..case.depth {
            let line = r.next_line().await?.ok_or_else(eof)?;
            line_ok(line, &case)?;
        }
        stats.done(t);
    }
    w.shutdown().await?;
    while r.next_line().await?.is_some() {}
    mode.check_reader(&r)?;
    Ok(stats)
}

/// Sends `total` bytes in `chunk`-sized writes through a `BufWriter`.
pub fn bulk_send(
    kind: DriverKind,
    addr: SocketAddr,
    total: u64,
    chunk: &[u8],
    cap: usize,
) -> io::Result<()> {
    Mode::plain(kind).runtime()?.block_on(async {
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

/// Receives one connection to its end through a `BufReader`; returns the
/// bytes and the seconds from accept to end.
pub fn bulk_recv(
    mode: Mode,
    listener: std::net::TcpListener,
    cap: usize,
) -> io::Result<(u64, f64)> {
    mode.block_on(async {
        let (socket, _) = TcpListener::from_std(listener).accept().await?;
        let start = Instant::now();
        let mut r = mode.reader(cap, socket);
        let mut n = 0u64;
        loop {
            let len = r.fill_buf().await?.len();
            if len == 0 {
                let secs = start.elapsed().as_secs_f64();
                mode.check_reader(&r)?;
                return Ok((n, secs));
            }
            n += len as u64;
            r.consume(len);
        }
    })
}

/// Counts the lines of one connection with tokio-util's `FramedRead` over
/// our `BufReader` (`framed`), or with our own `frames()`; returns lines and
/// seconds from accept to end.
pub fn codec_recv(
    mode: Mode,
    listener: std::net::TcpListener,
    cap: usize,
    framed: bool,
) -> io::Result<(u64, f64)> {
    mode.block_on(async {
        let (socket, _) = TcpListener::from_std(listener).accept().await?;
        let start = Instant::now();
        let reader = mode.reader(cap, socket);
        let codec = LinesCodec::new_with_max_length(cap);
        let mut lines = 0u64;
        let secs = if framed {
            let mut frames = FramedRead::with_capacity(reader, codec, cap);
            while let Some(line) = frames.next().await {
                line.map_err(io::Error::other)?;
                lines += 1;
            }
            let secs = start.elapsed().as_secs_f64();
            mode.check_reader(frames.get_ref())?;
            secs
        } else {
            let mut frames = reader.frames(codec);
            while let Some(line) = frames.next().await {
                line.map_err(io::Error::other)?;
                lines += 1;
            }
            let secs = start.elapsed().as_secs_f64();
            mode.check_reader(frames.get_ref())?;
            secs
        };
        Ok((lines, secs))
    })
}
