//! `Frames`: a tokio-util `Decoder` run on the reader's own buffer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use tokio_util::codec::Decoder;

use super::BufReader;
use crate::source::ReadSource;

/// Default longest frame: the same as tokio-util's `LengthDelimitedCodec`.
const DEFAULT_MAX_FRAME: usize = 8 * 1024 * 1024;

impl<S: ReadSource> BufReader<S> {
    /// The items `decoder` cuts out of the stream, as a `Stream`.
    ///
    /// The decoder works directly on the reader's buffer, which is a
    /// `BytesMut` the kernel reads into: a frame it splits off (such as
    /// `LengthDelimitedCodec`'s `BytesMut`, frozen to `Bytes` if you like)
    /// points into memory the kernel filled, with no copy in between.
    /// One frame may take at most [`Frames::max_frame_len`] bytes of the
    /// stream, its header included (default 8 MiB); more is an
    /// `InvalidData` error, however the stream was cut into reads. The
    /// decoder may reserve room in the buffer before that check (as
    /// `LengthDelimitedCodec` does for the length a header announces, up to
    /// its own `max_frame_length`): set the codec's own limit too, so that
    /// what it reserves is bounded by what you allow.
    ///
    /// Cancel safety: dropping a `next()` future consumes nothing.
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use tokio_util::codec::LengthDelimitedCodec;
    /// use uring_bufio::{io::BufReader, net::UnixStream};
    /// uring_bufio::Runtime::new()?.block_on(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     a.write_all(&b"\0\0\0\x05hello\0\0\0\x03abc"[..]).await.0?;
    ///     drop(a);
    ///     let mut frames = BufReader::new(b).frames(LengthDelimitedCodec::new());
    ///     let first = frames.next().await.unwrap()?.freeze(); // Bytes, no copy
    ///     assert_eq!(&first[..], b"hello");
    ///     assert_eq!(&frames.next().await.unwrap()?[..], b"abc");
    ///     assert!(frames.next().await.is_none());
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub fn frames<D: Decoder>(self, decoder: D) -> Frames<S, D> {
        Frames {
            reader: self,
            decoder,
            max_frame: DEFAULT_MAX_FRAME,
            pending: 0,
            state: State::Reading,
        }
    }
}

/// Stream of decoded frames; see [`BufReader::frames`].
#[derive(Debug)]
pub struct Frames<S, D> {
    /// The reader whose buffer the decoder works on.
    reader: BufReader<S>,
    /// The decoder.
    decoder: D,
    /// Most bytes one frame may take in the stream (header included).
    max_frame: usize,
    /// Bytes the decoder consumed since it last produced an item (a
    /// header it parsed before the body arrived, for example).
    pending: usize,
    /// Where the stream is.
    state: State,
}

/// Lifecycle of a [`Frames`] stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Decoding and reading more as needed.
    Reading,
    /// The stream ended: `decode_eof` drains what is left.
    Draining,
    /// Ended, by the end of the stream or an error.
    Done,
}

impl<S: ReadSource, D: Decoder> Frames<S, D> {
    /// Sets the most bytes one frame may take in the stream, header
    /// included.
    pub fn set_max_frame_len(&mut self, max: usize) {
        self.max_frame = max.max(1);
    }

    /// The most bytes one frame may take in the stream, header included.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame
    }

    /// The reader.
    pub fn get_ref(&self) -> &BufReader<S> {
        &self.reader
    }

    /// The decoder.
    pub fn decoder(&self) -> &D {
        &self.decoder
    }

    /// The decoder, mutably.
    pub fn decoder_mut(&mut self) -> &mut D {
        &mut self.decoder
    }

    /// The reader and the decoder.
    pub fn into_parts(self) -> (BufReader<S>, D) {
        (self.reader, self.decoder)
    }

    /// Runs the decoder on the reader's buffer. A frame is measured by all
    /// the bytes the decoder consumed for it, over however many calls (a
    /// header parsed before its body arrived counts), so the limit does not
    /// depend on how the stream was cut into reads.
    fn decode(&mut self, eof: bool) -> Result<Option<D::Item>, D::Error> {
        let buf = self.reader.buf_mut().bytes_mut();
        let before = buf.len();
        let item = if eof {
            self.decoder.decode_eof(buf)?
        } else {
            self.decoder.decode(buf)?
        };
        self.pending += before.saturating_sub(buf.len());
        let used = std::mem::take(&mut self.pending);
        if item.is_none() {
            self.pending = used;
        }
        if item.is_some() && used > self.max_frame {
            self.state = State::Done;
            return Err(too_long(self.max_frame).into());
        }
        Ok(item)
    }

    /// One step: decode from the buffer, or read more.
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<D::Item, D::Error>>> {
        loop {
            match self.state {
                State::Done => return Poll::Ready(None),
                State::Draining => {
                    let item = self.decode(true);
                    if !matches!(item, Ok(Some(_))) {
                        self.state = State::Done;
                    }
                    return Poll::Ready(item.transpose());
                }
                State::Reading => {}
            }
            if let Some(item) = self.decode(false)? {
                return Poll::Ready(Some(Ok(item)));
            }
            let have = self.reader.buffer().len();
            if self.pending + have >= self.max_frame {
                self.state = State::Done;
                return Poll::Ready(Some(Err(too_long(self.max_frame).into())));
            }
            ready!(self.reader.poll_fill(cx, have + 1))?;
            if self.reader.buffer().len() == have {
                self.state = State::Draining;
            }
        }
    }
}

/// The error for a frame over the limit.
fn too_long(max: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("frame longer than the maximum of {max} bytes (see Frames::set_max_frame_len)"),
    )
}

impl<S: ReadSource, D: Decoder + Unpin> Stream for Frames<S, D> {
    type Item = Result<D::Item, D::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let item = ready!(this.poll_step(cx));
        if matches!(item, Some(Err(_))) {
            this.state = State::Done;
        }
        Poll::Ready(item)
    }
}
