//! tokio's `AsyncRead`, `AsyncBufRead` and `AsyncWrite` on the buffered
//! types, so tokio's extension traits, `tokio::io::copy` and tokio-util
//! codecs work on them unchanged. No future is boxed per call: each poll
//! drives the reader's or writer's own state.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, ReadBuf};

use super::{BufReader, BufWriter};
use crate::source::{ReadSource, WriteSink};

impl<S: ReadSource> AsyncRead for BufReader<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let src = ready!(this.poll_fill_buf(cx))?;
        let n = src.len().min(out.remaining());
        out.put_slice(&src[..n]);
        this.consume(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: ReadSource> AsyncBufRead for BufReader<S> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        self.get_mut().poll_fill_buf(cx)
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        self.get_mut().consume(amt);
    }
}

impl<S: WriteSink> AsyncWrite for BufWriter<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        src: &[u8],
    ) -> Poll<io::Result<usize>> {
        let (sink, state) = self.get_mut().parts_mut();
        state.poll_write(cx, sink, src)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let (sink, state) = self.get_mut().parts_mut();
        state.poll_write_vectored(cx, sink, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (sink, state) = self.get_mut().parts_mut();
        state.poll_flush(cx, sink)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (sink, state) = self.get_mut().parts_mut();
        state.poll_shutdown(cx, sink)
    }
}
