//! A queue from any thread to one worker: senders push from anywhere, the
//! worker's task awaits the next item.
//!
//! Waking goes through the waker the receiving task left: on our runtime a
//! waker used from another thread queues the task and writes the runtime's
//! eventfd if it sleeps, so a send wakes a parked worker at once and costs
//! nothing extra while it is busy (the task is already queued).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// The shared queue.
struct Shared<T> {
    /// Guarded state; never held across a wake.
    state: Mutex<State<T>>,
}

/// The queue's mutable part.
struct State<T> {
    /// Items sent and not yet received, oldest first.
    items: VecDeque<T>,
    /// The waker of the receiving task's last pending poll.
    waker: Option<Waker>,
    /// The receiver is gone: sends fail and give the item back; `items`
    /// stays empty from then on.
    closed: bool,
}

/// The sending side; `Send` and cheap to clone.
pub(crate) struct Sender<T> {
    /// The queue.
    shared: Arc<Shared<T>>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            shared: self.shared.clone(),
        }
    }
}

/// The receiving side; closes the queue when dropped.
pub(crate) struct Receiver<T> {
    /// The queue.
    shared: Arc<Shared<T>>,
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("Sender")
            .field("queued", &st.items.len())
            .field("closed", &st.closed)
            .finish()
    }
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

/// A new queue.
pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            waker: None,
            closed: false,
        }),
    });
    let sender = Sender {
        shared: shared.clone(),
    };
    (sender, Receiver { shared })
}

impl<T> Shared<T> {
    /// The state, also after a panic elsewhere poisoned the lock (every
    /// update leaves it consistent).
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<T> Sender<T> {
    /// Queues `item` and wakes the receiver; gives `item` back if the
    /// receiver is gone.
    pub(crate) fn send(&self, item: T) -> Result<(), T> {
        let mut st = self.shared.lock();
        if st.closed {
            return Err(item);
        }
        st.items.push_back(item);
        let waker = st.waker.take();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Whether the receiver is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }
}

impl<T> Receiver<T> {
    /// The next item, or pending with the task's waker stored.
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<T> {
        let mut st = self.shared.lock();
        match st.items.pop_front() {
            Some(item) => Poll::Ready(item),
            None => {
                st.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// The next item (cancel safe: a dropped call takes nothing).
    pub(crate) async fn recv(&self) -> T {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.closed = true;
        let items = std::mem::take(&mut st.items);
        st.waker = None;
        drop(st);
        // Dropped outside the lock: an item's drop may send or wake.
        drop(items);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A send from another thread wakes a receiver waiting on our runtime,
    /// and a send after the receiver is gone gives the item back.
    #[test]
    fn wakes_across_threads_and_refuses_after_close() {
        let rt = crate::Runtime::new().unwrap();
        let (tx, rx) = channel::<u32>();
        let tx2 = tx.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            tx2.send(7).unwrap();
        });
        let began = std::time::Instant::now();
        let limit = std::time::Duration::from_secs(5);
        let got = rt.block_on(crate::time::timeout(limit, rx.recv()));
        assert_eq!(got.ok(), Some(7));
        let waited = began.elapsed();
        assert!(
            waited < limit / 2,
            "the send did not wake the receiver ({waited:?})"
        );
        t.join().unwrap();
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(tx.send(8), Err(8));
    }
}
