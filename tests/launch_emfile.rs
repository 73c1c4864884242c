//! The accept loop survives running out of fds: with `RLIMIT_NOFILE`
//! lowered so that the server can hold only three connections, twelve
//! clients are all served in turn as earlier ones close; the worker counts
//! its backoffs. Alone in its binary (the limit is process-wide), and the
//! limit is restored however the test ends.

mod launch_support;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;

use launch_support::{Client, REPLY_LIMIT, eventually, line_handler, server};
use socket2::{Domain, Socket, Type};

/// Puts the soft `RLIMIT_NOFILE` back when dropped.
struct RestoreLimit(libc::rlimit);

impl Drop for RestoreLimit {
    fn drop(&mut self) {
        // SAFETY: `self.0` is a valid rlimit for the duration of the call.
        let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &self.0) };
        assert_eq!(rc, 0, "restoring RLIMIT_NOFILE");
    }
}

/// Lowers the soft fd limit so that exactly `free` fd numbers below it are
/// unused now; the guard restores the old limit.
fn leave_free_fds(free: usize) -> RestoreLimit {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `old` is a valid, writable rlimit for the duration of the call.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut old) }, 0);
    let open: Vec<u64> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let (mut limit, mut unused) = (0u64, 0usize);
    while unused < free {
        if !open.contains(&limit) {
            unused += 1;
        }
        limit += 1;
    }
    let new = libc::rlimit {
        rlim_cur: limit,
        rlim_max: old.rlim_max,
    };
    // SAFETY: `new` is a valid rlimit for the duration of the call.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) }, 0);
    RestoreLimit(old)
}

/// Connects a socket made before the limit was lowered and sends a line.
fn connect_and_send(socket: Socket, addr: SocketAddr, i: usize) -> std::net::TcpStream {
    socket.connect(&addr.into()).unwrap();
    let stream = std::net::TcpStream::from(socket);
    stream.set_read_timeout(Some(REPLY_LIMIT)).unwrap();
    (&stream)
        .write_all(format!("hello {i}\n").as_bytes())
        .unwrap();
    stream
}

/// Fds a running one-worker server holds once it has served a connection
/// (runtime, listener, threads' eventfds, ...).
fn server_fds() -> usize {
    let before = launch_support::fd_count();
    let running = server(1).serve(line_handler).unwrap();
    assert_eq!(
        Client::connect(running.local_addr())
            .unwrap()
            .ask("warm")
            .unwrap(),
        "0:warm"
    );
    assert!(eventually(|| running.stats()[0].live == 0));
    let held = launch_support::fd_count() - before;
    running.shutdown();
    running.join().unwrap();
    assert_eq!(launch_support::settle_fds(before), before);
    held
}

/// The limit is lowered before the server starts: io_uring takes the fd
/// limit when an accept is submitted, so a multishot accept armed earlier
/// would accept under the old limit.
#[test]
fn accept_loop_survives_emfile_and_serves_everyone() {
    let held = server_fds();
    let sockets: Vec<Socket> = (0..12)
        .map(|_| Socket::new(Domain::IPV4, Type::STREAM, None).unwrap())
        .collect();
    let (served, stats) = {
        // Room for the server and 3 or 4 connections (one slot may be the
        // fd that listed /proc/self/fd).
        let _restore = leave_free_fds(held + 3);
        let running = server(1).serve(line_handler).unwrap();
        let addr = running.local_addr();
        let clients: Vec<_> = sockets
            .into_iter()
            .enumerate()
            .map(|(i, s)| connect_and_send(s, addr, i))
            .collect();
        // Each reply comes once the connections before it closed and freed
        // their server-side fds.
        let mut served = 0;
        for (i, client) in clients.into_iter().enumerate() {
            let mut line = String::new();
            BufReader::new(&client).read_line(&mut line).unwrap();
            assert_eq!(line, format!("0:hello {i}\n"));
            served += 1;
            drop(client);
        }
        assert!(eventually(|| running.stats()[0].live == 0));
        let stats = running.stats()[0];
        running.shutdown();
        running.join().unwrap();
        (served, stats)
    };
    assert_eq!(served, 12);
    assert!(stats.resource_waits > 0, "never ran out of fds: {stats:?}");
    assert_eq!((stats.accepted, stats.finished), (12, 12), "{stats:?}");
}
