//! A reader's queue of received pool buffers.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use bytes::BytesMut;

use super::Pool;

/// Received pool buffers on their way from the completions that filled
/// them to a reader, in completion order. Shared by a reader and its
/// receive; whatever is left when both are gone goes back to the pool.
#[derive(Debug)]
pub(crate) struct Inbox {
    /// Where the buffers go back to: the pool every chunk was taken from.
    pool: Rc<Pool>,
    /// Buffers received and not yet taken by the reader, oldest first;
    /// each is counted out of `pool` until given back.
    chunks: RefCell<VecDeque<BytesMut>>,
}

impl Inbox {
    /// An empty inbox for buffers of `pool`.
    pub(crate) fn new(pool: Rc<Pool>) -> Inbox {
        Inbox {
            pool,
            chunks: RefCell::new(VecDeque::new()),
        }
    }

    /// The pool.
    pub(crate) fn pool(&self) -> &Rc<Pool> {
        &self.pool
    }

    /// Books a reaped completion: the buffers it filled join the queue.
    pub(crate) fn receive(&self, flags: u32, len: usize) {
        self.pool.receive(flags, len, &mut self.chunks.borrow_mut());
    }

    /// Buffers waiting.
    pub(crate) fn len(&self) -> usize {
        self.chunks.borrow().len()
    }

    /// The oldest received buffer.
    pub(crate) fn pop(&self) -> Option<BytesMut> {
        self.chunks.borrow_mut().pop_front()
    }

    /// Puts the rest of a buffer whose front was taken back at the front.
    pub(crate) fn push_front(&self, chunk: BytesMut) {
        self.chunks.borrow_mut().push_front(chunk);
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        for chunk in self.chunks.get_mut().drain(..) {
            self.pool.give_back(chunk);
        }
    }
}
