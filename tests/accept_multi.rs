//! Accepting on listeners: where io_uring has multishot accept, one
//! operation serves every `accept` call of a listener; on epoll (and older
//! kernels) each call is a single-shot accept. The same tests run on both
//! (`URING_BUFIO_DRIVER=epoll` picks epoll): bursts of connects accepted by
//! one and by many tasks, each exactly once and with its own peer; more
//! connects than the multishot queue's cap; accept futures dropped at random
//! polls; listeners dropped, closed, or outliving their runtime with
//! connections queued. fd counts are process-wide and the tests of this file
//! run on parallel threads, so each one holds [`LOCK`].

mod support;

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Mutex;
use std::time::Duration;

use support::{Rng, bounded, fd_count, poll_once, raise_fd_limit, read_exact, settle_fd_count};
use support::{Stream, within};
use uring_bufio::net::{TcpListener, TcpStream, UnixListener};
use uring_bufio::time::sleep;
use uring_bufio::{Capability, DriverKind, Runtime, spawn};

/// Serialises the tests of this file: fd counts are process-wide.
static LOCK: Mutex<()> = Mutex::new(());

/// Watchdog for each test: only a hang reaches it.
const LIMIT: Duration = Duration::from_secs(60);

/// How long closed fds may take to disappear (cancels and late completions
/// must come back from the kernel first).
const SETTLE: Duration = Duration::from_secs(3);

/// More than the multishot accept's queue cap (64).
const OVER_CAP: u32 = 200;

/// Runs `body` on a fresh runtime under [`LOCK`] and the watchdog, and
/// checks the process has as many fds once the runtime is gone as before.
fn fd_neutral(body: impl AsyncFnOnce() + Send + 'static) {
    let _lock = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let before = fd_count();
    within(LIMIT, move || {
        raise_fd_limit();
        let rt = Runtime::new().expect("runtime");
        rt.block_on(body());
    });
    let mut after = fd_count();
    for _ in 0..200 {
        if after == before {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
        after = fd_count();
    }
    panic!("{before} fds open before the test, {after} after");
}

/// Connects `n` clients to `connect` from another thread, each sending its
/// index as 4 bytes; returns them with their local addresses (what the
/// server must see as the peer).
fn clients<C: Write + Send + 'static>(
    n: u32,
    connect: impl Fn() -> io::Result<C> + Send + 'static,
    local: impl Fn(&C) -> Option<SocketAddr> + Send + 'static,
) -> std::thread::JoinHandle<Vec<(C, Option<SocketAddr>)>> {
    std::thread::spawn(move || {
        (0..n)
            .map(|i| {
                let mut c = connect().expect("client connect");
                c.write_all(&i.to_le_bytes()).expect("client write");
                let addr = local(&c);
                (c, addr)
            })
            .collect()
    })
}

/// `n` TCP clients of `addr`, from another thread.
fn tcp_clients(
    addr: SocketAddr,
    n: u32,
) -> std::thread::JoinHandle<Vec<(std::net::TcpStream, Option<SocketAddr>)>> {
    clients(
        n,
        move || std::net::TcpStream::connect(addr),
        |c| c.local_addr().ok(),
    )
}

/// `n` Unix clients of `path`, from another thread (unnamed: no address).
fn unix_clients(
    path: std::path::PathBuf,
    n: u32,
) -> std::thread::JoinHandle<Vec<(std::os::unix::net::UnixStream, Option<SocketAddr>)>> {
    clients(
        n,
        move || std::os::unix::net::UnixStream::connect(&path),
        |_| None,
    )
}

/// A listener under test: accepts one connection and reads the client's
/// index from it.
trait Listener {
    /// One accept: the client's index and the peer address it reported
    /// (`None` for Unix, whose clients are unnamed).
    fn accept_index(&self) -> impl Future<Output = io::Result<(u32, Option<SocketAddr>)>>;
}

impl Listener for TcpListener {
    async fn accept_index(&self) -> io::Result<(u32, Option<SocketAddr>)> {
        let (stream, peer) = self.accept().await?;
        assert_eq!(
            stream.peer_addr()?,
            peer,
            "reported peer is not the stream's"
        );
        check_mode(stream.as_raw_fd());
        Ok((index_of(&stream).await?, Some(peer)))
    }
}

