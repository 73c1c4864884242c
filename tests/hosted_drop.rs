//! Dropping the tokio runtime (and its `LocalSet`) while 1,000 reads are in
//! flight: it returns within a second, nothing is leaked (the kernel gave
//! every operation back before its memory was freed) and every fd is
//! closed.

mod hosted_support;

use std::io;
use std::sync::mpsc;
use std::time::Duration;

use hosted_support::{Hosted, LIMIT, fd_count, fd_lock, within, yields};
use uring_bufio::io::BufReader;
use uring_bufio::net::UnixStream;

/// Reads in flight when the runtime is dropped.
const READS: usize = 1000;

/// How long dropping may take: the kernel answers 1,000 cancels in
/// microseconds; only a wait for the 5 s shutdown limit (or a hang) is slower.
const DROP_LIMIT: Duration = Duration::from_secs(1);

/// The order in which the test lets go of things.
#[derive(Clone, Copy, Debug)]
enum Order {
    /// `LocalSet`, runtime, then `Host::shutdown` (which reports leaks).
    ShutDownByHand,
    /// Runtime first, then the `LocalSet`; the driver ends with the host.
    RuntimeFirst,
    /// The host first (scope order), then the `LocalSet`: the driver ends
    /// with the last task that held an operation.
    HostFirst,
    /// `Host::shutdown` while the tasks still hold their reads (they are
    /// cancelled under them), then the `LocalSet` and the runtime.
    ShutDownFirst,
}

/// Raises the soft fd limit so that 1,000 sockets fit.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: `lim` is a valid rlimit for the duration of the call.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
}

/// Starts [`READS`] reads on 500 socket pairs (each end reading, none
/// writing), drops everything in `order`, and reports the phases to the
/// test thread: `started` once the reads are in flight, `done` with the
/// leak count once everything is dropped.
fn drop_with_reads_in_flight(order: Order) {
    raise_fd_limit();
    let _lock = fd_lock();
    let before = fd_count();
    let (started_tx, started) = mpsc::channel::<()>();
    let (done_tx, done) = mpsc::channel::<usize>();
    let body = std::thread::spawn(move || {
        let h = Hosted::new();
        let host = &h.host;
        h.block_on(async {
            for _ in 0..READS / 2 {
                let (a, b) = UnixStream::pair()?;
                for s in [a, b] {
                    tokio::task::spawn_local(async move {
                        let mut r = BufReader::new(s);
                        let _ = r.fill_buf().await;
                        unreachable!("nobody writes");
                    });
                }
            }
            // The LocalSet polls a few dozen tasks per tick.
            while host.in_flight() < READS {
                yields(1).await;
            }
            assert_eq!(host.in_flight(), READS, "every read is in flight");
            Ok(())
        });
        started_tx.send(()).unwrap();
        let Hosted { rt, local, host } = h;
        let leaked = match order {
            Order::ShutDownByHand => {
                drop(local);
                drop(rt);
                host.shutdown()
            }
            Order::RuntimeFirst => {
                drop(rt);
                drop(local);
                host.shutdown()
            }
            Order::ShutDownFirst => {
                let leaked = host.shutdown();
                drop(local);
                drop(rt);
                leaked
            }
            Order::HostFirst => {
                drop(host);
                drop(local);
                drop(rt);
                0
            }
        };
        done_tx.send(leaked).unwrap();
    });
    started
        .recv_timeout(LIMIT)
        .expect("the reads never got in flight");
    let leaked = match done.recv_timeout(DROP_LIMIT) {
        Ok(leaked) => leaked,
        Err(_) => panic!("{order:?}: dropping the runtime took longer than {DROP_LIMIT:?}"),
    };
    body.join().unwrap();
    assert_eq!(leaked, 0, "{order:?}: operations leaked");
    let after = within(LIMIT, move || {
        let mut after = fd_count();
        while after != before {
            std::thread::sleep(Duration::from_millis(10));
            after = fd_count();
        }
        after
    });
    assert_eq!(after, before);
}

#[test]
fn dropping_the_runtime_with_reads_in_flight_then_shutting_down() {
    drop_with_reads_in_flight(Order::ShutDownByHand);
}

#[test]
fn dropping_the_runtime_before_its_local_set() {
    drop_with_reads_in_flight(Order::RuntimeFirst);
}

#[test]
fn dropping_the_host_first_ends_the_driver_with_its_last_task() {
    drop_with_reads_in_flight(Order::HostFirst);
}

#[test]
fn shutting_down_while_tasks_hold_their_reads() {
    drop_with_reads_in_flight(Order::ShutDownFirst);
}

/// The driver task's own registration goes with the `LocalSet`; a host
/// shut down while tasks still run makes their next operation fail with an
/// error instead of hanging or panicking.
#[test]
fn operations_after_shutdown_fail_cleanly() -> io::Result<()> {
    let h = Hosted::new();
    let Hosted { rt, local, host } = h;
    drop(host);
    let res = local.block_on(&rt, async {
        let (a, _b) = UnixStream::pair()?;
        let (res, _) = a.read(bytes::BytesMut::with_capacity(8)).await;
        res
    });
    assert!(res.is_err(), "no driver is current any more");
    Ok(())
}
