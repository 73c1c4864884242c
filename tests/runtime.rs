//! The runtime on a real ring: `block_on`, tasks and join handles, sleeps and
//! timeouts, a tiny ring under load, the ring fd, and wake-ups from other
//! threads.

mod support;

use std::cell::Cell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use support::yield_now;
use support::{Stream, bounded, read_exact, read_to_end, shutdown_write, unix_pair, within};
use uring_bufio::net::{TcpListener, TcpStream};
use uring_bufio::time::{sleep, timeout};
use uring_bufio::{Runtime, spawn};

/// Watchdog for every test in this file: only a hang reaches it.
const LIMIT: Duration = Duration::from_secs(60);

/// The text of a panic payload (`&str` or `String`).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string payload>".to_string())
}

/// Sets its flag when dropped: shows that a task's future was dropped.
struct SetOnDrop(Rc<Cell<bool>>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// `block_on` hands back the output of its future.
#[test]
fn block_on_returns_the_value() {
    within(LIMIT, || {
        let rt = Runtime::new().unwrap();
        assert_eq!(rt.block_on(async { 6 * 7 }), 42);
        let s = rt.block_on(async {
            sleep(Duration::from_millis(1)).await;
            String::from("after a sleep")
        });
        assert_eq!(s, "after a sleep");
    });
}

/// A spawned task's output arrives through its `JoinHandle`, also when the
/// handle is awaited only after the task finished, and many tasks each get
/// their own output.
#[test]
fn spawn_delivers_output_through_join_handle() {
    within(LIMIT, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let h = spawn(async { "done" });
            assert_eq!(bounded("join", h).await.unwrap(), "done");

            let early = spawn(async { 7u32 });
            sleep(Duration::from_millis(5)).await;
            assert!(early.is_finished(), "task never ran while main slept");
            assert_eq!(early.await.unwrap(), 7);

            let handles: Vec<_> = (0..100u64)
                .map(|i| {
                    spawn(async move {
                        sleep(Duration::from_millis(i % 7)).await;
                        i * i
                    })
                })
                .collect();
            for (i, h) in handles.into_iter().enumerate() {
                let i = i as u64;
                assert_eq!(bounded("join", h).await.unwrap(), i * i);
            }
        });
    });
}

/// A task that panics resolves its handle to `is_panic()` carrying the
/// message, and the runtime and its other tasks carry on.
#[test]
fn panicking_task_gives_is_panic_with_message() {
    within(LIMIT, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let bystander = spawn(async {
                sleep(Duration::from_millis(20)).await;
                "still here"
            });
            let h = spawn(async {
                sleep(Duration::from_millis(1)).await;
                panic!("task exploded: {}", 42);
            });
            let err = bounded("join", h).await.unwrap_err();
            assert!(err.is_panic(), "{err:?}");
            assert!(!err.is_cancelled());
            assert!(err.to_string().contains("task exploded: 42"), "{err}");
            assert_eq!(panic_message(&*err.into_panic()), "task exploded: 42");

            let h = spawn(async { panic!("static message") });
            let err = bounded("join", h).await.unwrap_err();
            assert_eq!(panic_message(&*err.into_panic()), "static message");

            assert_eq!(bounded("join", bystander).await.unwrap(), "still here");
        });
    });
}

/// `abort()` drops the task's future (with its in-flight sleep) and the
/// handle resolves to `is_cancelled()`; a task aborted before its first poll
/// never runs; a task that finished before `abort()` keeps its output.
#[test]
fn abort_gives_is_cancelled() {
    within(LIMIT, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let dropped = Rc::new(Cell::new(false));
            let guard = SetOnDrop(dropped.clone());
            let h = spawn(async move {
                let _guard = guard;
                sleep(Duration::from_secs(60)).await;
                1
            });
            sleep(Duration::from_millis(10)).await;
            assert!(!h.is_finished());
            h.abort();
            let err = bounded("join aborted", h).await.unwrap_err();
            assert!(err.is_cancelled(), "{err:?}");
            assert!(!err.is_panic());
            assert!(dropped.get(), "the aborted task's future was not dropped");

            let ran = Rc::new(Cell::new(false));
            let ran2 = ran.clone();
            let h = spawn(async move { ran2.set(true) });
            h.abort();
            assert!(bounded("join", h).await.unwrap_err().is_cancelled());
            assert!(!ran.get(), "a task aborted before its first poll ran");

            let h = spawn(async { 5 });
            sleep(Duration::from_millis(2)).await;
            assert!(h.is_finished());
            h.abort();
            assert_eq!(bounded("join", h).await.unwrap(), 5);
        });
    });
}

