//! Multishot entries: completions with `IORING_CQE_F_MORE`, the queue cap,
//! abandon.

use super::*;

/// Completions queue up in order; each with MORE leaves the entry; the last
/// (without MORE) ends it, and only then is the data freed.
#[test]
fn multishot_completions_arrive_in_order_and_the_last_ends_the_entry() {
    let (mut table, log) = (Table::default(), Log::default());
    let id = table.insert(op(&log), true);
    let (waker, count) = counting();
    let pending = table.poll_multishot(id, &mut Context::from_waker(&waker));
    assert!(pending.is_pending());
    table.complete(id, more(1));
    assert_eq!(count.wakes(), 1);
    table.complete(id, more(2));
    assert_eq!(next(&mut table, id), Some((1, false)));
    assert_eq!(next(&mut table, id), Some((2, false)));
    assert_eq!(next(&mut table, id), None);
    assert_eq!(table.in_flight(), [id]);
    table.complete(id, res(0));
    assert_eq!(take(&log), [Observed(1), Observed(2), Observed(0)]);
    assert!(
        table.in_flight().is_empty(),
        "a finished entry is in flight"
    );
    assert_eq!(next(&mut table, id), Some((0, true)));
    assert_eq!(take(&log), [Dropped]);
    assert_eq!(table.live(), 0);
}

/// The queue of uncollected completions reaching the operation's cap asks
/// the backend for one cancel, once.
#[test]
fn a_full_multishot_queue_asks_for_one_cancel() {
    let (mut table, log) = (Table::default(), Log::default());
    let id = table.insert(Box::new(TestOp { log, cap: 2 }), true);
    assert!(!table.complete(id, more(1)));
    assert!(table.complete(id, more(2)), "cap reached without a cancel");
    assert!(!table.complete(id, more(3)), "a second cancel for one cap");
    assert!(!table.complete(id, res(-libc::ECANCELED)));
}

/// Abandoned with completions queued: each queued one and each later one
/// with MORE is released; the data is freed only after the last.
#[test]
fn abandoned_multishot_is_freed_only_after_its_last_completion() {
    let (mut table, log) = (Table::default(), Log::default());
    let id = table.insert(op(&log), true);
    table.complete(id, more(1));
    assert!(matches!(table.release(id), Released::StillInFlight));
    assert_eq!(take(&log), [Observed(1), DiscardedOne(1)]);
    table.complete(id, more(2));
    assert_eq!(take(&log), [Observed(2), DiscardedOne(2)]);
    assert_eq!(table.live(), 1);
    assert_eq!(table.in_flight(), [id]);
    let ecanceled = -libc::ECANCELED;
    table.complete(id, res(ecanceled));
    assert_eq!(
        take(&log),
        [Observed(ecanceled), Discarded(ecanceled), Dropped]
    );
    assert_eq!(table.live(), 0);
}

/// Released after its last completion arrived but before it was
/// collected: the queue is released in order and the entry freed at once.
#[test]
fn released_finished_multishot_releases_its_queue_in_order() {
    let (mut table, log) = (Table::default(), Log::default());
    let id = table.insert(op(&log), true);
    table.complete(id, more(1));
    table.complete(id, more(2));
    table.complete(id, res(0));
    take(&log);
    assert!(matches!(table.release(id), Released::Freed));
    assert_eq!(
        take(&log),
        [DiscardedOne(1), DiscardedOne(2), Discarded(0), Dropped]
    );
    assert_eq!(table.live(), 0);
}
