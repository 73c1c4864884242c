//! hyper 1.x on the launcher: two workers, each with its own listener
//! (`SO_REUSEPORT`), each connection served by hyper over our `BufStream`,
//! answering hyper's own client; both workers serve, every connection ends
//! `Ok`, and shutdown with the clients gone leaves nothing running.

#[path = "support/hyper_client.rs"]
mod hyper_client;
mod launch_support;

#[path = "../examples/http/proto.rs"]
mod proto;
#[path = "../examples/http/server.rs"]
mod server;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use launch_support::{eventually, join_within};
use uring_bufio::io::BufStream;
use uring_bufio::launch::{Launcher, Listen, Server};

/// Connections opened at least (more, until both workers have one).
const CONNS: usize = 16;

/// Most connections opened while waiting for the kernel's hash to reach
/// both workers (the chance it never does is 2^-199).
const MAX_CONNS: usize = 200;

/// hyper's client on one connection: `GET /` and `POST /echo`, each
/// answer checked, then the connection is dropped.
async fn one_connection(addr: SocketAddr, id: usize) -> io::Result<()> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let echo = Bytes::from(format!("hello from {id}"));
    let requests = [("GET", "/", Bytes::new()), ("POST", "/echo", echo.clone())];
    let answers = hyper_client::send_all(tcp, &requests).await?;
    assert_eq!(
        answers,
        [(200, Bytes::from_static(b"Hello, World!")), (200, echo)]
    );
    Ok(())
}

#[test]
fn hyper_on_two_reuseport_workers_answers_a_hyper_client() {
    let mut launcher = Launcher::new();
    launcher.workers(2).thread_name("hyper");
    let running = Server::new("127.0.0.1:0".parse().unwrap())
        .launcher(launcher)
        .listen(Listen::ReusePort)
        .shutdown_on_signals(false)
        .grace(Duration::from_secs(5))
        .serve(|stream, _conn| {
            stream.set_nodelay(true).ok();
            server::serve_hyper(BufStream::new(stream))
        })
        .unwrap();
    let addr = running.local_addr();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let accepted = |running: &uring_bufio::launch::Running| -> Vec<u64> {
        running.stats().iter().map(|s| s.accepted).collect()
    };
    let mut opened = 0;
    while opened < CONNS || (accepted(&running).contains(&0) && opened < MAX_CONNS) {
        rt.block_on(one_connection(addr, opened)).unwrap();
        opened += 1;
    }
    // Every connection ended (the clients dropped theirs) and ended `Ok`.
    assert!(eventually(|| running
        .stats()
        .iter()
        .map(|s| s.finished)
        .sum::<u64>()
        == opened as u64));
    running.shutdown();
    let stats = join_within(running, Duration::from_secs(10));
    for (i, s) in stats.iter().enumerate() {
        assert!(s.accepted > 0, "worker {i} served nothing: {stats:?}");
        assert_eq!(s.accepted, s.finished, "worker {i}: {s:?}");
        assert_eq!((s.failed, s.panicked, s.cancelled, s.live), (0, 0, 0, 0));
    }
    assert_eq!(stats.iter().map(|s| s.accepted).sum::<u64>(), opened as u64);
}
