//! A TCP socket whose peer sends known bytes in random chunks with random
//! pauses, from a task on the reader's runtime or from a std thread, then
//! shuts down writing: reads see partial records at every boundary.

use std::io;
use std::net::Shutdown;
use std::time::Duration;

use bytes::Bytes;
use uring_bufio::net::{TcpListener, TcpStream};
use uring_bufio::time::sleep;

use super::Rng;

/// Which writer feeds a socket.
#[derive(Clone, Copy, Debug)]
pub enum Feed {
    /// A task on the reader's runtime, writing with `net::TcpStream`.
    Task,
    /// A std thread writing with `std::net::TcpStream`.
    Thread,
}

/// The peer writing into a socket.
pub enum Writer {
    /// A task on the reader's runtime.
    Task(uring_bufio::JoinHandle<io::Result<()>>),
    /// A std thread.
    Thread(std::thread::JoinHandle<io::Result<()>>),
}

impl Writer {
    /// Waits for the writer and returns its result.
    pub async fn finish(self) -> io::Result<()> {
        match self {
            Writer::Task(h) => h.await?,
            Writer::Thread(t) => t.join().expect("writer thread panicked"),
        }
    }
}

/// Chunks (size, pause in µs) to send `len` bytes in: sizes at random up to
/// 8, 256 or `largest` bytes; a pause of 0..2 ms after one chunk in four.
pub fn schedule(rng: &mut Rng, len: usize, largest: usize) -> Vec<(usize, u64)> {
    let mut plan = Vec::new();
    let mut left = len;
    while left > 0 {
        let top = [8, 256, largest, largest][rng.below(4)].min(largest);
        let n = (1 + rng.below(top)).min(left);
        let pause = if rng.below(4) == 0 {
            rng.below(2000) as u64
        } else {
            0
        };
        plan.push((n, pause));
        left -= n;
    }
    plan
}

/// A connected TCP socket on 127.0.0.1 whose peer sends `data` in the
/// chunks of [`schedule`] (`largest` up to), then shuts down writing.
pub async fn trickled(
    data: &[u8],
    seed: u64,
    largest: usize,
    feed: Feed,
) -> io::Result<(TcpStream, Writer)> {
    let plan = schedule(&mut Rng::new(seed), data.len(), largest);
    let data = Bytes::copy_from_slice(data);
    match feed {
        Feed::Task => {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let client = TcpStream::connect(listener.local_addr()?).await?;
            let (server, _) = listener.accept().await?;
            client.set_nodelay(true)?;
            let task = uring_bufio::spawn(async move {
                let mut at = 0;
                for (n, pause) in plan {
                    client.write_all(data.slice(at..at + n)).await.0?;
                    at += n;
                    sleep(Duration::from_micros(pause)).await;
                }
                client.shutdown(Shutdown::Write).await
            });
            Ok((server, Writer::Task(task)))
        }
        Feed::Thread => {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            let mut client = std::net::TcpStream::connect(listener.local_addr()?)?;
            let (server, _) = listener.accept()?;
            client.set_nodelay(true)?;
            let thread = std::thread::spawn(move || {
                let mut at = 0;
                for (n, pause) in plan {
                    io::Write::write_all(&mut client, &data[at..at + n])?;
                    at += n;
                    std::thread::sleep(Duration::from_micros(pause));
                }
                client.shutdown(Shutdown::Write)
            });
            Ok((TcpStream::from_std(server), Writer::Thread(thread)))
        }
    }
}