/// Two spawned tasks make progress together: they ping-pong 200 messages
/// through a Unix socketpair, each waiting on the other in turn.
#[test]
fn spawned_tasks_run_concurrently() {
    const ROUNDS: usize = 200;
    within(LIMIT, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let (a, b) = unix_pair();
            let pinger = spawn(async move {
                for i in 0..ROUNDS {
                    let (res, _) = a.write_all(format!("ping {i:04}\n")).await;
                    res.unwrap();
                    let got = read_exact(&a, 10).await.unwrap();
                    assert_eq!(&got[..], format!("pong {i:04}\n").as_bytes());
                }
            });
            let ponger = spawn(async move {
                for i in 0..ROUNDS {
                    let got = read_exact(&b, 10).await.unwrap();
                    assert_eq!(&got[..], format!("ping {i:04}\n").as_bytes());
                    let (res, _) = b.write_all(format!("pong {i:04}\n")).await;
                    res.unwrap();
                }
            });
            // Joined in the "wrong" order on purpose: neither blocks the other.
            ponger.await.unwrap();
            pinger.await.unwrap();
        });
    });
}

/// A task that never waits (it yields, always ready again) does not starve
/// completions: a sleep in another task still ends and is seen.
#[test]
fn completions_arrive_while_tasks_stay_ready() {
    within(LIMIT, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let flag = Rc::new(Cell::new(false));
            let setter = flag.clone();
            let h = spawn(async move {
                sleep(Duration::from_millis(10)).await;
                setter.set(true);
            });
            let start = Instant::now();
            while !flag.get() && start.elapsed() < Duration::from_secs(5) {
                yield_now().await;
            }
            assert!(
                flag.get(),
                "a 10 ms sleep did not complete in 5 s while the main future kept yielding"
            );
            h.await.unwrap();
        });
    });
}

/// `sleep(d)` never returns before `d` has passed, for short and longer `d`.
#[test]
fn sleep_sleeps_at_least_the_duration() {
    within(LIMIT, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            for ms in [0, 1, 5, 20, 50] {
                let d = Duration::from_millis(ms);
                let start = Instant::now();
                sleep(d).await;
                let took = start.elapsed();
                assert!(took >= d, "sleep({d:?}) returned after {took:?}");
            }
        });
    });
}

/// `timeout` gives `Err(Elapsed)` once its time is up (not when the slow
/// future would have finished), and `Ok` with the output for a quick one.
#[test]
fn timeout_elapses_for_slow_future_and_passes_quick_one() {
    within(LIMIT, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let start = Instant::now();
            let res = timeout(Duration::from_millis(30), sleep(Duration::from_secs(60))).await;
            let took = start.elapsed();
            assert!(res.is_err(), "a 60 s sleep finished within a 30 ms timeout");
            assert!(took >= Duration::from_millis(30), "elapsed early: {took:?}");
            assert!(took < Duration::from_secs(10), "elapsed late: {took:?}");

            assert_eq!(timeout(Duration::from_secs(10), async { 7 }).await, Ok(7));
            let start = Instant::now();
            let res = timeout(Duration::from_secs(10), sleep(Duration::from_millis(5))).await;
            assert_eq!(res, Ok(()));
            assert!(start.elapsed() < Duration::from_secs(10));
        });
    });
}

/// `block_on` inside `block_on` panics, for the same and for another
/// runtime, and the outer runtime keeps working afterwards.
#[test]
fn nested_block_on_panics() {
    within(LIMIT, || {
        let rt = Runtime::new().unwrap();
        let other = Runtime::new().unwrap();
        rt.block_on(async {
            let same = catch_unwind(AssertUnwindSafe(|| rt.block_on(async { 1 })));
            let msg = panic_message(&*same.expect_err("nested block_on on the same runtime"));
            assert!(msg.contains("runtime"), "unexpected panic message: {msg}");

            let nested = catch_unwind(AssertUnwindSafe(|| other.block_on(async { 2 })));
            nested.expect_err("block_on of another runtime inside block_on");

            sleep(Duration::from_millis(1)).await;
            assert_eq!(spawn(async { 3 }).await.unwrap(), 3);
        });
        // Both runtimes are still usable on their own.
        assert_eq!(other.block_on(async { 4 }), 4);
        assert_eq!(rt.block_on(async { 5 }), 5);
    });
}

