//! Graceful close with a time limit: flush, `SHUT_WR`, then wait for the
//! peer's end of stream, discarding what it still sends.

use std::future::Future;
use std::io;
use std::time::Duration;

use bytes::BytesMut;

use super::{BufStream, BufWriter};
use crate::op::{self, CURRENT_POS, Op};
use crate::source::{ReadSource, WriteSink};
use crate::time::timeout;

/// Bytes asked for by each read that waits for the peer's end.
const DISCARD_CHUNK: usize = 16 * 1024;

/// Runs `work` for at most `limit`; past it, a `TimedOut` error.
async fn bounded<T>(limit: Duration, work: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    match timeout(limit, work).await {
        Ok(res) => res,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("graceful shutdown: the peer did not close within {limit:?}"),
        )),
    }
}

impl<S: ReadSource + WriteSink> BufWriter<S> {
    /// Closes the writing side gracefully, within `limit`: flushes every
    /// buffered byte, shuts down the write direction (the peer reads end of
    /// stream), then reads from the socket until the peer closes its side
    /// too, discarding what arrives. Returns how many bytes were discarded.
    ///
    /// Waiting for the peer's end before closing keeps a close from turning
    /// into a reset (closing with unread bytes sends one) while the peer
    /// still reads the response. If all this takes longer than `limit`
    /// (a peer that never reads, or never closes), the error is
    /// `TimedOut`; then close the socket, or [`abort`](crate::net::TcpStream::abort) it.
    ///
    /// Cancel safety: as [`shutdown`](BufWriter::shutdown) (no byte is
    /// lost; calling it again goes on); bytes already discarded are gone.
    /// The sink is read directly: use it on a writer whose sink nobody else
    /// reads (with a [`BufStream`], use its own method).
    pub async fn shutdown_graceful(&mut self, limit: Duration) -> io::Result<u64> {
        bounded(limit, async {
            self.shutdown().await?;
            let fd = self.get_ref().shared_fd().clone();
            let mut discarded = 0u64;
            loop {
                let buf = BytesMut::with_capacity(DISCARD_CHUNK);
                let (res, _) = Op::submit(op::Read::new(fd.clone(), buf, CURRENT_POS)).await;
                match res {
                    Ok(0) => return Ok(discarded),
                    Ok(n) => discarded += n as u64,
                    Err(e) if crate::error::is_retry(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        })
        .await
    }
}

impl<S: ReadSource + WriteSink> BufStream<S> {
    /// [`BufWriter::shutdown_graceful`] for a stream: flushes, shuts down
    /// the write direction, then reads until the peer's end of stream,
    /// discarding what arrives (bytes already buffered but not consumed
    /// included), all within `limit`, else `TimedOut`. Returns how many
    /// bytes were discarded.
    ///
    /// ```
    /// use std::time::Duration;
    /// use uring_bufio::{io::BufStream, net::UnixStream};
    /// uring_bufio::Runtime::new()?.block_on(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     let mut s = BufStream::new(a);
    ///     s.write_all(b"bye").await?;
    ///     let peer = uring_bufio::spawn(async move {
    ///         let mut p = BufStream::new(b);
    ///         p.write_all(b"late").await?;
    ///         let mut got = Vec::new();
    ///         p.reader().read_until(b'\n', &mut got).await?; // to our end
    ///         p.shutdown().await?; // then close its side
    ///         Ok::<_, std::io::Error>(got)
    ///     });
    ///     assert_eq!(s.shutdown_graceful(Duration::from_secs(5)).await?, 4);
    ///     assert_eq!(peer.await.unwrap()?, b"bye");
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub async fn shutdown_graceful(&mut self, limit: Duration) -> io::Result<u64> {
        bounded(limit, async {
            self.shutdown().await?;
            let mut discarded = 0u64;
            loop {
                let n = self.fill_buf().await?.len();
                if n == 0 {
                    return Ok(discarded);
                }
                self.consume(n);
                discarded += n as u64;
            }
        })
        .await
    }
}
