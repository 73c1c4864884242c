//! Memory an operation lived in, kept to carry the next one.

use std::mem::MaybeUninit;

/// The heap memory of a finished operation of type `T`, kept by the
/// stream that issues one after another (a reader's reads, a writer's
/// writes) to carry the next one: one allocation per stream rather than
/// one per operation. While an operation is in flight its memory belongs
/// to the driver's table entry, as always; only memory the kernel is done
/// with (the output was returned) comes back here.
pub(crate) struct Spare<T>(Option<Box<MaybeUninit<T>>>);

impl<T> Spare<T> {
    /// No memory yet (the first operation allocates it).
    pub(crate) const fn new() -> Spare<T> {
        Spare(None)
    }

    /// Moves `op` into the kept memory, or into a new allocation.
    pub(super) fn store(&mut self, op: T) -> Box<T> {
        match self.0.take() {
            Some(memory) => Box::write(memory, op),
            None => Box::new(op),
        }
    }

    /// Keeps `memory` for the next operation.
    pub(super) fn keep(&mut self, memory: Box<MaybeUninit<T>>) {
        self.0 = Some(memory);
    }
}

impl<T> Default for Spare<T> {
    fn default() -> Spare<T> {
        Spare::new()
    }
}

impl<T> std::fmt::Debug for Spare<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Spare(kept)"
        } else {
            "Spare(none)"
        })
    }
}

/// Moves an operation out of its box, keeping the box's memory.
pub(super) fn take_out<T>(boxed: Box<T>) -> (T, Box<MaybeUninit<T>>) {
    let raw = Box::into_raw(boxed);
    // SAFETY: `raw` comes from a `Box<T>`: valid, aligned, initialised and
    // owned here. The value is read out once; the memory is then owned as
    // a `Box<MaybeUninit<T>>` (same layout), which never drops a `T`, so
    // the value is neither dropped twice nor read again.
    unsafe { (raw.read(), Box::from_raw(raw.cast::<MaybeUninit<T>>())) }
}