/// Payload number `i` of the echo test: distinct length and content.
fn payload(i: usize) -> Bytes {
    (0..1000 + 131 * i)
        .map(|j| ((i * 7 + j) % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// Echoes `s` until end of stream, then shuts down its write direction;
/// returns the number of bytes echoed.
async fn echo(s: TcpStream) -> usize {
    let mut total = 0;
    loop {
        let (res, buf) = bounded(
            "echo read",
            s.read_buf(bytes::BytesMut::with_capacity(1024)),
        )
        .await;
        let n = res.expect("echo read");
        if n == 0 {
            shutdown_write(&s).await.expect("echo shutdown");
            return total;
        }
        total += n;
        s.send_all(buf.freeze()).await.0.expect("echo write");
    }
}

/// A ring of 8 submission entries (32 completion entries) under 300
/// concurrent sleeps of six lengths (50 expire together: more than the
/// completion queue holds) plus 64 concurrent TCP echo round trips (~430
/// operations in flight at the peak) loses nothing: every sleep ends no
/// earlier than asked, every byte comes back in order.
#[test]
fn tiny_ring_loses_no_operation() {
    const SLEEPS: usize = 300;
    const CONNS: usize = 64;
    within(LIMIT, || {
        let rt = Runtime::builder().entries(8).build().unwrap();
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = spawn(async move {
                let mut echoes = Vec::new();
                for _ in 0..CONNS {
                    let (s, _) = bounded("accept", listener.accept()).await.unwrap();
                    echoes.push(spawn(echo(s)));
                }
                let mut total = 0;
                for e in echoes {
                    total += e.await.unwrap();
                }
                total
            });
            let sleeps: Vec<_> = (0..SLEEPS)
                .map(|i| {
                    spawn(async move {
                        let d = Duration::from_millis((i % 6 * 5) as u64);
                        let start = Instant::now();
                        sleep(d).await;
                        (d, start.elapsed())
                    })
                })
                .collect();
            let clients: Vec<_> = (0..CONNS)
                .map(|i| {
                    spawn(async move {
                        let s = bounded("connect", TcpStream::connect(addr)).await.unwrap();
                        let sent = payload(i);
                        s.send_all(sent.clone()).await.0.unwrap();
                        shutdown_write(&s).await.unwrap();
                        let got = read_to_end(&s).await.unwrap();
                        (sent, got)
                    })
                })
                .collect();

            let mut finished = 0;
            for h in sleeps {
                let (d, took) = bounded("sleep task", h).await.unwrap();
                assert!(took >= d, "sleep({d:?}) returned after {took:?}");
                finished += 1;
            }
            assert_eq!(finished, SLEEPS);
            let mut expected = 0;
            for (i, h) in clients.into_iter().enumerate() {
                let (sent, got) = bounded("client task", h).await.unwrap();
                assert_eq!(got.len(), sent.len(), "connection {i}: length");
                assert!(got == sent, "connection {i}: bytes differ");
                expected += sent.len();
            }
            assert_eq!(bounded("server", server).await.unwrap(), expected);
        });
    });
}

/// Completions are observable from another event loop: an epoll set watching
/// `rt.completion_fd()` reports it readable once a submitted 50 ms sleep is due,
/// while the runtime itself is not reaping.
///
/// Poll order: (1) the main future polls `sleep(50 ms)` once (queued) and
/// wakes itself; (2) the runtime's tick submits it without waiting; (3) the
/// main future, polled again, blocks in `epoll_wait` (2 s) on an epoll set
/// holding the ring fd. The fd must become readable about 50 ms in.
#[test]
fn ring_fd_becomes_readable_when_a_completion_is_due() {
    within(LIMIT, || {
        let rt = Runtime::new().unwrap();
        let ring = rt.completion_fd().expect("completion fd");
        // SAFETY: epoll_create1 takes no pointers; the result is checked.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(
            ep >= 0,
            "epoll_create1: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: `ep` is a new fd owned by nobody else.
        let ep = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(ep) };
        let ep_raw = std::os::fd::AsRawFd::as_raw_fd(&ep);
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 1,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call;
        // both fds are open.
        let rc = unsafe { libc::epoll_ctl(ep_raw, libc::EPOLL_CTL_ADD, ring, &mut ev) };
        assert_eq!(rc, 0, "epoll_ctl: {}", std::io::Error::last_os_error());
        // epoll_wait for up to `ms`, resumed after EINTR (task work of a
        // ring without deferred task run interrupts it) as an event loop would.
        let wait = |ms: u64| {
            let deadline = Instant::now() + Duration::from_millis(ms);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let mut out = libc::epoll_event { events: 0, u64: 0 };
                // SAFETY: `out` is a valid buffer for one event during the call.
                let n = unsafe { libc::epoll_wait(ep_raw, &mut out, 1, left.as_millis() as i32) };
                let err = std::io::Error::last_os_error();
                if n >= 0 || err.kind() != std::io::ErrorKind::Interrupted {
                    return n;
                }
            }
        };

        let (before, ready, took) = rt.block_on(async {
            let mut s = Box::pin(sleep(Duration::from_millis(50)));
            assert!(support::poll_once(&mut s).await.is_pending());
            yield_now().await; // one tick: the sleep reaches the kernel
            let before = wait(0);
            let start = Instant::now();
            let ready = wait(2000);
            let took = start.elapsed();
            s.await;
            (before, ready, took)
        });
        assert_eq!(before, 0, "ring fd readable before any completion was due");
        assert_eq!(
            ready, 1,
            "ring fd never became readable (epoll_wait timed out after {took:?}) although \
             the 50 ms sleep was due"
        );
        assert!(
            took < Duration::from_secs(1),
            "readable only after {took:?}"
        );
    });
}

