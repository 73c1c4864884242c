//! Helpers for the launcher tests: a line server's handler, blocking
//! clients, fd accounting.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use uring_bufio::io::BufStream;
use uring_bufio::launch::{Connection, Launcher, Running, Server, WorkerStats};
use uring_bufio::net::TcpStream;

/// Longest a client waits for a reply: only a hang reaches it.
pub const REPLY_LIMIT: Duration = Duration::from_secs(10);

/// Replies `"{worker}:{line}"` to each line until the peer closes or
/// shutdown begins; on shutdown it finishes with `"bye"`.
pub async fn line_handler(stream: TcpStream, conn: Connection) -> io::Result<()> {
    let mut stream = BufStream::new(stream);
    loop {
        let next = conn.shutdown().run_until_begun(stream.next_line()).await;
        let reply = match next {
            None => "bye".to_string(),
            Some(line) => match line? {
                None => break,
                Some(line) => format!("{}:{}", conn.worker(), String::from_utf8_lossy(line)),
            },
        };
        stream.write_all(reply.as_bytes()).await?;
        stream.write_all(b"\n").await?;
        stream.flush().await?;
        if reply == "bye" {
            break;
        }
    }
    stream.shutdown().await
}

/// A server on 127.0.0.1, port 0, `workers` workers, no signal handlers.
pub fn server(workers: usize) -> Server {
    let mut server = Server::new("127.0.0.1:0".parse().unwrap());
    let mut launcher = Launcher::new();
    launcher.workers(workers).thread_name("test-worker");
    server.launcher(launcher).shutdown_on_signals(false);
    server
}

/// A blocking client connection that reads lines.
pub struct Client {
    /// The reading side.
    reader: BufReader<std::net::TcpStream>,
    /// The writing side (a clone of the same socket).
    writer: std::net::TcpStream,
}

impl Client {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> io::Result<Client> {
        let stream = std::net::TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(REPLY_LIMIT))?;
        Ok(Client {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
        })
    }

    /// Sends `line` and a newline.
    pub fn send(&mut self, line: &str) -> io::Result<()> {
        self.writer.write_all(format!("{line}\n").as_bytes())
    }

    /// The next line without its newline; `None` at end of stream.
    pub fn line(&mut self) -> io::Result<Option<String>> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        Ok(Some(line.trim_end().to_string()))
    }

    /// Sends `line` and returns the reply.
    pub fn ask(&mut self, line: &str) -> io::Result<String> {
        self.send(line)?;
        self.line()?
            .ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
    }

    /// Sets how long a read may wait.
    pub fn read_timeout(&self, limit: Duration) -> io::Result<()> {
        self.writer.set_read_timeout(Some(limit))
    }
}

/// Number of open fds of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// Waits (up to 2 s) for the fd count to come back to `start`; returns the
/// last count seen.
pub fn settle_fds(start: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let now = fd_count();
        if now == start || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits (up to 10 s) until `cond` holds; false if it never did.
pub fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

/// Joins `running`, failing the test if that takes longer than `limit`.
pub fn join_within(running: Running, limit: Duration) -> Vec<WorkerStats> {
    let (done, joined) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(running.join()));
    match joined.recv_timeout(limit) {
        Ok(result) => result.expect("the server failed"),
        Err(_) => panic!("the server did not stop within {limit:?}"),
    }
}
