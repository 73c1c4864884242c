//! Helpers for the protocol-server tests (`tests/resp.rs`, `tests/http.rs`,
//! `tests/tls.rs`): running a body on both backends, and a client that
//! sends a request in pieces and reads the whole answer. Uses the crate's
//! `tests/support` helpers, which each including test declares as `support`.
#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use uring_bufio::net::TcpStream;
use uring_bufio::{DriverKind, Runtime};

use crate::support;

/// Both backends, io_uring first.
pub const BACKENDS: [DriverKind; 2] = [DriverKind::IoUring, DriverKind::Epoll];

/// Runs `body` on a fresh runtime of each backend, under the test limit.
pub fn on_both<F, Fut>(body: F)
where
    F: Fn(DriverKind) -> Fut,
    Fut: Future<Output = io::Result<()>>,
{
    for kind in BACKENDS {
        eprintln!("backend: {kind:?}");
        let _watchdog = support::spin_watchdog(support::TEST_LIMIT);
        let rt = Runtime::builder().driver(kind).build().expect("runtime");
        assert_eq!(rt.driver(), kind);
        support::run_on(&rt, support::TEST_LIMIT, body(kind));
    }
}

/// Sends `parts` one after the other, pausing `pause` between them so the
/// server sees each piece on its own, then shuts the write direction and
/// returns everything the server answered until it closed.
pub async fn exchange(client: &TcpStream, parts: &[&[u8]], pause: Duration) -> io::Result<Vec<u8>> {
    for (i, part) in parts.iter().enumerate() {
        if i > 0 && !pause.is_zero() {
            uring_bufio::time::sleep(pause).await;
        }
        if part.is_empty() {
            continue;
        }
        let (res, _) =
            support::bounded("send", client.write_all(Bytes::copy_from_slice(part))).await;
        res?;
    }
    support::shutdown_write(client).await?;
    support::read_to_end(client).await
}

/// Sends `request` and reads until the server closes, without shutting
/// the write direction: for answers that close the connection themselves.
pub async fn until_closed(client: &TcpStream, request: &[u8]) -> io::Result<Vec<u8>> {
    let (res, _) =
        support::bounded("send", client.write_all(Bytes::copy_from_slice(request))).await;
    res?;
    support::read_to_end(client).await
}

/// Shows bytes readably in assertion messages.
pub fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).escape_debug().to_string()
}