impl Listener for UnixListener {
    async fn accept_index(&self) -> io::Result<(u32, Option<SocketAddr>)> {
        let (stream, peer) = self.accept().await?;
        assert!(peer.is_unnamed(), "client sockets are unnamed: {peer:?}");
        check_mode(stream.as_raw_fd());
        Ok((index_of(&stream).await?, None))
    }
}

/// The 4-byte index a client sent first.
async fn index_of<S: Stream>(stream: &S) -> io::Result<u32> {
    let buf = read_exact(stream, 4).await?;
    Ok(u32::from_le_bytes(buf[..4].try_into().expect("4 bytes")))
}

/// An accepted fd is close-on-exec and blocking, as the single-shot accept
/// makes it.
fn check_mode(fd: i32) {
    // SAFETY: fcntl on an fd the caller's stream owns; no pointers.
    let (fd_flags, fl_flags) = unsafe {
        (
            libc::fcntl(fd, libc::F_GETFD),
            libc::fcntl(fd, libc::F_GETFL),
        )
    };
    assert!(fd_flags >= 0 && fl_flags >= 0, "fcntl failed");
    assert_ne!(
        fd_flags & libc::FD_CLOEXEC,
        0,
        "accepted fd is not close-on-exec"
    );
    assert_eq!(
        fl_flags & libc::O_NONBLOCK,
        0,
        "accepted fd is non-blocking"
    );
}

/// Checks that `got` holds each of `0..n` exactly once, each with the peer
/// its client reported.
fn check_each_once(got: &[(u32, Option<SocketAddr>)], expected: &[Option<SocketAddr>]) {
    let mut seen = HashMap::new();
    for &(i, peer) in got {
        assert!(seen.insert(i, peer).is_none(), "client {i} accepted twice");
        assert_eq!(peer, expected[i as usize], "client {i}: wrong peer address");
    }
    assert_eq!(seen.len(), expected.len(), "clients not accepted");
}

