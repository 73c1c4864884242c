//! `BufStream`: buffered reading and writing on one socket object.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, ReadBuf};

use super::{BufReader, BufWriter};
use crate::source::{ReadSource, WriteSink};

/// A reader and a writer over one stream: a [`BufReader`] over a
/// [`BufWriter`], with every method of both and the same guarantees.
///
/// ```
/// use uring_bufio::{io::BufStream, net::{TcpListener, TcpStream}};
/// uring_bufio::Runtime::new()?.block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let addr = listener.local_addr()?;
///     let server = uring_bufio::spawn(async move {
///         let (socket, _) = listener.accept().await?;
///         let mut s = BufStream::new(socket);
///         while let Some(line) = s.next_line().await? {
///             let reply = [line, b"!\n"].concat();
///             s.write_all(&reply).await?;
///         }
///         s.flush().await
///     });
///     let mut c = BufStream::new(TcpStream::connect(addr).await?);
///     c.write_all(b"hi\n").await?;
///     c.shutdown().await?;
///     assert_eq!(c.next_line().await?, Some(&b"hi!"[..]));
///     server.await??;
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct BufStream<S: WriteSink> {
    /// Reading on top, writing underneath.
    pub(super) inner: BufReader<BufWriter<S>>,
}

impl<S: ReadSource + WriteSink> BufStream<S> {
    /// A stream with default capacities (64 KiB each way).
    pub fn new(stream: S) -> BufStream<S> {
        BufStream {
            inner: BufReader::new(BufWriter::new(stream)),
        }
    }

    /// A stream whose reading side is [`BufReader::pooled`]: receives land
    /// in buffers the kernel picks from the runtime's pool when data
    /// arrives, so an idle stream holds no read buffer (its write buffer,
    /// 64 KiB, is taken at the first write).
    pub fn pooled(stream: S) -> BufStream<S> {
        BufStream {
            inner: BufReader::pooled(BufWriter::new(stream)),
        }
    }

    /// [`pooled`](BufStream::pooled) with a write buffer of
    /// `write_capacity` bytes: with many connections the write buffers,
    /// kept once taken, are what remains per connection.
    pub fn pooled_with_capacity(write_capacity: usize, stream: S) -> BufStream<S> {
        BufStream {
            inner: BufReader::pooled(BufWriter::with_capacity(write_capacity, stream)),
        }
    }

    /// A stream reading `read_capacity` bytes at a time and accepting
    /// `write_capacity` bytes before `write` waits.
    pub fn with_capacity(read_capacity: usize, write_capacity: usize, stream: S) -> BufStream<S> {
        BufStream {
            inner: BufReader::with_capacity(
                read_capacity,
                BufWriter::with_capacity(write_capacity, stream),
            ),
        }
    }

    /// The reading half of the buffering: every [`BufReader`] method
    /// (`next_line`, `read_exact`, `fill_buf`...) is reached through it.
    pub fn reader(&mut self) -> &mut BufReader<BufWriter<S>> {
        &mut self.inner
    }

    /// The writing half of the buffering.
    pub fn writer(&mut self) -> &mut BufWriter<S> {
        self.inner.get_mut()
    }

    /// See [`BufReader::fill_buf`].
    pub async fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf().await
    }

    /// See [`BufReader::consume`].
    pub fn consume(&mut self, n: usize) {
        self.inner.consume(n);
    }

    /// See [`BufReader::next_line`].
    pub async fn next_line(&mut self) -> io::Result<Option<&[u8]>> {
        self.inner.next_line().await
    }

    /// See [`BufReader::read_line`].
    pub async fn read_line(&mut self, out: &mut String) -> io::Result<usize> {
        self.inner.read_line(out).await
    }

    /// See [`BufReader::read_exact`].
    pub async fn read_exact(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        self.inner.read_exact(dst).await
    }

    /// See [`BufReader::read`].
    pub async fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        self.inner.read(dst).await
    }

    /// See [`BufWriter::write`].
    pub async fn write(&mut self, src: &[u8]) -> io::Result<usize> {
        self.writer().write(src).await
    }

    /// See [`BufWriter::write_all`].
    pub async fn write_all(&mut self, src: &[u8]) -> io::Result<()> {
        self.writer().write_all(src).await
    }

    /// See [`BufWriter::flush`].
    pub async fn flush(&mut self) -> io::Result<()> {
        self.writer().flush().await
    }

    /// See [`BufWriter::shutdown`].
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.writer().shutdown().await
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        self.inner.get_ref().get_ref()
    }

    /// The stream. Reading or writing it directly bypasses the buffered
    /// bytes.
    pub fn get_mut(&mut self) -> &mut S {
        self.inner.get_mut().get_mut()
    }

    /// The stream, after writing everything buffered for writing (as
    /// [`BufWriter::into_inner`]); bytes buffered for reading are dropped,
    /// as tokio's `BufStream::into_inner` drops them. On error the bytes
    /// not written are handed back with it.
    pub async fn into_inner(self) -> Result<S, (io::Error, S, BytesMut)> {
        self.inner.into_inner().into_inner().await
    }

    /// The stream; bytes buffered for reading are dropped, bytes buffered
    /// for writing are handed back unwritten (see [`BufWriter::into_parts`]).
    pub fn into_parts(self) -> (S, BytesMut) {
        self.inner.into_inner().into_parts()
    }
}

impl<S: ReadSource + WriteSink> AsyncRead for BufStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, out)
    }
}

impl<S: ReadSource + WriteSink> AsyncBufRead for BufStream<S> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        Pin::new(&mut self.get_mut().inner).poll_fill_buf(cx)
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        self.get_mut().inner.consume(amt);
    }
}

impl<S: ReadSource + WriteSink> AsyncWrite for BufStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        src: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.get_mut().writer()).poll_write(cx, src)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.get_mut().writer()).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().writer()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().writer()).poll_shutdown(cx)
    }
}
