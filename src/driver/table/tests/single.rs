//! Single-shot entries: complete, poll, abandon, stale ids, leaks.

use super::*;

/// Submit, complete, poll: the data and result go back to the poller, the
/// slot is free, and the data is freed by the poller, not by the table.
#[test]
fn completion_then_poll_hands_the_data_back() {
    let (mut table, log) = (Table::default(), Log::default());
    let id = table.insert(op(&log), false);
    assert_eq!(table.live(), 1);
    assert!(!table.complete(id, res(5)));
    assert_eq!(take(&log), [Observed(5)]);
    let Poll::Ready((data, res)) = poll(&mut table, id) else {
        panic!("completed entry is pending")
    };
    assert_eq!(raw(&res), 5);
    assert_eq!(table.live(), 0);
    assert_eq!(take(&log), [], "the table freed data it handed back");
    assert!(data.into_any().downcast::<TestOp>().is_ok());
    assert_eq!(take(&log), [Dropped]);
    assert!(matches!(table.release(id), Released::Freed));
}

/// A poll before the completion registers the waker; the completion wakes
/// the last waker registered (only it), and the next poll is ready.
#[test]
fn poll_before_completion_registers_the_waker_and_completion_wakes_it() {
    let (mut table, log) = (Table::default(), Log::default());
    let id = table.insert(op(&log), false);
    let (first, first_count) = counting();
    let (second, second_count) = counting();
    assert!(
        table
            .poll(id, &mut Context::from_waker(&first))
            .is_pending()
    );
    assert!(
        table
            .poll(id, &mut Context::from_waker(&second))
            .is_pending()
    );
    assert!(
        table
            .poll(id, &mut Context::from_waker(&second))
            .is_pending()
    );
    assert_eq!((first_count.wakes(), second_count.wakes()), (0, 0));
    table.complete(id, res(3));
    assert_eq!((first_count.wakes(), second_count.wakes()), (0, 1));
    assert!(poll(&mut table, id).is_ready());
    assert_eq!(table.live(), 0);
}

/// The future goes away first: the entry keeps the data (the kernel may
/// still write it) until the completion arrives, which discards and frees it.
#[test]
fn abandoned_entry_keeps_its_data_until_the_completion_arrives() {
    let (mut table, log) = (Table::default(), Log::default());
    let id = table.insert(op(&log), false);
    assert!(matches!(table.release(id), Released::StillInFlight));
    assert!(matches!(table.release(id), Released::StillInFlight));
    assert_eq!(take(&log), [], "abandoned data freed before its completion");
    assert_eq!(table.live(), 1);
    assert_eq!(table.in_flight(), [id]);
    table.complete(id, res(-libc::ECANCELED));
    let ecanceled = -libc::ECANCELED;
    assert_eq!(
        take(&log),
        [Observed(ecanceled), Discarded(ecanceled), Dropped]
    );
    assert_eq!(table.live(), 0);
    assert!(matches!(table.release(id), Released::Freed));
}

/// Released after completing but before the poll: the result is discarded
/// (an accepted fd would be closed here) and the data freed at once.
#[test]
fn release_after_completion_discards_the_uncollected_result() {
    let (mut table, log) = (Table::default(), Log::default());
    let id = table.insert(op(&log), false);
    table.complete(id, res(7));
    assert!(table.in_flight().is_empty());
    assert!(matches!(table.release(id), Released::Freed));
    assert_eq!(take(&log), [Observed(7), Discarded(7), Dropped]);
    assert_eq!(table.live(), 0);
}

/// A slot reused by a new entry gets a new generation: a completion or a
/// release aimed at the old id does not touch the new entry.
#[test]
fn a_stale_id_never_touches_the_reused_slot() {
    let (mut table, log) = (Table::default(), Log::default());
    let old = table.insert(op(&log), false);
    table.complete(old, res(1));
    assert!(poll(&mut table, old).is_ready());
    let new = table.insert(op(&log), false);
    assert_eq!(new.index, old.index);
    assert_ne!(new, old);
    assert_eq!(OpId::from_user_data(new.user_data()), new);
    take(&log);
    assert!(!table.complete(old, res(2)));
    assert!(matches!(table.release(old), Released::Freed));
    assert_eq!(take(&log), [], "a stale id reached the new entry");
    assert!(poll(&mut table, new).is_pending());
    assert_eq!(table.live(), 1);
}

/// `drop_finished` frees completed, uncollected entries and nothing the
/// kernel may still touch.
#[test]
fn drop_finished_frees_only_what_completed() {
    let (mut table, log) = (Table::default(), Log::default());
    let waiting = table.insert(op(&log), false);
    let done = table.insert(op(&log), false);
    table.complete(done, res(0));
    take(&log);
    table.drop_finished();
    assert_eq!(take(&log), [Discarded(0), Dropped]);
    assert_eq!(table.live(), 1);
    assert_eq!(table.in_flight(), [waiting]);
}

/// When the kernel never answers, the remaining entries are forgotten,
/// never freed: memory the kernel may still write stays allocated.
#[test]
fn leak_remaining_forgets_entries_without_freeing_them() {
    let (mut table, log) = (Table::default(), Log::default());
    let waiting = table.insert(op(&log), false);
    let abandoned = table.insert(op(&log), true);
    table.release(abandoned);
    assert_eq!(table.in_flight(), [waiting, abandoned]);
    assert_eq!(table.leak_remaining(), 2);
    assert_eq!(table.live(), 0);
    drop(table);
    assert_eq!(take(&log), [], "leaked memory was freed");
}
