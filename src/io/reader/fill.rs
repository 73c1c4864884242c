//! How a [`BufReader`](super::BufReader)'s buffer is filled: one mode per
//! reader, each owning its buffer and what it has in flight.
//!
//! ```text
//!   Unresolved ──first read──► Pooled   (a socket, and the runtime has a pool)
//!        │                  └► Plain    (anything else)
//!   Plain (BufReader::new) stays Plain
//! ```

use std::io;
use std::task::{Context, Poll};

use super::plain::PlainFill;
use super::pooled::PooledFill;
use crate::buf::ReadBuffer;
use crate::source::ReadSource;

/// Why a source gives no more bytes for now. The reader holds it until the
/// caller needs more bytes than are buffered, and reports it then, once.
#[derive(Debug)]
pub(super) enum Stop {
    /// End of stream (a read returned 0 bytes).
    End,
    /// A read failed.
    Failed(io::Error),
}

/// A reader's fill mode.
///
/// `repr(C)`, as are the modes, whose buffer is their first field: every
/// variant then holds its buffer at the same offset, so [`Fill::buf`] and
/// [`Fill::buf_mut`] compile to an address, not a branch on the mode (the
/// per-line path of `next_line` asks twice).
#[derive(Debug)]
#[repr(C)]
pub(super) enum Fill {
    /// Asked for the pooled mode, not set up yet: whether it can work is
    /// known at the first read, where the runtime is.
    Unresolved(ReadBuffer),
    /// Reads into the reader's own buffer.
    Plain(PlainFill),
    /// Receives into buffers the kernel picks from the runtime's pool.
    Pooled(PooledFill),
}

impl Fill {
    /// Whether the reader receives into the runtime's pool.
    pub(super) fn is_pooled(&self) -> bool {
        matches!(self, Fill::Pooled(_))
    }

    /// The buffer.
    #[inline]
    pub(super) fn buf(&self) -> &ReadBuffer {
        match self {
            Fill::Plain(p) => p.buf(),
            Fill::Pooled(p) => p.buf(),
            Fill::Unresolved(buf) => buf,
        }
    }

    /// The buffer, mutably.
    #[inline]
    pub(super) fn buf_mut(&mut self) -> &mut ReadBuffer {
        match self {
            Fill::Plain(p) => p.buf_mut(),
            Fill::Pooled(p) => p.buf_mut(),
            Fill::Unresolved(buf) => buf,
        }
    }

    /// Marks `n` filled bytes consumed.
    #[inline]
    pub(super) fn consume(&mut self, n: usize) {
        match self {
            Fill::Pooled(p) => p.consume(n),
            _ => self.buf_mut().consume(n),
        }
    }

    /// Sets up the mode asked for, at the first read: pooled if `source`
    /// is a socket and the current runtime has a pool, else plain.
    pub(super) fn resolve(&mut self, source: &impl ReadSource) {
        let Fill::Unresolved(buf) = self else {
            return;
        };
        let buf = std::mem::replace(buf, ReadBuffer::new(1));
        let pool = if source.reads_socket() {
            crate::driver::current().ok().and_then(|d| d.pool())
        } else {
            None
        };
        *self = match pool {
            Some(pool) => Fill::Pooled(PooledFill::new(buf, pool)),
            None => Fill::Plain(PlainFill::new(buf)),
        };
    }

    /// Moves bytes already received into the buffer, until it holds `n`;
    /// `delim` is the delimiter a record search looks for, if it is one.
    #[inline]
    pub(super) fn gather(&mut self, n: usize, delim: Option<u8>) {
        if let Fill::Pooled(p) = self {
            p.gather(n, delim);
        }
    }

    /// Reads more towards `n` filled bytes. `Ready(None)`: something
    /// arrived or the mode must go again; `Ready(Some)`: the stream stops.
    pub(super) fn poll_more(
        &mut self,
        cx: &mut Context<'_>,
        source: &impl ReadSource,
        n: usize,
    ) -> Poll<Option<Stop>> {
        match self {
            Fill::Plain(p) => p.poll_more(cx, source, n),
            Fill::Pooled(p) => p.poll_more(cx, source),
            Fill::Unresolved(_) => unreachable!("resolved before the first read"),
        }
    }

    /// Read-ahead while the caller works on filled bytes (see each mode);
    /// returns a stop seen meanwhile.
    pub(super) fn read_ahead(
        &mut self,
        cx: &mut Context<'_>,
        source: &impl ReadSource,
        stopped: bool,
    ) -> Option<Stop> {
        match self {
            Fill::Plain(p) => p.read_ahead(cx, source, stopped),
            Fill::Pooled(p) => p.read_ahead(cx, source, stopped),
            Fill::Unresolved(_) => unreachable!("resolved before the first read"),
        }
    }
}
