//! Answering RESP `GET` and `PING` allocates nothing per request: neither
//! the parser and command execution, nor (on both backends) the server's
//! whole path from the socket through our reader and writer and back. A
//! counting global allocator is per binary, so this is a test file of its
//! own.

mod support;

#[path = "../examples/resp/proto.rs"]
mod proto;
#[path = "../examples/resp/server.rs"]
mod server;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use proto::{Db, Session};
use uring_bufio::net::TcpListener;
use uring_bufio::{DriverKind, Runtime};

/// Counts the allocations of the threads that asked to be counted.
struct Counting;

thread_local! {
    /// This thread's allocations are counted in [`ALLOCS`].
    static COUNTED: Cell<bool> = const { Cell::new(false) };
    /// This thread's allocations (and reallocations).
    static MINE: Cell<u64> = const { Cell::new(0) };
}

/// Allocations (and reallocations) by counted threads.
static ALLOCS: AtomicU64 = AtomicU64::new(0);

/// Counts one allocation of the calling thread.
fn note() {
    let _ = MINE.try_with(|n| n.set(n.get() + 1));
    if COUNTED.try_with(Cell::get).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed on unchanged to the system allocator; the
// counting touches only an atomic and a const-initialised thread-local
// without a destructor, neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract for `alloc` is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract for `alloc_zeroed` is passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: the caller's contract for `realloc` is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by the calling thread while running `f`.
fn allocations_in<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let before = MINE.with(Cell::get);
    let out = f();
    (MINE.with(Cell::get) - before, out)
}

/// `GET` of a present and a missing key, `PING`, `ECHO`, `MGET`,
/// `EXISTS`, `CONFIG GET`, multibulk and inline.
const READS: &[u8] = b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n*2\r\n$3\r\nGET\r\n$4\r\nnone\r\n\
*1\r\n$4\r\nPING\r\nPING\r\nGET key\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n\
MGET key none key\r\nEXISTS key none\r\nCONFIG GET save\r\n";

#[test]
fn parsing_and_answering_reads_allocates_nothing() {
    let mut db = Db::default();
    let mut session = Session::default();
    session.handle(b"SET key value\r\n", &mut db);
    let batch = READS.repeat(100);
    // The first batch grows the argument spans and the reply buffer.
    session.handle(&batch, &mut db);
    session.clear_replies();
    let (allocs, replies) = allocations_in(|| {
        let mut replies = 0;
        for _ in 0..100 {
            let step = session.handle(&batch, &mut db);
            assert_eq!(step.consumed, batch.len());
            replies += session.replies().len();
            session.clear_replies();
        }
        replies
    });
    assert!(replies > 0);
    assert_eq!(
        allocs,
        0,
        "allocations answering 100 x {} bytes of reads",
        batch.len()
    );
}

/// Ping-pong client on its own thread (std blocking socket): `rounds`
/// requests of `request`, each answered by `answer` before the next.
fn ping_pong(sock: &mut std::net::TcpStream, request: &[u8], answer: &[u8], rounds: usize) {
    let mut got = vec![0; answer.len()];
    for _ in 0..rounds {
        sock.write_all(request).expect("send");
        sock.read_exact(&mut got).expect("receive");
        assert_eq!(got, answer);
    }
}

/// Requests the client sends one at a time after warming up.
const ROUNDS: usize = 2000;

/// The server's thread (our runtime) is counted; the client's is not.
/// Returns the server's allocations during `ROUNDS` GETs and PINGs.
fn server_allocations(kind: DriverKind, pooled: bool) -> u64 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || -> io::Result<()> {
        let rt = Runtime::builder().driver(kind).build()?;
        rt.block_on(async move {
            let listener = TcpListener::from_std(listener);
            let (socket, _) = listener.accept().await?;
            let db = Rc::new(RefCell::new(Db::default()));
            COUNTED.with(|c| c.set(true));
            server::serve(socket, db, pooled).await
        })
    });
    let mut sock = std::net::TcpStream::connect(addr).expect("connect");
    sock.set_nodelay(true).expect("nodelay");
    ping_pong(&mut sock, b"SET key value\r\n", b"+OK\r\n", 1);
    let get = b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n";
    ping_pong(&mut sock, get, b"$5\r\nvalue\r\n", 500);
    ping_pong(&mut sock, b"PING\r\n", b"+PONG\r\n", 500);
    let before = ALLOCS.load(Ordering::Relaxed);
    ping_pong(&mut sock, get, b"$5\r\nvalue\r\n", ROUNDS / 2);
    ping_pong(&mut sock, b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n", ROUNDS / 2);
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    drop(sock);
    server.join().expect("server thread").expect("server");
    allocs
}

/// One counted server at a time: the count is of every counted thread.
static ONE_SERVER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Checks the server's allocations in `ROUNDS` requests against `bound`.
fn check(kind: DriverKind, pooled: bool, bound: u64) {
    let _one = ONE_SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let allocs = support::within(support::TEST_LIMIT, move || {
        server_allocations(kind, pooled)
    });
    eprintln!("{kind:?}, pooled {pooled}: {allocs} allocations in {ROUNDS} requests");
    assert!(
        allocs < bound,
        "{kind:?}, pooled {pooled}: {allocs} allocations in {ROUNDS} requests (bound {bound})"
    );
}

/// The whole path on io_uring, socket to socket: nothing allocates per
/// request. Each read and each send lives in the memory its stream kept
/// from the one before (`op::Spare`), a send's iovecs and `msghdr` sit in
/// the operation itself, and the writer reuses its segment list.
///
/// A few allocations at the window's edges (the warm-up's last flush
/// completing) are not per request. A pooled reader's multishot receive
/// keeps its memory too when it ends at its byte limit and is armed again
/// (`Multishot::recycle`). What a pooled reader still allocates comes once
/// per pool buffer, not per request: three times in these 2000 requests
/// one spans two pool buffers and is joined in memory of the reader's own
/// (`PooledBuffer::join`, two allocations), and the buffers it was cut
/// from are split (`pool/slots.rs`, `take_front`): 10 in all.
#[test]
fn io_uring_serves_reads_without_allocating_per_request() {
    check(DriverKind::IoUring, false, 8);
    check(DriverKind::IoUring, true, 8 + ROUNDS as u64 / 100);
}

/// The same on epoll: nothing allocates per request there either. The
/// backend keeps a list of waiters per fd number whose capacity stays
/// when it empties, and one list of the waiters a readiness event wakes
/// (`driver/epoll/waiters.rs`); a pooled reader's receive (on epoll each
/// ends after one completion) is carried in the memory of the one before
/// (`Multishot::recycle`), with the result queue the table kept from it
/// (`driver/table.rs`).
#[test]
fn epoll_serves_reads_without_allocating_per_request() {
    check(DriverKind::Epoll, false, 8);
    check(DriverKind::Epoll, true, 8);
}