/// Accepts `n` connections with `tasks` concurrent accept tasks sharing
/// `listener`, then aborts the tasks (their pending accepts are dropped).
async fn accept_with_tasks<L: Listener + 'static>(
    listener: &Rc<L>,
    n: u32,
    tasks: usize,
) -> Vec<(u32, Option<SocketAddr>)> {
    let got = Rc::new(RefCell::new(Vec::new()));
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (listener, got) = (listener.clone(), got.clone());
            spawn(async move {
                loop {
                    let one = bounded("accept", listener.accept_index()).await;
                    got.borrow_mut().push(one.expect("accept"));
                }
            })
        })
        .collect();
    bounded("accepting them all", async {
        while got.borrow().len() < n as usize {
            sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    for h in &handles {
        h.abort();
    }
    for h in handles {
        assert!(h.await.is_err(), "accept task ended by itself");
    }
    got.take()
}

/// Burst of TCP connects from another thread, all accepted by one task.
#[test]
fn tcp_burst_accepted_by_one_task() {
    fd_neutral(async || {
        let listener = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let connecting = tcp_clients(listener.local_addr().unwrap(), 500);
        let got = accept_with_tasks(&listener, 500, 1).await;
        let clients = connecting.join().unwrap();
        let expected: Vec<_> = clients.iter().map(|c| c.1).collect();
        check_each_once(&got, &expected);
    });
}

/// Burst of TCP connects accepted by 32 tasks sharing one listener (as the
/// soak example serves): each connection exactly once, none stranded.
#[test]
fn tcp_burst_accepted_by_many_tasks() {
    fd_neutral(async || {
        let listener = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        for round in 0..3 {
            let connecting = tcp_clients(listener.local_addr().unwrap(), 300);
            let got = accept_with_tasks(&listener, 300, 32).await;
            let clients = connecting.join().unwrap();
            let expected: Vec<_> = clients.iter().map(|c| c.1).collect();
            check_each_once(&got, &expected);
            eprintln!("round {round}: 300 accepted by 32 tasks");
        }
    });
}

/// Burst of Unix connects accepted by one task, then by 8 tasks.
#[test]
fn unix_burst_accepted_by_one_and_many_tasks() {
    fd_neutral(async || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sock");
        let listener = Rc::new(UnixListener::bind(&path).unwrap());
        for tasks in [1, 8] {
            let connecting = unix_clients(path.clone(), 300);
            let got = accept_with_tasks(&listener, 300, tasks).await;
            let clients = connecting.join().unwrap();
            let expected: Vec<_> = clients.iter().map(|c| c.1).collect();
            check_each_once(&got, &expected);
        }
    });
}

/// 32 tasks wait in one accept each, then 32 clients connect at once: each
/// task gets one connection. (With one multishot accept, the table wakes
/// only the task it last saw; the one that drains the burst takes one
/// connection and ends, so the others must be woken by the listener, not
/// left waiting forever.) Then the same with clients one by one, and with
/// some waiting tasks aborted first.
#[test]
fn waiting_tasks_each_get_one_connection() {
    // The probe runtime's fds must be gone before another test of this file
    // counts fds, so it lives under the lock too.
    let single_shot_in_kernel = {
        let _lock = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let rt = Runtime::new().expect("runtime");
        rt.driver() == DriverKind::IoUring && !rt.has(Capability::MultishotAccept)
    };
    fd_neutral(async move || {
        let listener = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let addr = listener.local_addr().unwrap();
        for round in 0..3 {
            let got = Rc::new(RefCell::new(Vec::new()));
            let tasks: Vec<_> = (0..32)
                .map(|_| {
                    let (listener, got) = (listener.clone(), got.clone());
                    spawn(async move {
                        let one = listener.accept_index().await.expect("accept");
                        got.borrow_mut().push(one);
                    })
                })
                .collect();
            sleep(Duration::from_millis(10)).await;
            let mut wanted = 32;
            if round == 2 {
                for t in &tasks[..8] {
                    t.abort();
                }
                if single_shot_in_kernel {
                    // Each aborted task's accept waits in the kernel until
                    // its cancel lands (a turn away); one that takes a
                    // connection first closes it, as a dropped accept
                    // must. Let the cancels land before connecting.
                    sleep(Duration::from_millis(10)).await;
                }
                wanted = 24;
            }
            let clients = if round == 1 {
                let mut all = Vec::new();
                for _ in 0..wanted {
                    all.extend(tcp_clients(addr, 1).join().unwrap());
                    sleep(Duration::from_millis(1)).await;
                }
                all
            } else {
                tcp_clients(addr, wanted).join().unwrap()
            };
            for t in tasks.into_iter().skip(32 - wanted as usize) {
                bounded("one accept per task", t).await.unwrap();
            }
            // Client indexes restart at 0 for each `tcp_clients` call, so
            // compare the peers only.
            let mut peers: Vec<_> = got.take().into_iter().map(|g| g.1).collect();
            let mut expected: Vec<_> = clients.iter().map(|c| c.1).collect();
            peers.sort();
            expected.sort();
            assert_eq!(peers, expected, "round {round}: accepted other peers");
        }
    });
}

/// More connections than the multishot queue holds arrive while nobody
/// accepts (the operation is armed by an earlier accept): at the cap it is
/// cancelled and the rest wait in the backlog; accepting them all afterwards
/// loses none and takes none twice.
#[test]
fn tcp_connects_over_the_cap_are_all_accepted() {
    fd_neutral(async || {
        let listener = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let addr = listener.local_addr().unwrap();
        let first = tcp_clients(addr, 1);
        let got = accept_with_tasks(&listener, 1, 1).await;
        check_each_once(&got, &[first.join().unwrap()[0].1]);

        let clients = tcp_clients(addr, OVER_CAP).join().unwrap();
        sleep(Duration::from_millis(100)).await;
        let got = accept_with_tasks(&listener, OVER_CAP, 1).await;
        let expected: Vec<_> = clients.iter().map(|c| c.1).collect();
        check_each_once(&got, &expected);
    });
}

/// The same with Unix sockets and several accept tasks.
#[test]
fn unix_connects_over_the_cap_are_all_accepted() {
    fd_neutral(async || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sock");
        let listener = Rc::new(UnixListener::bind(&path).unwrap());
        let first = unix_clients(path.clone(), 1);
        accept_with_tasks(&listener, 1, 1).await;
        let _first = first.join().unwrap();
        let clients = unix_clients(path.clone(), OVER_CAP).join().unwrap();
        sleep(Duration::from_millis(100)).await;
        let got = accept_with_tasks(&listener, OVER_CAP, 4).await;
        let expected = vec![None; OVER_CAP as usize];
        check_each_once(&got, &expected);
        drop(clients);
    });
}

