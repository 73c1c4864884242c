//! A tokio multi-thread application hands work to the launcher's workers
//! (io_uring, or epoll with `URING_BUFIO_DRIVER=epoll`): connections it
//! accepted with tokio's listener, given over as `std::net::TcpStream`s and
//! served there with our `BufStream`; and `Send` closures handed from tokio
//! tasks, whose `!Send` futures run on a worker and whose results come back
//! through the `Send` handle awaited on tokio.

mod launch_support;

use std::collections::BTreeSet;
use std::io;
use std::rc::Rc;
use std::sync::Arc;

use launch_support::REPLY_LIMIT;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use uring_bufio::io::BufStream;
use uring_bufio::launch::{Launcher, Workers};
use uring_bufio::net::TcpStream;

/// Connections the tokio application accepts and hands over.
const CONNS: usize = 8;

/// Lines each client sends.
const LINES: usize = 5;

/// Two workers named `io-0` and `io-1` that run until shutdown.
fn workers() -> Arc<Workers> {
    let workers = Launcher::new()
        .workers(2)
        .thread_name("io")
        .start(|worker| async move {
            worker.shutdown().begun().await;
            Ok(())
        })
        .expect("start the workers");
    Arc::new(workers)
}

/// A tokio multi-thread runtime with two worker threads.
fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .build()
        .expect("tokio runtime")
}

/// The name of the thread running this.
fn thread_name() -> String {
    std::thread::current().name().unwrap_or("?").to_string()
}

/// Runs on a worker: serves a handed-over socket with our `BufStream`,
/// answering each line with `"{thread}:{line}"`; returns the thread's name.
async fn serve(socket: std::net::TcpStream) -> io::Result<String> {
    let me = thread_name();
    let mut stream = BufStream::new(TcpStream::from_std(socket));
    while let Some(line) = stream.next_line().await? {
        let reply = format!("{me}:{}\n", String::from_utf8_lossy(line));
        stream.write_all(reply.as_bytes()).await?;
        stream.flush().await?;
    }
    stream.shutdown().await?;
    Ok(me)
}

/// A tokio client: sends [`LINES`] lines, checks each reply, returns the
/// thread name the replies carried.
async fn client(addr: std::net::SocketAddr, id: usize) -> io::Result<String> {
    let socket = tokio::net::TcpStream::connect(addr).await?;
    let (read, mut write) = socket.into_split();
    let mut lines = tokio::io::BufReader::new(read).lines();
    let mut server = None;
    for n in 0..LINES {
        let line = format!("client {id} line {n}");
        write.write_all(format!("{line}\n").as_bytes()).await?;
        let reply = lines
            .next_line()
            .await?
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        let (name, echoed) = reply.split_once(':').ok_or(io::ErrorKind::InvalidData)?;
        assert_eq!(echoed, line);
        assert!(server.get_or_insert(name.to_string()) == name);
    }
    write.shutdown().await?;
    assert_eq!(lines.next_line().await?, None, "the server closes after us");
    server.ok_or_else(|| io::ErrorKind::InvalidData.into())
}

/// Runs `f` on its own thread; fails the test if it takes longer than
/// [`REPLY_LIMIT`] (only a hang gets there).
fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(f()));
    result
        .recv_timeout(REPLY_LIMIT)
        .unwrap_or_else(|e| panic!("no result within {REPLY_LIMIT:?}: {e}"))
}

/// tokio's listener accepts on a multi-thread runtime, each socket goes
/// over as a std stream in a `Send` closure to the next worker (round
/// robin), which serves it with our `BufStream`: every client gets its
/// replies, both workers served, and each handle (awaited on tokio) names
/// the worker its client saw.
#[test]
fn tokio_multi_thread_app_hands_connections_to_workers() {
    let workers = workers();
    let pool = workers.clone();
    let (clients, servers) = within(move || {
        tokio_runtime().block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let clients: Vec<_> = (0..CONNS)
                .map(|id| tokio::spawn(client(addr, id)))
                .collect();
            let mut handles = Vec::new();
            for _ in 0..CONNS {
                let (socket, _) = listener.accept().await?;
                // Non-blocking, as tokio left it; our operations do not mind.
                let socket = socket.into_std()?;
                handles.push(pool.spawn(move || serve(socket)));
            }
            let (mut clients_saw, mut servers_were) = (Vec::new(), Vec::new());
            for client in clients {
                clients_saw.push(client.await??);
            }
            for handle in handles {
                servers_were.push(
                    handle
                        .await
                        .map_err(|e| io::Error::other(e.to_string()))??,
                );
            }
            Ok::<_, io::Error>((clients_saw, servers_were))
        })
    })
    .expect("the tokio application");
    let names: BTreeSet<&str> = servers.iter().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from(["io-0", "io-1"]),
        "both workers served"
    );
    let mut clients = clients;
    let mut servers = servers;
    clients.sort();
    servers.sort();
    assert_eq!(
        clients, servers,
        "each client's replies came from its worker"
    );
    workers.shutdown();
    Arc::into_inner(workers).unwrap().join().unwrap();
}

/// From tasks spawned on tokio's multi-thread runtime (so their futures
/// must be `Send`, and they may move between tokio's threads): each hands a
/// `Send` closure to a worker; the closure builds a future that is not
/// `Send` there (an `Rc`, our sockets) which does IO on the worker's
/// runtime; the `RemoteHandle`, held across the await, gives its result.
#[test]
fn send_closures_from_tokio_tasks_return_through_send_handles() {
    let workers = workers();
    let pool = workers.clone();
    let results = within(move || {
        tokio_runtime().block_on(async move {
            let tasks: Vec<_> = (0..4usize)
                .map(|i| {
                    let pool = pool.clone();
                    tokio::spawn(async move {
                        let handle = pool.spawn_on(i, move || {
                            let local = Rc::new(format!("job {i}"));
                            async move {
                                let (a, b) = uring_bufio::net::UnixStream::pair()?;
                                a.write_all(local.as_bytes().to_vec()).await.0?;
                                drop(a);
                                let mut reader = uring_bufio::io::BufReader::new(b);
                                let mut got = String::new();
                                reader.read_line(&mut got).await?;
                                Ok::<_, io::Error>((got, thread_name()))
                            }
                        });
                        handle.await
                    })
                })
                .collect();
            let mut results = Vec::new();
            for task in tasks {
                let done = task.await.expect("tokio task");
                results.push(done.map_err(|e| io::Error::other(e.to_string()))??);
            }
            Ok::<_, io::Error>(results)
        })
    })
    .expect("the tokio application");
    for (i, (got, thread)) in results.into_iter().enumerate() {
        assert_eq!(got, format!("job {i}"));
        assert_eq!(thread, format!("io-{}", i % 2));
    }
    workers.shutdown();
    Arc::into_inner(workers).unwrap().join().unwrap();
}
