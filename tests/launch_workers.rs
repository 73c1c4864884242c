//! The launcher's workers seen from outside: a worker that panics is
//! reported by `join` while the others go on (and its listener is closed);
//! `Send` closures build `!Send` futures on a worker and their handles are
//! awaited from tokio or joined from plain threads; std streams accepted
//! elsewhere are handed to workers.

mod launch_support;

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use launch_support::{Client, eventually, line_handler, server};
use socket2::{Domain, Socket, Type};
use uring_bufio::io::BufStream;
use uring_bufio::launch::{FailureCause, Launcher, Worker};
use uring_bufio::net::{TcpListener, TcpStream};

/// A listener on `addr` with `SO_REUSEPORT`, as a server's workers have.
fn reuseport_listener(addr: SocketAddr) -> std::net::TcpListener {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_reuse_port(true).unwrap();
    socket.bind(&addr.into()).unwrap();
    socket.listen(128).unwrap();
    socket.into()
}

/// Replies `"{worker}"` to each connection; worker 1 panics after its
/// first reply, worker 0 serves until shutdown.
async fn serve_or_panic(worker: Worker, listener: std::net::TcpListener) -> io::Result<()> {
    let listener = TcpListener::from_std(listener);
    loop {
        let accepted = worker.shutdown().run_until_begun(listener.accept()).await;
        let Some(accepted) = accepted else {
            return listener.close().await;
        };
        let (stream, _) = accepted?;
        let mut stream = BufStream::new(stream);
        stream
            .write_all(format!("{}\n", worker.index()).as_bytes())
            .await?;
        stream.shutdown().await?;
        if worker.index() == 1 {
            panic!("worker 1 gave up");
        }
    }
}

/// The worker that replied on a new connection.
fn which_worker(addr: SocketAddr) -> String {
    let mut client = Client::connect(addr).unwrap();
    client.line().unwrap().expect("a reply")
}

/// Worker 1 panics while worker 0 serves: the launcher's join names worker
/// 1 and its message, and once worker 1 is gone every connection reaches
/// worker 0 (the dead worker's listener was closed, so the kernel no
/// longer hashes connections to it).
#[test]
fn worker_panic_is_survived_and_reported() {
    let first = reuseport_listener("127.0.0.1:0".parse().unwrap());
    let addr = first.local_addr().unwrap();
    let listeners = std::sync::Mutex::new(vec![Some(first), Some(reuseport_listener(addr))]);
    let mut launcher = Launcher::new();
    let workers = launcher.workers(2).thread_name("panicky");
    let workers = workers
        .start(move |worker| {
            let listener = listeners.lock().unwrap()[worker.index()].take().unwrap();
            serve_or_panic(worker, listener)
        })
        .unwrap();
    // Connect until worker 1 has answered once (and so panicked).
    assert!(
        eventually(|| which_worker(addr) == "1"),
        "worker 1 never served"
    );
    assert!(eventually(|| !workers.is_alive(1)));
    assert!(workers.is_alive(0));
    for _ in 0..50 {
        assert_eq!(which_worker(addr), "0");
    }
    // Work handed to the dead worker is cancelled, not lost in a queue.
    let refused = workers.spawn_on(1, || async { 1 });
    assert!(refused.join().unwrap_err().is_cancelled());
    workers.shutdown();
    let err = workers.join().unwrap_err();
    assert_eq!(err.failures().len(), 1, "{err}");
    let failure = &err.failures()[0];
    assert_eq!((failure.index, failure.name.as_str()), (1, "panicky-1"));
    assert!(matches!(&failure.cause, FailureCause::Panic(m) if m == "worker 1 gave up"));
    assert!(
        err.to_string()
            .contains("worker 1 (panicky-1) panicked: worker 1 gave up")
    );
}

/// Two workers that run until shutdown and serve what is handed to them.
fn idle_workers() -> uring_bufio::launch::Workers {
    Launcher::new()
        .workers(2)
        .start(|worker| async move {
            worker.shutdown().begun().await;
            Ok(())
        })
        .unwrap()
}

