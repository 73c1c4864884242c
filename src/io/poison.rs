//! What a transfer that bypasses the writer's buffer (`copy_file`,
//! `write_bytes`) leaves when it stops part way: a poisoned writer.

use super::BufWriter;
use crate::source::WriteSink;

/// Poisons `writer` on drop if the transfer touched the sink and did not
/// finish: the sink then holds an unknown prefix of what was asked, so
/// every later write, flush and shutdown must fail rather than continue a
/// short stream.
pub(super) struct Guard<'a, S: WriteSink> {
    /// The writer whose sink gets the bytes.
    pub(super) writer: &'a mut BufWriter<S>,
    /// What is transferring, for the error (`copy_file`, `write_bytes`).
    what: &'static str,
    /// Bytes the sink took so far.
    pub(super) sent: u64,
    /// An operation writing to the sink was submitted: the sink may hold
    /// part of the transfer.
    pub(super) touched: bool,
    /// The whole transfer was sent.
    pub(super) done: bool,
}

impl<'a, S: WriteSink> Guard<'a, S> {
    /// A guard for a transfer named `what` that has not touched the sink.
    pub(super) fn new(writer: &'a mut BufWriter<S>, what: &'static str) -> Guard<'a, S> {
        Guard {
            writer,
            what,
            sent: 0,
            touched: false,
            done: false,
        }
    }
}

impl<S: WriteSink> Drop for Guard<'_, S> {
    fn drop(&mut self) {
        if self.touched && !self.done {
            self.writer.parts_mut().1.poison(format!(
                "the stream is short: a {} stopped after sending {} bytes \
                 (and maybe part of what was in flight); close it",
                self.what, self.sent
            ));
        }
    }
}
