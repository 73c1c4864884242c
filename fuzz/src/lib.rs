//! Helpers shared by the fuzz targets: a runtime per thread, bounded
//! polling, and (from `tests/support/cutting.rs`, shared with
//! `tests/prop_cutting.rs`) the model of record and frame cutting and a
//! socket fed in chunks.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use uring_bufio::Runtime;
use uring_bufio::time::timeout;

#[path = "../../tests/support/cutting.rs"]
pub mod cutting;

/// Upper bound for one input's IO: only a hang reaches it (then the target
/// panics, which libFuzzer reports as a crash with the input).
const LIMIT: Duration = Duration::from_secs(10);

thread_local! {
    /// This thread's runtime, made once and never dropped: a runtime cannot
    /// be dropped from a thread-local destructor (it needs the driver's
    /// thread-local, already gone), and one per input would measure setup.
    static RT: &'static Runtime = Box::leak(Box::new(Runtime::new().expect("runtime")));
}

/// Runs one input's future; a hang or an IO error is a crash.
pub fn run<T>(f: impl Future<Output = io::Result<T>>) -> T {
    RT.with(|rt| rt.block_on(timeout(LIMIT, f)))
        .expect("input timed out (hang)")
        .expect("unexpected IO error")
}

/// Polls `fut` at most `polls` times, a runtime tick apart; `None` if it was
/// still pending then (and it is dropped, as a `select!` or a timeout
/// would).
pub async fn limited<F: Future>(fut: F, polls: usize) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut left = polls;
    poll_fn(|cx| match fut.as_mut().poll(cx) {
        Poll::Ready(v) => Poll::Ready(Some(v)),
        Poll::Pending if left == 0 => Poll::Ready(None),
        Poll::Pending => {
            left -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// Chunk sizes for [`cutting::trickled`] from fuzzed bytes.
pub fn chunks(raw: &[u8]) -> Vec<usize> {
    raw.iter().map(|&c| usize::from(c)).collect()
}