/// From plain threads: each closure builds a future holding an `Rc` (not
/// `Send`) on its worker; the handles give the outputs, and a closure or a
/// future that panics gives a panic error, leaving the worker running.
#[test]
fn send_closures_run_on_workers_and_join_from_plain_threads() {
    let workers = std::sync::Arc::new(idle_workers());
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let workers = workers.clone();
            std::thread::spawn(move || {
                let handle = workers.spawn_on(i, move || {
                    let local = Rc::new(i * 10);
                    async move { (*local, std::thread::current().name().unwrap().to_string()) }
                });
                handle.join().unwrap()
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        assert_eq!(
            t.join().unwrap(),
            (i * 10, format!("uring-worker-{}", i % 2))
        );
    }
    let bad_closure =
        workers.spawn_on(0, || -> std::future::Ready<()> { panic!("in the closure") });
    assert!(bad_closure.join().unwrap_err().is_panic());
    let bad_future = workers.spawn_on(0, || async { panic!("in the future") });
    assert!(bad_future.join().unwrap_err().is_panic());
    assert_eq!(workers.spawn_on(0, || async { 5 }).join().unwrap(), 5);
    workers.shutdown();
    std::sync::Arc::into_inner(workers).unwrap().join().unwrap();
}

/// From tokio runtimes on other threads: the handles are awaited (tokio's
/// waker is woken from the worker), each future doing IO on its worker.
#[test]
fn remote_handles_are_awaited_from_tokio() {
    let workers = std::sync::Arc::new(idle_workers());
    let tokio_threads: Vec<_> = (0..2)
        .map(|i| {
            let workers = workers.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let handle = workers.spawn(move || async move {
                        let (a, b) = uring_bufio::net::UnixStream::pair()?;
                        a.write_all(format!("from {i}")).await.0?;
                        let (n, buf) = b.read(bytes::BytesMut::with_capacity(16)).await;
                        Ok::<_, io::Error>(String::from_utf8(buf[..n?].to_vec()).unwrap())
                    });
                    handle.await.unwrap().unwrap()
                })
            })
        })
        .collect();
    for (i, t) in tokio_threads.into_iter().enumerate() {
        assert_eq!(t.join().unwrap(), format!("from {i}"));
    }
    workers.shutdown();
    std::sync::Arc::into_inner(workers).unwrap().join().unwrap();
}

/// A std stream accepted by a plain thread is handed to a worker in a
/// closure, which serves it with this crate's stream; and one handed to a
/// server goes to its handler.
#[test]
fn accepted_std_streams_are_handed_to_workers() {
    let workers = idle_workers();
    let outside = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = Client::connect(outside.local_addr().unwrap()).unwrap();
    let (accepted, _) = outside.accept().unwrap();
    let served = workers.spawn_on(1, move || async move {
        let stream = TcpStream::from_std(accepted);
        stream.write_all("handed over\n").await.0
    });
    served.join().unwrap().unwrap();
    assert_eq!(client.line().unwrap().as_deref(), Some("handed over"));
    workers.shutdown();
    workers.join().unwrap();

    let running = server(2).serve(line_handler).unwrap();
    let mut client = Client::connect(outside.local_addr().unwrap()).unwrap();
    let (accepted, _) = outside.accept().unwrap();
    running.hand_off(accepted).unwrap();
    assert!(client.ask("hi").unwrap().ends_with(":hi"));
    assert!(eventually(|| running
        .stats()
        .iter()
        .map(|s| s.handed_in)
        .sum::<u64>()
        == 1));
    running.shutdown();
    assert_eq!(client.line().unwrap().as_deref(), Some("bye"));
    running.join().unwrap();
}

/// Signals raised in this process reach `Signals::recv` on our runtime, in
/// order, also when they arrived before anybody waited.
#[test]
fn signals_are_received_on_the_runtime() {
    use uring_bufio::launch::signal::{SIGUSR1, SIGUSR2, Signals};
    let mut signals = Signals::new(&[SIGUSR1, SIGUSR2]).unwrap();
    // SAFETY: raise(3) only delivers the signal, whose handler was installed above.
    unsafe {
        libc::raise(SIGUSR2);
        libc::raise(SIGUSR1);
    }
    let rt = uring_bufio::Runtime::new().unwrap();
    let limit = std::time::Duration::from_secs(5);
    let got = rt.block_on(uring_bufio::time::timeout(limit, async {
        Ok::<_, io::Error>((signals.recv().await?, signals.recv().await?))
    }));
    assert_eq!(got.unwrap().unwrap(), (SIGUSR2, SIGUSR1));
}
