//! The provided buffer ring: entries in memory we map ourselves, read by
//! the kernel between its head and the tail we publish.

use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use bytes::BytesMut;
use io_uring::types::BufRingEntry;

/// The kernel side of a pool: ring memory registered with io_uring.
pub(super) struct Ring {
    /// Base of the `entries` ring entries (page-aligned, ours, mapped
    /// until drop; entry 0 also holds the tail the kernel reads).
    pub(super) base: *mut BufRingEntry,
    /// Bytes mapped at `base`: at least `entries` entries, at least a page.
    mapped: usize,
    /// Number of entries: a power of two, so a position masks to an index.
    entries: u16,
    /// Our copy of the tail (entries published so far, wrapping): the last
    /// value stored to the shared tail.
    tail: u16,
    /// The buffer id published at each ring index, `order.len() ==
    /// entries` (receive bundles take buffers in ring order).
    order: Vec<u16>,
}

impl Ring {
    /// Maps zeroed memory for `entries` ring entries.
    pub(super) fn new(entries: u16) -> io::Result<Ring> {
        let mapped = (usize::from(entries) * std::mem::size_of::<BufRingEntry>()).max(4096);
        // SAFETY: an anonymous private mapping; checked below.
        let mem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if mem == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Ring {
            base: mem.cast(),
            mapped,
            entries,
            tail: 0,
            order: vec![0; usize::from(entries)],
        })
    }

    /// Publishes one buffer to the kernel; returns its ring position.
    pub(super) fn push(&mut self, bid: u16, buf: &mut BytesMut, size: usize) -> u16 {
        let pos = self.tail;
        let index = usize::from(pos & (self.entries - 1));
        self.order[index] = bid;
        // SAFETY: `index < entries`, inside the mapping; the kernel reads
        // only entries between its head and the published tail, and this one
        // is past the tail until the store below.
        let entry = unsafe { &mut *self.base.add(index) };
        entry.set_addr(buf.as_mut_ptr() as u64);
        entry.set_len(u32::try_from(size).unwrap_or(u32::MAX));
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail field lies in entry 0 of our mapping; the kernel
        // reads it concurrently, hence the atomic release store, which also
        // publishes the entry written above.
        unsafe {
            let tail = BufRingEntry::tail(self.base).cast_mut();
            AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
        }
        pos
    }

    /// The buffer id published at ring position `pos`.
    pub(super) fn bid_at(&self, pos: u16) -> u16 {
        self.order[usize::from(pos & (self.entries - 1))]
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: mapped in `Ring::new`; the pool unregisters the ring (or
        // leaks it) before this runs.
        unsafe { libc::munmap(self.base.cast(), self.mapped) };
    }
}
