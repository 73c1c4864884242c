//! `Lines` and `Split`: records as a `Stream` of owned items.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::Stream;

use super::BufReader;
use crate::source::ReadSource;

impl<S: ReadSource> BufReader<S> {
    /// The lines of the stream as a `Stream` of `String`s without their
    /// `\n` or `\r\n`. Invalid UTF-8 and lines longer than
    /// [`max_record_len`](BufReader::max_record_len) are `InvalidData` errors.
    ///
    /// Cancel safety: dropping a `next()` future consumes nothing.
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use uring_bufio::{io::BufReader, net::UnixStream};
    /// uring_bufio::Runtime::new()?.block_on(async {
    ///     let (a, b) = UnixStream::pair()?;
    ///     a.write_all("one\r\ntwo\n").await.0?;
    ///     drop(a);
    ///     let lines: Vec<String> = BufReader::new(b).lines().map(|l| l.unwrap()).collect().await;
    ///     assert_eq!(lines, ["one", "two"]);
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub fn lines(self) -> Lines<S> {
        Lines { reader: self }
    }

    /// The records ending in `delim` as a `Stream` of `Vec<u8>`s without the
    /// delimiter; limits as [`lines`](BufReader::lines).
    pub fn split(self, delim: u8) -> Split<S> {
        Split {
            reader: self,
            delim,
        }
    }
}

/// Stream of lines; see [`BufReader::lines`].
#[derive(Debug)]
pub struct Lines<S> {
    /// The reader the lines come from.
    reader: BufReader<S>,
}

/// Stream of delimited records; see [`BufReader::split`].
#[derive(Debug)]
pub struct Split<S> {
    /// The reader the records come from.
    reader: BufReader<S>,
    /// The delimiter.
    delim: u8,
}

impl<S: ReadSource> Lines<S> {
    /// The reader, with what it buffered.
    pub fn into_inner(self) -> BufReader<S> {
        self.reader
    }

    /// The next line, as `tokio::io::Lines::next_line`.
    pub async fn next_line(&mut self) -> io::Result<Option<String>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx))
            .await
            .transpose()
    }
}

impl<S: ReadSource> Split<S> {
    /// The reader, with what it buffered.
    pub fn into_inner(self) -> BufReader<S> {
        self.reader
    }
}

/// Takes the next record out of `reader` as owned bytes, delimiter removed
/// (and a `\r` before a `\n` when `strip_cr`).
fn poll_owned<S: ReadSource>(
    reader: &mut BufReader<S>,
    cx: &mut Context<'_>,
    delim: u8,
    strip_cr: bool,
) -> Poll<Option<io::Result<Vec<u8>>>> {
    let found = match ready!(reader.poll_record(cx, delim, strip_cr)) {
        Ok(Some(found)) => found,
        Ok(None) => return Poll::Ready(None),
        Err(e) => return Poll::Ready(Some(Err(e))),
    };
    let (mut len, consume) = found;
    let bytes = reader.buffer();
    if strip_cr && consume > len && len > 0 && bytes[len - 1] == b'\r' {
        len -= 1;
    }
    let record = bytes[..len].to_vec();
    reader.consume(consume);
    Poll::Ready(Some(Ok(record)))
}

impl<S: ReadSource> Stream for Lines<S> {
    type Item = io::Result<String>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let reader = &mut self.get_mut().reader;
        Poll::Ready(ready!(poll_owned(reader, cx, b'\n', true)).map(|r| {
            r.and_then(|v| {
                String::from_utf8(v).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
            })
        }))
    }
}

impl<S: ReadSource> Stream for Split<S> {
    type Item = io::Result<Vec<u8>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        poll_owned(&mut this.reader, cx, this.delim, false)
    }
}
