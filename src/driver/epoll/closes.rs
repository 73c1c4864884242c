//! Close generations of fd numbers, per thread: the epoll backend keeps an
//! fd registered across waits, so it must learn when the fd number it
//! registered was closed (the kernel then drops the registration; a new
//! file may get the same number and needs its own).
//!
//! Every fd an operation waits on is held by a [`SharedFd`], which calls
//! [`closing`] when it closes or gives up its fd; fds are not `Send`
//! while shared, so closes happen on the thread of the runtime that
//! registered them.
//!
//! [`SharedFd`]: crate::driver::SharedFd

use std::cell::RefCell;
use std::os::fd::RawFd;

thread_local! {
    /// Indexed by fd number: closes since the number was first tracked
    /// (wrapping). Numbers never registered are not tracked.
    static GENERATIONS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// `fd` is about to be closed, or given up by its owner.
pub(crate) fn closing(fd: RawFd) {
    // During thread teardown the table may be gone: nothing to register then.
    let _ = GENERATIONS.try_with(|g| {
        if let Some(n) = g.borrow_mut().get_mut(fd as usize) {
            *n = n.wrapping_add(1);
        }
    });
}

/// The close generation of fd number `fd` (not negative); tracked from now.
pub(super) fn generation(fd: RawFd) -> u32 {
    GENERATIONS.with(|g| {
        let mut g = g.borrow_mut();
        let index = fd as usize;
        if index >= g.len() {
            g.resize(index + 1, 0);
        }
        g[index]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_moves_a_tracked_number_on() {
        closing(900);
        let before = generation(900);
        assert_eq!(generation(900), before);
        closing(900);
        assert_eq!(generation(900), before.wrapping_add(1));
    }
}
