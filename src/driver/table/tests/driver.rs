//! The table behind a [`Driver`] over the fake backend: what reaches the
//! backend on submit, release and shutdown.

use super::*;

/// A refused submission hands the data back and leaves nothing behind.
#[test]
fn refused_submission_returns_the_data_and_leaves_nothing() {
    let ((driver, kernel), log) = (fake_driver(), Log::default());
    kernel.borrow_mut().refuse = Some(libc::EAGAIN);
    let Err((data, e)) = driver.submit(op(&log), false) else {
        panic!("the refusal was lost")
    };
    assert_eq!(e.raw_os_error(), Some(libc::EAGAIN));
    assert_eq!((live(&driver), kernel.borrow().submitted.len()), (0, 0));
    drop(data);
    assert_eq!(take(&log), [Dropped]);
    assert!(driver.submit(op(&log), false).is_ok(), "refused twice");
}

/// Release with cancel: the cancel reaches the backend, and the entry (and
/// its memory) goes only when the cancel's completion arrives.
#[test]
fn release_with_cancel_frees_the_entry_only_on_its_completion() {
    let ((driver, kernel), log) = (fake_driver(), Log::default());
    let id = driver.submit(op(&log), false).expect("submit");
    assert_eq!(kernel.borrow().submitted, [id]);
    driver.release(id, true);
    assert_eq!(kernel.borrow().cancelled, [id]);
    assert_eq!(
        kernel.borrow().pending(),
        1,
        "the cancel is not answered yet"
    );
    assert_eq!(take(&log), [], "freed before the kernel answered");
    assert_eq!(live(&driver), 1);
    driver.turn(false, None).expect("turn");
    let ecanceled = -libc::ECANCELED;
    assert_eq!(
        take(&log),
        [Observed(ecanceled), Discarded(ecanceled), Dropped]
    );
    assert_eq!(live(&driver), 0);
}

/// Release without cancel sends none; a release after the completion
/// arrived sends none either.
#[test]
fn release_sends_a_cancel_only_when_asked_and_still_in_flight() {
    let ((driver, kernel), log) = (fake_driver(), Log::default());
    let quiet = driver.submit(op(&log), false).expect("submit");
    driver.release(quiet, false);
    let done = driver.submit(op(&log), false).expect("submit");
    kernel.borrow_mut().complete(done, 4, 0);
    driver.turn(false, None).expect("turn");
    driver.release(done, true);
    assert!(kernel.borrow().cancelled.is_empty());
    assert_eq!(live(&driver), 1, "only the abandoned entry is left");
}

/// A multishot queue reaching its cap is cancelled through the backend.
#[test]
fn a_full_multishot_queue_is_cancelled_through_the_backend() {
    let ((driver, kernel), log) = (fake_driver(), Log::default());
    let id = driver
        .submit(Box::new(TestOp { log, cap: 2 }), true)
        .expect("submit");
    kernel.borrow_mut().complete(id, 1, MORE);
    kernel.borrow_mut().complete(id, 2, MORE);
    driver.turn(false, None).expect("turn");
    assert_eq!(kernel.borrow().cancelled, [id]);
}

/// Shutdown cancels what is in flight, frees what completed, and waits for
/// the answers: everything is freed, nothing leaked.
#[test]
fn shutdown_cancels_everything_in_flight_and_drains() {
    let ((driver, kernel), log) = (fake_driver(), Log::default());
    let waiting = driver.submit(op(&log), false).expect("submit");
    let abandoned = driver.submit(op(&log), false).expect("submit");
    driver.release(abandoned, false);
    let multishot = driver.submit(op(&log), true).expect("submit");
    let done = driver.submit(op(&log), false).expect("submit");
    kernel.borrow_mut().complete(multishot, 9, MORE);
    kernel.borrow_mut().complete(done, 0, 0);
    driver.turn(false, None).expect("turn");
    assert_eq!(driver.shutdown(Duration::from_secs(5)), 0);
    assert_eq!(kernel.borrow().cancelled, [waiting, abandoned, multishot]);
    assert_eq!(live(&driver), 0);
    let dropped = take(&log).iter().filter(|e| **e == Dropped).count();
    assert_eq!(dropped, 4, "every entry freed once");
}

/// The kernel never answers the shutdown's cancels: the entries are
/// leaked, not freed, and counted.
#[test]
fn shutdown_leaks_what_the_kernel_never_gives_back() {
    let ((driver, kernel), log) = (fake_driver(), Log::default());
    kernel.borrow_mut().answer_cancels = false;
    let waiting = driver.submit(op(&log), false).expect("submit");
    let abandoned = driver.submit(op(&log), true).expect("submit");
    driver.release(abandoned, true);
    assert_eq!(driver.shutdown(Duration::from_millis(30)), 2);
    assert!(kernel.borrow().turns > 0, "shutdown did not wait");
    assert_eq!(kernel.borrow().cancelled, [abandoned, waiting, abandoned]);
    assert_eq!(take(&log), [], "memory the kernel may write was freed");
}