/// Polls `fut` at most `k` times, yielding between polls; `None` if it was
/// still pending (it is then dropped).
async fn poll_k<F: Future + Unpin>(fut: &mut F, k: usize) -> Option<F::Output> {
    for _ in 0..k {
        if let std::task::Poll::Ready(v) = poll_once(fut).await {
            return Some(v);
        }
        sleep(Duration::ZERO).await;
    }
    None
}

/// Connects arrive at random while up to four accept futures on the same
/// listener are polled a random number of times and dropped, in random
/// order: whatever was accepted for a dropped future is closed, and once
/// the listener and clients are gone the fd count is back where it was.
/// The listener keeps serving throughout.
#[test]
fn accepts_dropped_at_random_polls_leak_no_fd() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    eprintln!("seed {seed}");
    fd_neutral(async move || {
        let mut rng = Rng::new(seed);
        let before = fd_count();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut clients = Vec::new();
        let (mut accepted, mut dropped) = (0, 0);
        for _ in 0..400 {
            for _ in 0..rng.below(3) {
                clients.push(std::net::TcpStream::connect(addr).unwrap());
            }
            let mut futs: Vec<Pin<Box<_>>> = (0..1 + rng.below(4))
                .map(|_| Box::pin(listener.accept()))
                .collect();
            while !futs.is_empty() {
                let i = rng.below(futs.len());
                match poll_k(&mut futs[i], 1 + rng.below(3)).await {
                    Some(res) => {
                        drop(res.expect("accept"));
                        accepted += 1;
                        drop(futs.swap_remove(i));
                    }
                    None if rng.below(2) == 0 => {
                        dropped += 1;
                        drop(futs.swap_remove(i));
                    }
                    None => {}
                }
            }
            if clients.len() > 20 {
                clients.drain(..10);
            }
        }
        eprintln!("{accepted} accepted, {dropped} dropped pending");
        assert!(dropped > 50, "only {dropped} accepts dropped pending");

        // Still serving: a fresh client is accepted (after any queued ones).
        drop(clients);
        let client = TcpStream::connect(addr).await.unwrap();
        let me = client.local_addr().unwrap();
        bounded("fresh accept", async {
            while listener.accept().await.unwrap().1 != me {}
        })
        .await;
        drop((client, listener));
        assert_eq!(settle_fd_count(before, SETTLE).await, before, "fds leaked");
    });
}

/// A listener dropped (or closed) with connections queued everywhere closes
/// every one: those handed to the listener but not taken, and those the
/// kernel completed but the runtime has not reaped yet when the listener
/// goes (the table closes them). Every client sees end of stream or a
/// reset, and the fd count is back where it was.
///
/// Order: 20 clients connect; one accept arms the multishot accept, which
/// takes all 20 (one is returned, 19 wait with the listener); 30 more
/// connect while the runtime thread blocks, so their completions are still
/// in the kernel's queue when the listener is dropped at once after.
#[test]
fn listener_dropped_with_connections_queued_closes_them() {
    for close in [false, true] {
        fd_neutral(async move || {
            let before = fd_count();
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let mut clients = tcp_clients(addr, 20).join().unwrap();
            drop(bounded("accept", listener.accept()).await.unwrap());
            sleep(Duration::from_millis(20)).await;
            clients.extend(tcp_clients(addr, 30).join().unwrap());
            if close {
                bounded("close", listener.close()).await.unwrap();
            } else {
                drop(listener);
            }
            let open = before + clients.len();
            assert_eq!(
                settle_fd_count(open, SETTLE).await,
                open,
                "accepted fds leaked"
            );
            for (c, _) in &mut clients {
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut buf = [0u8; 16];
                match c.read(&mut buf) {
                    Ok(0) => {}
                    Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
                    other => panic!("client not closed by the server: {other:?}"),
                }
            }
            drop(clients);
            assert_eq!(settle_fd_count(before, SETTLE).await, before, "fds leaked");
        });
    }
}

/// A listener that outlives its runtime accepts on the next one (the
/// multishot accept armed on the first runtime is not used again).
#[test]
fn listener_outlives_its_runtime() {
    let _lock = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    within(LIMIT, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        for _ in 0..3 {
            let rt = Runtime::new().unwrap();
            rt.block_on(async {
                let client = bounded("connect", TcpStream::connect(addr)).await;
                let client = client.unwrap();
                let (_, peer) = bounded("accept", listener.accept()).await.unwrap();
                assert_eq!(peer, client.local_addr().unwrap());
            });
            drop(rt);
        }
    });
}
