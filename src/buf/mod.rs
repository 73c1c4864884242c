//! Stream buffers: the bookkeeping of a reader's and a writer's own memory,
//! kept apart from the kernel so it can be tested on its own.
//!
//! A reader's buffer is one `BytesMut`. Its filled part is what the caller
//! sees; its spare capacity is where the next read lands. While a read is in
//! flight the spare part is split off and owned by the operation (so the
//! kernel never writes memory the reader could move or free), and joined back
//! in O(1) when the read completes:
//!
//! ```text
//!          deferred    filled (caller sees)        spare ──► split off while in flight
//!        ┌─────────┬────────────────────────────┬──────────────────────────────┐
//! data:  │ handed  │ unconsumed                 │ kernel writes here           │
//!        │ out     │                            │ (owned by the read op)       │
//!        └─────────┴────────────────────────────┴──────────────────────────────┘
//!        ^ data.as_ptr()                        ^ data.len()                   ^ capacity
//! ```
//!
//! A pooled reader's buffer ([`PooledBuffer`]) is the same buffer whose
//! memory may be a buffer lent by the runtime's pool; it alone knows how
//! such a buffer goes back.
//!
//! A writer's buffer accepts the caller's bytes; segments are frozen off its
//! front and handed to the kernel as `Bytes`, so copying the next bytes in
//! never touches memory the kernel is reading.

mod pooled;
mod read;
mod write;

pub(crate) use pooled::PooledBuffer;
pub(crate) use read::{Found, ReadBuffer};
pub(crate) use write::WriteBuffer;
