//! Restarts: a server process sent SIGTERM shuts down by itself (its open
//! connection gets its last reply), closes its listener (accept cancelled
//! and reaped) before it exits, and a new process started at once binds
//! the same port, 20 times in a row. The listener is the acceptor's single
//! socket, without `SO_REUSEPORT`, so a listener left alive would make the
//! next bind fail with `EADDRINUSE`. The server is this test binary run
//! again as a child with only `child_server` selected.

mod launch_support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use launch_support::{Client, line_handler};
use uring_bufio::launch::{Launcher, Listen, Server};

/// Set (to the port) in the child's environment: run the server.
const CHILD_ENV: &str = "URING_BUFIO_LAUNCH_CHILD_PORT";

/// The child's part: serve on the given port until SIGTERM. Without the
/// variable (a normal test run) it does nothing.
#[test]
fn child_server() {
    let Ok(port) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut launcher = Launcher::new();
    launcher.workers(2);
    let running = Server::new(format!("127.0.0.1:{port}").parse().unwrap())
        .launcher(launcher)
        .listen(Listen::Acceptor)
        .grace(Duration::from_secs(5))
        .serve(line_handler)
        .expect("bind");
    running.join().expect("clean shutdown");
}

/// Starts the child server on `port`.
fn start_child(port: u16) -> Child {
    let exe = std::env::current_exe().unwrap();
    Command::new(exe)
        .args(["--exact", "child_server", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the child server")
}

/// Connects once the child listens (it is starting); `None` if the child
/// exited first.
fn connect_when_up(child: &mut Child, port: u16) -> Option<Client> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    while Instant::now() < deadline {
        if let Ok(client) = Client::connect(addr) {
            return Some(client);
        }
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("the child server did not come up within 10 s");
}

/// The child's stderr (after it exited).
fn stderr_of(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn sigterm_then_restart_binds_every_time() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let began = Instant::now();
    for round in 0..20 {
        let mut child = start_child(port);
        let Some(mut client) = connect_when_up(&mut child, port) else {
            panic!(
                "round {round}: the server did not start:\n{}",
                stderr_of(child)
            );
        };
        assert!(
            client.ask("ping").unwrap().ends_with(":ping"),
            "round {round}"
        );
        // SAFETY: kill(2) with the pid of our own child, which has not
        // been waited for yet, so the pid is not reused.
        assert_eq!(
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
            0
        );
        assert_eq!(
            client.line().unwrap().as_deref(),
            Some("bye"),
            "round {round}"
        );
        let status = child.wait().unwrap();
        // At once, the tightest restart: the port must be free already.
        let rebound = std::net::TcpListener::bind(("127.0.0.1", port));
        assert!(rebound.is_ok(), "round {round}: {rebound:?}");
        drop(rebound);
        let stderr = stderr_of(child);
        assert!(status.success(), "round {round}: {status}\n{stderr}");
        assert!(stderr.contains("shutting down"), "round {round}: {stderr}");
    }
    assert!(
        began.elapsed() < Duration::from_secs(30),
        "{:?}",
        began.elapsed()
    );
}
