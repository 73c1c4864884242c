//! The launcher's server: both listener modes spread connections over the
//! workers, graceful shutdown lets open connections finish their replies,
//! the deadline cancels the rest, the per-worker cap holds, and a panicking
//! connection does not take its worker down. Each test leaves the fd
//! count where it was (the tests run one at a time for that).

mod launch_support;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use launch_support::{Client, eventually, fd_count, join_within, line_handler, server, settle_fds};
use uring_bufio::launch::{Connection, Listen};
use uring_bufio::net::TcpStream;

/// The tests count the process's fds: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Connects `n` times in turn; returns how many replies each worker gave.
fn spread(addr: std::net::SocketAddr, n: usize, workers: usize) -> Vec<usize> {
    let mut per_worker = vec![0; workers];
    for i in 0..n {
        let mut client = Client::connect(addr).unwrap();
        let reply = client.ask(&format!("hello {i}")).unwrap();
        let (worker, text) = reply.split_once(':').unwrap();
        assert_eq!(text, format!("hello {i}"));
        per_worker[worker.parse::<usize>().unwrap()] += 1;
    }
    per_worker
}

/// Two workers with `SO_REUSEPORT`: the kernel hands each of them some of
/// 100 connections, and the workers' counters agree with the replies.
#[test]
fn reuseport_spreads_connections_over_both_workers() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let start = fd_count();
    let running = server(2)
        .listen(Listen::ReusePort)
        .serve(line_handler)
        .unwrap();
    let per_worker = spread(running.local_addr(), 100, 2);
    assert!(per_worker.iter().all(|&n| n > 0), "{per_worker:?}");
    assert!(eventually(|| running.stats().iter().all(|s| s.live == 0)));
    let stats = running.stats();
    for (worker, s) in stats.iter().enumerate() {
        assert_eq!(s.accepted as usize, per_worker[worker], "{stats:?}");
        assert_eq!(s.finished, s.accepted, "{stats:?}");
    }
    running.shutdown();
    running.join().unwrap();
    assert_eq!(settle_fds(start), start, "fds left behind");
}

/// One acceptor handing connections round-robin: both workers serve, and
/// every connection was handed in, none accepted by a worker itself.
#[test]
fn acceptor_hands_connections_to_both_workers() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let start = fd_count();
    let running = server(2)
        .listen(Listen::Acceptor)
        .serve(line_handler)
        .unwrap();
    let per_worker = spread(running.local_addr(), 20, 2);
    assert_eq!(per_worker, vec![10, 10], "round-robin, one at a time");
    let stats = running.stats();
    assert!(
        stats.iter().all(|s| s.accepted == 0 && s.handed_in == 10),
        "{stats:?}"
    );
    running.shutdown();
    running.join().unwrap();
    assert_eq!(settle_fds(start), start, "fds left behind");
}

/// Shutdown with ten connections open: each connection task sees the
/// token and finishes with its last reply ("bye") before the end of
/// stream; no task is cancelled and no fd is left.
#[test]
fn graceful_shutdown_lets_open_connections_finish_their_reply() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let start = fd_count();
    let running = server(2)
        .grace(Duration::from_secs(10))
        .serve(line_handler)
        .unwrap();
    let addr = running.local_addr();
    let mut clients: Vec<Client> = (0..10).map(|_| Client::connect(addr).unwrap()).collect();
    for client in &mut clients {
        assert!(client.ask("ping").unwrap().ends_with(":ping"));
    }
    running.shutdown();
    for client in &mut clients {
        assert_eq!(client.line().unwrap().as_deref(), Some("bye"));
        assert_eq!(
            client.line().unwrap(),
            None,
            "end of stream after the reply"
        );
    }
    let stats = running.join().unwrap();
    let finished: u64 = stats.iter().map(|s| s.finished).sum();
    assert_eq!(finished, 10, "{stats:?}");
    assert!(stats.iter().all(|s| s.cancelled == 0), "{stats:?}");
    // A new connection is refused: the listeners are closed.
    assert!(std::net::TcpStream::connect(addr).is_err());
    drop(clients);
    assert_eq!(settle_fds(start), start, "fds left behind");
}

/// Connection tasks that ignore the token are cancelled at the deadline:
/// the join returns soon after it, the peers see their sockets closed, and
/// no fd is left.
#[test]
fn deadline_cancels_connections_that_do_not_finish() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let start = fd_count();
    let deaf = |stream: TcpStream, _conn: Connection| async move {
        let (_n, _buf) = stream.read(bytes::BytesMut::with_capacity(16)).await;
        std::future::pending::<std::io::Result<()>>().await
    };
    let running = server(2)
        .grace(Duration::from_millis(200))
        .serve(deaf)
        .unwrap();
    let mut clients: Vec<Client> = (0..6)
        .map(|_| Client::connect(running.local_addr()).unwrap())
        .collect();
    assert!(eventually(|| running
        .stats()
        .iter()
        .map(|s| s.live)
        .sum::<u64>()
        == 6));
    let began = Instant::now();
    running.shutdown();
    let counters = running.workers().len();
    join_within(running, Duration::from_secs(5));
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(counters, 2);
    for client in &mut clients {
        assert_eq!(client.line().unwrap(), None, "closed by the cancelled task");
    }
    drop(clients);
    assert_eq!(settle_fds(start), start, "fds left behind");
}

/// With a cap of 2 on one worker, a third connection waits in the backlog
/// until one of the first two ends.
#[test]
fn connection_cap_holds_the_next_connection_back() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let running = server(1).max_connections(2).serve(line_handler).unwrap();
    let addr = running.local_addr();
    let mut first = Client::connect(addr).unwrap();
    let mut second = Client::connect(addr).unwrap();
    assert_eq!(first.ask("a").unwrap(), "0:a");
    assert_eq!(second.ask("b").unwrap(), "0:b");
    let mut third = Client::connect(addr).unwrap();
    third.send("c").unwrap();
    third.read_timeout(Duration::from_millis(300)).unwrap();
    assert!(third.line().is_err(), "served beyond the cap");
    assert_eq!(running.stats()[0].live, 2);
    drop(first);
    third.read_timeout(launch_support::REPLY_LIMIT).unwrap();
    assert_eq!(third.line().unwrap().as_deref(), Some("0:c"));
    running.shutdown();
    running.join().unwrap();
}

/// A connection task that panics is counted; its worker serves on.
#[test]
fn panicking_connection_leaves_its_worker_serving() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let handler = |stream: TcpStream, conn: Connection| async move {
        let (n, buf) = stream.read(bytes::BytesMut::with_capacity(16)).await;
        if &buf[..n?] == b"boom\n" {
            panic!("connection handler panicked on purpose");
        }
        stream.write_all(format!("{}:ok\n", conn.worker())).await.0
    };
    let running = server(1).serve(handler).unwrap();
    let mut boom = Client::connect(running.local_addr()).unwrap();
    boom.send("boom").unwrap();
    assert_eq!(
        boom.line().unwrap(),
        None,
        "the panicked task's socket is closed"
    );
    let mut fine = Client::connect(running.local_addr()).unwrap();
    assert_eq!(fine.ask("hi").unwrap(), "0:ok");
    assert!(eventually(|| running.stats()[0].panicked == 1));
    running.shutdown();
    running.join().unwrap();
}
