//! Closing a TCP connection abortively: `SO_LINGER` and [`TcpStream::abort`].

use std::io;
use std::time::Duration;

use socket2::SockRef;

use super::TcpStream;

impl TcpStream {
    /// Sets `SO_LINGER`: `None` (the default) closes in the background,
    /// sending what is queued, then a FIN; `Some(Duration::ZERO)` makes the
    /// close abortive: queued bytes are dropped and the peer gets a reset
    /// (`ECONNRESET`) instead of an end of stream. Other durations make a
    /// blocking `close(2)` wait; this crate closes asynchronously, so use
    /// only `None` or zero.
    ///
    /// ```
    /// # use uring_bufio::net::{TcpListener, TcpStream};
    /// # use std::time::Duration;
    /// # uring_bufio::Runtime::new().unwrap().block_on(async {
    /// # let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// stream.set_linger(Some(Duration::ZERO))?;
    /// assert_eq!(stream.linger()?, Some(Duration::ZERO));
    /// # Ok::<(), std::io::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        SockRef::from(self).set_linger(linger)
    }

    /// The `SO_LINGER` setting (see [`set_linger`](TcpStream::set_linger)).
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        SockRef::from(self).linger()
    }

    /// Closes the connection abortively, for a peer that broke the
    /// protocol: sets `SO_LINGER` to zero and closes, so the kernel drops
    /// whatever is still queued and sends a reset; the peer's next read or
    /// write fails with `ECONNRESET` rather than seeing a clean end.
    ///
    /// Like [`close`](TcpStream::close), the close happens once no
    /// operation holds the socket any more (a half from
    /// [`into_split`](TcpStream::into_split) still alive keeps it open).
    /// To abort a buffered stream, take the socket out without flushing:
    /// `BufWriter::into_parts` / `BufStream::into_parts`, then `abort`.
    ///
    /// Cancel safety: dropping the future after its first poll still
    /// resets the connection once nothing holds the socket (the linger
    /// setting is on the socket).
    pub async fn abort(self) -> io::Result<()> {
        self.set_linger(Some(Duration::ZERO))?;
        self.close().await
    }
}
