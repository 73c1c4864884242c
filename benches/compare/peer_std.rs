//! The std contender: blocking IO, `std::io::BufReader`/`BufWriter` with
//! the same capacity as ours. One thread serves one connection, so it runs
//! only the single-connection cases.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Instant;

use crate::net::{ClientStats, ConnStats, NetCase, Reply, eof, line_ok};

/// Lines and bytes of a file: `fill_buf`, `memchr`, `consume`.
pub fn scan(path: &Path, cap: usize) -> io::Result<(u64, u64)> {
    let mut r = BufReader::with_capacity(cap, std::fs::File::open(path)?);
    let mut count = crate::scan::LineCount::default();
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(count.finish());
        }
        let n = buf.len();
        count.feed(buf);
        r.consume(n);
    }
}

/// Answers the lines of one connection; returns the requests answered.
pub fn serve(listener: std::net::TcpListener, case: &NetCase) -> io::Result<u64> {
    assert_eq!(case.conns, 1, "std serves one connection per thread");
    let (socket, _) = listener.accept()?;
    socket.set_nodelay(true)?;
    let mut r = BufReader::with_capacity(case.cap, socket.try_clone()?);
    let mut w = BufWriter::with_capacity(case.cap, socket);
    let (mut line, mut served) = (Vec::with_capacity(1024), 0);
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        match case.reply {
            Reply::Echo => w.write_all(&line)?,
            Reply::Pong => w.write_all(b"PONG\n")?,
        }
        served += 1;
        if r.buffer().is_empty() {
            w.flush()?;
        }
    }
    w.flush()?;
    w.get_ref().shutdown(std::net::Shutdown::Write)?;
    Ok(served)
}

/// One client connection until the deadline.
pub fn client(addr: SocketAddr, case: &NetCase) -> io::Result<ClientStats> {
    assert_eq!(case.conns, 1, "std runs one connection per thread");
    let socket = TcpStream::connect(addr)?;
    socket.set_nodelay(true)?;
    let mut r = BufReader::with_capacity(case.cap, socket.try_clone()?);
    let mut w = BufWriter::with_capacity(case.cap, socket);
    let mut stats = ConnStats::new(case, Instant::now());
    let mut line = Vec::with_capacity(case.req.len());
    while let Some(t) = stats.next_batch() {
        for _ in 0..case.depth {
            w.write_all(&case.req)?;
        }
        w.flush()?;
        for _ in 0..case.depth {
            line.clear();
            if r.read_until(b'\n', &mut line)? == 0 {
                return Err(eof());
            }
            line_ok(&line[..line.len() - 1], case)?;
        }
        stats.done(t);
    }
    w.get_ref().shutdown(std::net::Shutdown::Write)?;
    io::copy(&mut r, &mut io::sink())?;
    Ok(ClientStats::merge(vec![stats]))
}

/// Sends `total` bytes in `chunk`-sized writes through a `BufWriter`.
pub fn bulk_send(addr: SocketAddr, total: u64, chunk: &[u8], cap: usize) -> io::Result<()> {
    let mut w = BufWriter::with_capacity(cap, TcpStream::connect(addr)?);
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        w.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    w.flush()?;
    w.get_ref().shutdown(std::net::Shutdown::Write)
}

/// Receives one connection to its end through a `BufReader`.
pub fn bulk_recv(listener: std::net::TcpListener, cap: usize) -> io::Result<(u64, f64)> {
    let (socket, _) = listener.accept()?;
    let start = Instant::now();
    let mut r = BufReader::with_capacity(cap, socket);
    let mut n = 0u64;
    loop {
        let len = r.fill_buf()?.len();
        if len == 0 {
            return Ok((n, start.elapsed().as_secs_f64()));
        }
        n += len as u64;
        r.consume(len);
    }
}

/// Writes `data` to a new connection to `addr` in large writes, then
/// closes: the neutral client of the codec case.
pub fn blast(addr: SocketAddr, data: &[u8]) -> io::Result<()> {
    let mut socket = TcpStream::connect(addr)?;
    socket.write_all(data)?;
    socket.shutdown(std::net::Shutdown::Write)?;
    // Wait for the server to close, so that its timing includes every byte.
    socket.read_to_end(&mut Vec::new()).map(drop)
}
