//! Records in a [`BufReader`]'s buffer: the general search that reads
//! until a record is whole, and the future of the borrowing calls
//! (`next_line`, `next_until`) with its fast path.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::BufReader;
use crate::buf::Found;
use crate::source::ReadSource;

impl<S: ReadSource> BufReader<S> {
    /// Polls for the next record ending in `delim` without consuming it:
    /// `Some((len, consume))` gives the record's length without the
    /// delimiter and the bytes it spans with it; a last record without a
    /// delimiter ends the stream; `None` is the end. For a `line`, a `\r`
    /// before the `\n` is part of the terminator, not of the length limit.
    pub(crate) fn poll_record(
        &mut self,
        cx: &mut Context<'_>,
        delim: u8,
        line: bool,
    ) -> Poll<io::Result<Option<(usize, usize)>>> {
        self.fill.buf_mut().settle();
        let max = self.max_record + usize::from(line);
        loop {
            match self.fill.buf_mut().find(delim, max) {
                // Past the maximum only by a line's `\r` (`i <= max` holds).
                Found::At(i) if i <= self.max_record || self.buffer()[i - 1] == b'\r' => {
                    return Poll::Ready(Ok(Some((i, i + 1))));
                }
                Found::At(_) | Found::TooLong => return Poll::Ready(Err(self.too_long())),
                Found::NeedMore => {}
            }
            let have = self.buffer().len();
            ready!(self.poll_fill_until(cx, have + 1, Some(delim)))?;
            if self.buffer().len() == have {
                // The last record has no delimiter, so no `\r` allowance.
                if have > self.max_record {
                    return Poll::Ready(Err(self.too_long()));
                }
                return Poll::Ready(Ok((have > 0).then_some((have, have))));
            }
        }
    }

    /// The error for a record longer than the maximum.
    fn too_long(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "record longer than the maximum of {} bytes (see set_max_record_len)",
                self.max_record
            ),
        )
    }

    /// Lends out the next record ending in `delim` as the buffer's lent
    /// bytes when it is not buffered whole (the fast path,
    /// `ReadBuffer::lend_record`, found nothing): its length without the
    /// delimiter, and whether it has one (the last record of a stream may
    /// not); `None` at the end.
    fn poll_lend(
        &mut self,
        cx: &mut Context<'_>,
        delim: u8,
        line: bool,
    ) -> Poll<io::Result<Option<(usize, bool)>>> {
        let Some((len, consume)) = ready!(self.poll_record(cx, delim, line))? else {
            return Poll::Ready(Ok(None));
        };
        self.fill.buf_mut().lend(consume);
        Poll::Ready(Ok(Some((len, consume > len))))
    }
}

/// The future of [`BufReader::next_line`] and
/// [`BufReader::next_until`]: the next record, borrowed from the buffer.
///
/// A plain struct rather than an `async fn`, so that a record already
/// buffered costs one poll with no state machine around it: the 64-byte
/// line scan spent more instructions in the nested `async fn` states than
/// in finding the newline.
#[derive(Debug)]
pub(crate) struct NextRecord<'a, S> {
    /// The reader; taken out when the record is returned (it borrows the
    /// reader for `'a`).
    reader: Option<&'a mut BufReader<S>>,
    /// The delimiter.
    delim: u8,
    /// A line: a `\r` before the `\n` is not part of it.
    line: bool,
}

impl<'a, S> NextRecord<'a, S> {
    /// The next record of `reader` ending in `delim`.
    pub(crate) fn new(reader: &'a mut BufReader<S>, delim: u8, line: bool) -> Self {
        NextRecord {
            reader: Some(reader),
            delim,
            line,
        }
    }
}

impl<'a, S: ReadSource> NextRecord<'a, S> {
    /// The record is not buffered whole: reads until it is.
    #[inline(never)]
    fn poll_slow(
        &mut self,
        reader: &'a mut BufReader<S>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<Option<&'a [u8]>>> {
        let (len, delimited) = match reader.poll_lend(cx, self.delim, self.line) {
            Poll::Pending => {
                self.reader = Some(reader);
                return Poll::Pending;
            }
            Poll::Ready(Ok(Some(found))) => found,
            Poll::Ready(Ok(None)) => return Poll::Ready(Ok(None)),
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
        };
        let reader: &'a BufReader<S> = reader;
        Poll::Ready(Ok(Some(record(reader, len, self.line && delimited))))
    }
}

/// The `len` bytes of the record `reader` lent out, without a `\r` at its
/// end if `strip_cr`.
#[inline]
fn record<S>(reader: &BufReader<S>, len: usize, strip_cr: bool) -> &[u8] {
    let record = reader.fill.buf().lent_record(len);
    match record {
        [rest @ .., b'\r'] if strip_cr => rest,
        _ => record,
    }
}

impl<'a, S: ReadSource> Future for NextRecord<'a, S> {
    type Output = io::Result<Option<&'a [u8]>>;

    /// The fast path (a record buffered whole) inline, the rest out of line.
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let reader = this
            .reader
            .take()
            .expect("next_line/next_until future polled after it returned");
        let max = reader.max_record;
        match reader.fill.buf_mut().lend_record(this.delim, max) {
            Some(len) => Poll::Ready(Ok(Some(record(reader, len, this.line)))),
            None => this.poll_slow(reader, cx),
        }
    }
}