/// Shared between [`Remote`] and the thread that completes it.
#[derive(Default)]
struct RemoteState {
    /// Set by the other thread.
    done: bool,
    /// Waker of the last poll.
    waker: Option<Waker>,
}

/// A future completed by another thread through its stored waker.
struct Remote(Arc<Mutex<RemoteState>>);

impl Future for Remote {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.0.lock().unwrap();
        if state.done {
            return Poll::Ready(());
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Starts a thread that, after 50 ms, completes `state` and wakes the
/// stored waker; it returns whether a waker was there to wake.
fn wake_later(state: Arc<Mutex<RemoteState>>) -> std::thread::JoinHandle<bool> {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        let waker = {
            let mut s = state.lock().unwrap();
            s.done = true;
            s.waker.take()
        };
        let had = waker.is_some();
        if let Some(w) = waker {
            w.wake();
        }
        had
    })
}

/// A waker used on another thread wakes a runtime sleeping in the kernel:
/// once with nothing else in flight, once while a 60 s sleep is in flight.
#[test]
fn remote_wake_from_another_thread() {
    within(LIMIT, || {
        let rt = Runtime::new().unwrap();
        for busy in [false, true] {
            let state = Arc::new(Mutex::new(RemoteState::default()));
            let start = Instant::now();
            let thread = wake_later(state.clone());
            rt.block_on(async {
                if busy {
                    drop(spawn(sleep(Duration::from_secs(60))));
                }
                Remote(state).await
            });
            let took = start.elapsed();
            assert!(thread.join().unwrap(), "the waker was never stored");
            assert!(
                took >= Duration::from_millis(50),
                "returned before the wake"
            );
            assert!(took < Duration::from_secs(10), "woken only after {took:?}");
        }
    });
}

/// A runtime kept in a `thread_local!` is dropped while the thread's locals
/// are destroyed, with a task still holding a sleep and a writer with bytes
/// left: the thread ends normally instead of aborting the process (found by
/// the property tests: the drop touched the already destroyed driver and
/// scheduler thread-locals).
#[test]
fn runtime_in_a_thread_local_drops_cleanly_at_thread_exit() {
    thread_local! {
        static RT: Runtime = Runtime::new().expect("runtime");
    }
    let t = std::thread::spawn(|| {
        RT.with(|rt| {
            rt.block_on(async {
                uring_bufio::spawn(async {
                    uring_bufio::time::sleep(Duration::from_secs(60)).await;
                });
                let (a, _b) = uring_bufio::net::UnixStream::pair().unwrap();
                uring_bufio::spawn(async move {
                    let mut w = uring_bufio::io::BufWriter::new(a);
                    w.write_all(b"left in the buffer").await.unwrap();
                    uring_bufio::time::sleep(Duration::from_secs(60)).await;
                });
                uring_bufio::time::sleep(Duration::from_millis(5)).await;
            });
        });
    });
    t.join().expect("thread ended without a panic");
}
