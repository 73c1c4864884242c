//! Reading methods of `BufReader` built on filling and records.

use std::future::{Future, poll_fn};
use std::io;

use super::BufReader;
use super::reader::NextRecord;
use crate::source::ReadSource;

impl<S: ReadSource> BufReader<S> {
    /// The next line, without its `\n` or `\r\n`, borrowed from the buffer
    /// until the next call; `None` at the end. A last line without a newline
    /// is returned too. Lines are bytes: use `std::str::from_utf8` for text,
    /// or [`lines`](BufReader::lines) for owned `String`s.
    ///
    /// A line longer than [`max_record_len`](BufReader::max_record_len) is an
    /// `InvalidData` error; its bytes stay buffered.
    ///
    /// Cancel safety: safe. A dropped call consumed nothing (the previous
    /// line is consumed by the next call, which does that first).
    pub fn next_line(&mut self) -> impl Future<Output = io::Result<Option<&[u8]>>> + '_ {
        NextRecord::new(self, b'\n', true)
    }

    /// The next record ending in `delim`, without it, borrowed from the
    /// buffer until the next call; `None` at the end. Limits and cancel
    /// safety as [`next_line`](BufReader::next_line).
    pub fn next_until(
        &mut self,
        delim: u8,
    ) -> impl Future<Output = io::Result<Option<&[u8]>>> + '_ {
        NextRecord::new(self, delim, false)
    }

    /// Copies buffered bytes into `dst`, reading first if none are buffered;
    /// 0 means end of stream (or an empty `dst`).
    ///
    /// Cancel safety: safe. Bytes are consumed only in the poll that returns.
    pub async fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        if dst.is_empty() {
            return Ok(0);
        }
        let src = self.fill_buf().await?;
        let n = src.len().min(dst.len());
        dst[..n].copy_from_slice(&src[..n]);
        self.consume(n);
        Ok(n)
    }

    /// Fills all of `dst` and returns its length (as tokio's
    /// `AsyncReadExt::read_exact`), or fails with `UnexpectedEof` (then
    /// nothing is consumed: the bytes stay buffered).
    ///
    /// Cancel safety: safe. Bytes are consumed only once all of `dst` can be
    /// filled, in the poll that returns; the buffer grows to `dst.len()` to
    /// allow that.
    pub async fn read_exact(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        let src = self.fill_at_least(dst.len()).await?;
        dst.copy_from_slice(&src[..dst.len()]);
        self.consume(dst.len());
        Ok(dst.len())
    }

    /// Appends bytes up to and including `delim` (or to the end) to `out`;
    /// returns how many, 0 at the end. A record longer than
    /// [`max_record_len`](BufReader::max_record_len) is an `InvalidData`
    /// error, with nothing appended.
    ///
    /// Cancel safety: safe. A dropped call appended and consumed nothing.
    pub async fn read_until(&mut self, delim: u8, out: &mut Vec<u8>) -> io::Result<usize> {
        let Some((_, consume)) = poll_fn(|cx| self.poll_record(cx, delim, false)).await? else {
            return Ok(0);
        };
        out.extend_from_slice(&self.buffer()[..consume]);
        self.consume(consume);
        Ok(consume)
    }

    /// Appends the next line, newline included, to `out`; returns its length
    /// in bytes, 0 at the end. Invalid UTF-8 is an `InvalidData` error and a
    /// line longer than [`max_record_len`](BufReader::max_record_len) too; in
    /// both cases nothing is appended or consumed.
    ///
    /// Cancel safety: safe. A dropped call appended and consumed nothing.
    pub async fn read_line(&mut self, out: &mut String) -> io::Result<usize> {
        let Some((_, consume)) = poll_fn(|cx| self.poll_record(cx, b'\n', true)).await? else {
            return Ok(0);
        };
        let line = std::str::from_utf8(&self.buffer()[..consume]).map_err(invalid_utf8)?;
        out.push_str(line);
        self.consume(consume);
        Ok(consume)
    }

    /// Appends everything to the end of the stream to `out`; returns how
    /// many bytes.
    ///
    /// Cancel safety: bytes are appended as they arrive, so after a dropped
    /// call `out` holds everything consumed so far; nothing is lost.
    pub async fn read_to_end(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        let mut total = 0;
        loop {
            let src = self.fill_buf().await?;
            if src.is_empty() {
                return Ok(total);
            }
            let n = src.len();
            out.extend_from_slice(src);
            self.consume(n);
            total += n;
        }
    }

    /// Appends everything to the end of the stream to `out`, which must be
    /// UTF-8 (else `InvalidData`; the valid text before the bad bytes is
    /// appended, the rest stays buffered). Returns how many bytes.
    ///
    /// Cancel safety: whole characters are appended as they arrive, so after
    /// a dropped call `out` holds everything consumed so far.
    pub async fn read_to_string(&mut self, out: &mut String) -> io::Result<usize> {
        let mut total = 0;
        loop {
            let src = self.fill_or_end(1).await?;
            if src.is_empty() {
                return Ok(total);
            }
            let valid = match std::str::from_utf8(src) {
                Ok(s) => s,
                // An incomplete character at the end: wait for its tail.
                Err(e) if e.error_len().is_none() && e.valid_up_to() > 0 => {
                    std::str::from_utf8(&src[..e.valid_up_to()]).map_err(invalid_utf8)?
                }
                Err(e) if e.error_len().is_none() => {
                    let have = src.len();
                    let more = self.fill_or_end(have + 1).await?;
                    if more.len() == have {
                        return Err(invalid_utf8(e));
                    }
                    continue;
                }
                Err(e) => {
                    let ok = e.valid_up_to();
                    out.push_str(std::str::from_utf8(&src[..ok]).map_err(invalid_utf8)?);
                    self.consume(ok);
                    return Err(invalid_utf8(e));
                }
            };
            let n = valid.len();
            out.push_str(valid);
            self.consume(n);
            total += n;
        }
    }
}

/// The error for bytes that are not UTF-8.
fn invalid_utf8(e: std::str::Utf8Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("stream did not contain valid UTF-8: {e}"),
    )
}
