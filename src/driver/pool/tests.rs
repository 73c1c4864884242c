//! The pool's mechanism with its policy, on the user-space free list (the
//! epoll pool), which needs no kernel: a "receive" is `select`, a write
//! through the pointer it gives, and the completion flags epoll builds.

use super::*;

/// One receive of `bytes` into a free buffer, booked as epoll books it;
/// `None` if no buffer was free.
fn recv(pool: &Pool, bytes: &[u8]) -> Option<BytesMut> {
    let (bid, ptr, size) = pool.select()?;
    assert!(bytes.len() <= size);
    // SAFETY: `select` handed out `size` writable bytes at `ptr`, owned by
    // the picked buffer until `receive` books it below.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, bytes.len()) };
    let mut out = VecDeque::new();
    pool.receive(buffer_flags(bid), bytes.len(), &mut out);
    assert_eq!(out.len(), 1);
    out.pop_front()
}

/// Every buffer is counted once: free or out.
fn assert_counts(pool: &Pool) -> PoolStats {
    let s = pool.stats();
    assert_eq!(s.free + s.out, s.buffers, "{s:?}");
    s
}

fn config(initial: usize, max: usize) -> PoolConfig {
    PoolConfig::new()
        .buffer_size(8)
        .buffers(initial)
        .max_buffers(max)
}

#[test]
fn buffer_flags_round_trip_through_io_uring() {
    for bid in [0, 1, 7, 0x1234, u16::MAX] {
        let flags = buffer_flags(bid);
        assert_eq!(completion_buffer(flags), Some(bid));
        assert!(!io_uring::cqueue::buffer_more(flags), "{flags:#x}");
        assert!(!io_uring::cqueue::more(flags), "{flags:#x}");
    }
    assert_eq!(completion_buffer(0), None);
}

#[test]
fn received_bytes_are_lent_and_come_back() {
    let pool = Pool::user(config(2, 8));
    let a = recv(&pool, b"hello").unwrap();
    assert_eq!(&a[..], b"hello");
    assert_eq!(assert_counts(&pool).out, 1);
    pool.give_back(a);
    let s = assert_counts(&pool);
    assert_eq!((s.buffers, s.free, s.receives), (2, 2, 1));
}

#[test]
fn an_empty_receive_leaves_the_buffer_free() {
    let pool = Pool::user(config(1, 1));
    let (bid, _, _) = pool.select().unwrap();
    let mut out = VecDeque::new();
    pool.receive(buffer_flags(bid), 0, &mut out);
    assert!(out.is_empty());
    assert_eq!(assert_counts(&pool).free, 1);
}

/// A dry moment: readers take every free buffer, one meets the dry pool,
/// then all give theirs back. Returns whether buffers were free after it.
fn burst(pool: &Pool) -> bool {
    let held: Vec<_> = std::iter::from_fn(|| recv(pool, b"x")).collect();
    assert!(!held.is_empty(), "nothing received");
    let free = pool.exhausted();
    held.into_iter().for_each(|b| pool.give_back(b));
    free
}

#[test]
fn the_pool_grows_by_what_the_policy_decides() {
    let pool = Pool::user(config(2, 8));
    let held = recv(&pool, b"y").unwrap();
    let _other = recv(&pool, b"y").unwrap();
    assert!(!pool.exhausted(), "one dry moment grew it");
    // More readers meet the same dry pool: the same moment.
    assert!(!pool.exhausted());
    assert!(!pool.exhausted());
    assert_eq!(pool.stats().grown, 0);
    // A receive is booked, then the pool runs dry again: a second moment.
    pool.give_back(held);
    let _more = recv(&pool, b"y").unwrap();
    assert!(pool.exhausted(), "the second moment doubled it");
    let s = assert_counts(&pool);
    assert_eq!((s.buffers, s.free, s.grown, s.peak), (4, 2, 1, 4));
}

#[test]
fn the_pool_stops_growing_at_its_maximum() {
    let pool = Pool::user(config(3, 10));
    for _ in 0..20 {
        burst(&pool);
    }
    let s = assert_counts(&pool);
    assert_eq!((s.buffers, s.free, s.grown, s.peak), (10, 10, 2, 10));
}

#[test]
fn after_a_burst_the_pool_shrinks_back_to_its_initial_size() {
    let pool = Pool::user(config(2, 8));
    burst(&pool);
    assert!(burst(&pool), "the second moment grew it");
    assert_eq!(pool.stats().buffers, 4);
    // Calm traffic: one buffer at a time.
    for _ in 0..100 {
        let b = recv(&pool, b"z").unwrap();
        pool.give_back(b);
        assert_counts(&pool);
    }
    let s = assert_counts(&pool);
    assert_eq!((s.buffers, s.free, s.retired, s.peak), (2, 2, 2, 4));
    // Retired ids are reused when it grows again.
    burst(&pool);
    burst(&pool);
    let s = assert_counts(&pool);
    assert_eq!((s.buffers, s.free, s.grown), (4, 4, 2));
    assert_eq!(pool.inner.borrow().slots.len(), 4, "ids not reused");
}

#[test]
fn a_closed_pool_wakes_waiters_and_never_grows() {
    let pool = Pool::user(config(1, 8));
    let held = recv(&pool, b"x").unwrap();
    let waker = std::task::Waker::noop();
    let mut cx = Context::from_waker(waker);
    assert!(pool.poll_free(&mut cx).is_pending());
    pool.close();
    assert!(pool.poll_free(&mut cx).is_ready());
    for _ in 0..4 {
        pool.exhausted();
    }
    assert_eq!(pool.stats().grown, 0);
    drop(held);
}
