//! The tokio-hosted contender: our streams (ordinary readers, io_uring) in
//! `spawn_local` tasks of a tokio current-thread runtime, the driver turned
//! by tokio's reactor (`uring_bufio::hosted`). The same code as the `uring`
//! contender otherwise, so the ratio between the two is the cost of the
//! extra wake-up path (eventfd, tokio's epoll, the driver task).
//!
//! Built with `--features hosted`; without it the contender is left out of
//! every case (see `available`).

/// Whether this build has the hosted contender.
pub fn available() -> bool {
    cfg!(feature = "hosted")
}

#[cfg(feature = "hosted")]
pub use imp::{client, codec_recv, serve};

#[cfg(not(feature = "hosted"))]
pub use absent::{client, codec_recv, serve};

#[cfg(feature = "hosted")]
mod imp {
    use std::io;
    use std::net::SocketAddr;
    use std::rc::Rc;
    use std::time::Instant;

    use futures_util::StreamExt;
    use tokio::task::spawn_local;
    use tokio_util::codec::{FramedRead, LinesCodec};
    use uring_bufio::io::{BufReader, BufWriter};
    use uring_bufio::net::{TcpListener, TcpStream};
    use uring_bufio::{DriverKind, Runtime};

    use crate::net::{ClientStats, ConnStats, NetCase, Reply, eof, line_ok};

    /// Runs `f` hosted on a new tokio runtime, on io_uring.
    fn start<T>(f: impl std::future::Future<Output = io::Result<T>>) -> io::Result<T> {
        Runtime::builder().driver(DriverKind::IoUring).start(f)?
    }

    /// Accepts `case.conns` connections and answers each line until every
    /// client closed; returns the requests answered.
    pub fn serve(listener: std::net::TcpListener, case: &NetCase) -> io::Result<u64> {
        let (cap, reply, conns) = (case.cap, case.reply, case.conns);
        start(async move {
            let listener = TcpListener::from_std(listener);
            let mut tasks = Vec::with_capacity(conns);
            for _ in 0..conns {
                let (socket, _) = listener.accept().await?;
                socket.set_nodelay(true)?;
                tasks.push(spawn_local(answer(socket, reply, cap)));
            }
            let mut served = 0;
            for t in tasks {
                served += t.await.map_err(io::Error::other)??;
            }
            Ok(served)
        })
    }

    /// One server connection, as the `uring` contender's.
    async fn answer(socket: TcpStream, reply: Reply, cap: usize) -> io::Result<u64> {
        let (r, w) = socket.into_split();
        let (mut r, mut w) = (
            BufReader::with_capacity(cap, r),
            BufWriter::with_capacity(cap, w),
        );
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
        w.shutdown().await?;
        Ok(served)
    }

    /// Runs `case.conns` client connections until the deadline.
    pub fn client(addr: SocketAddr, case: &NetCase) -> io::Result<ClientStats> {
        let case = Rc::new(case.clone());
        start(async move {
            let mut conns = Vec::with_capacity(case.conns);
            for _ in 0..case.conns {
                let stream = TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                conns.push(stream);
            }
            let start = Instant::now();
            let tasks: Vec<_> = conns
                .into_iter()
                .map(|s| spawn_local(ask(s, case.clone(), start)))
                .collect();
            let mut stats = Vec::with_capacity(tasks.len());
            for t in tasks {
                stats.push(t.await.map_err(io::Error::other)??);
            }
            Ok(ClientStats::merge(stats))
        })
    }

    /// One client connection: batches of `depth` requests, then replies.
    async fn ask(socket: TcpStream, case: Rc<NetCase>, start: Instant) -> io::Result<ConnStats> {
        let (r, w) = socket.into_split();
        let (mut r, mut w) = (
            BufReader::with_capacity(case.cap, r),
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
        Ok(stats)
    }

    /// Counts the lines of one connection with `FramedRead` over our
    /// `BufReader`; returns lines and seconds from accept to end.
    pub fn codec_recv(listener: std::net::TcpListener, cap: usize) -> io::Result<(u64, f64)> {
        start(async move {
            let (socket, _) = TcpListener::from_std(listener).accept().await?;
            let start = Instant::now();
            let reader = BufReader::with_capacity(cap, socket);
            let codec = LinesCodec::new_with_max_length(cap);
            let mut frames = FramedRead::with_capacity(reader, codec, cap);
            let mut lines = 0u64;
            while let Some(line) = frames.next().await {
                line.map_err(io::Error::other)?;
                lines += 1;
            }
            Ok((lines, start.elapsed().as_secs_f64()))
        })
    }
}

/// Stand-ins for a build without the feature (never called: `available`).
#[cfg(not(feature = "hosted"))]
mod absent {
    use std::io;
    use std::net::SocketAddr;

    use crate::net::{ClientStats, NetCase};

    /// The error every stand-in returns.
    fn absent<T>() -> io::Result<T> {
        Err(io::Error::other("built without --features hosted"))
    }

    pub fn serve(_: std::net::TcpListener, _: &NetCase) -> io::Result<u64> {
        absent()
    }

    pub fn client(_: SocketAddr, _: &NetCase) -> io::Result<ClientStats> {
        absent()
    }

    pub fn codec_recv(_: std::net::TcpListener, _: usize) -> io::Result<(u64, f64)> {
        absent()
    }
}
