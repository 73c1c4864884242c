//! The tokio-hosted mode: our sources and buffered streams in `spawn_local`
//! tasks of a tokio current-thread runtime, mixed with tokio's timers,
//! channels, `select!` and sockets; submissions that reach the kernel with
//! nothing else running; tokio's budget spent by our operations.

mod hosted_support;

use std::cell::Cell;
use std::io::{self, Write as _};
use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use hosted_support::{Hosted, LIMIT, run, within};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use uring_bufio::fs::File;
use uring_bufio::io::{BufReader, BufStream, BufWriter};
use uring_bufio::net::{TcpListener, UnixStream};

/// Lets the driver task run until it has nothing to do, so that the next
/// entry queued must wake it (its first poll would otherwise submit it).
async fn idle_driver_task() {
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
}

/// One read submitted while nothing else runs (no other task, no timer:
/// the runtime has no time driver) completes: its entry reached the kernel
/// before tokio parked the thread. The peer writes only after a while, so
/// the read must be in the kernel while tokio sleeps in `epoll_wait`.
#[test]
fn single_read_with_nothing_else_running_completes() {
    within(LIMIT, || {
        let h = Hosted::bare();
        let (ours, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let ours = UnixStream::from_std(ours);
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            peer.write_all(b"ping").unwrap();
            peer
        });
        let got = h.block_on(async move {
            idle_driver_task().await;
            let (n, buf) = ours.read(BytesMut::with_capacity(16)).await;
            Ok(buf[..n?].to_vec())
        });
        assert_eq!(got, b"ping");
        drop(writer.join().unwrap());
        h.finish();
    });
}

/// The same with the data already there: the read completes on its first
/// trip to the kernel.
#[test]
fn single_read_of_ready_data_completes() {
    within(LIMIT, || {
        let h = Hosted::bare();
        let (ours, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
        peer.write_all(b"ready").unwrap();
        let ours = UnixStream::from_std(ours);
        let got = h.block_on(async move {
            idle_driver_task().await;
            let (n, buf) = ours.read(BytesMut::with_capacity(16)).await;
            Ok(buf[..n?].to_vec())
        });
        assert_eq!(got, b"ready");
        h.finish();
    });
}

/// Our listener and buffered streams in `spawn_local` tasks, next to a
/// tokio client socket, a tokio channel, `select!` over a tokio timer, and
/// our file through `BufWriter`/`BufReader`.
#[test]
fn our_streams_mix_with_tokio_time_sync_select_and_net() {
    run(|| async {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
        let server = tokio::task::spawn_local(async move {
            let (socket, _) = listener.accept().await?;
            let mut stream = BufStream::new(socket);
            while let Some(line) = stream.next_line().await? {
                tx.send(line.to_vec()).await.map_err(io::Error::other)?;
                stream.write_all(b"ok\n").await?;
                stream.flush().await?;
            }
            stream.shutdown().await
        });
        let client = tokio::net::TcpStream::connect(addr).await?;
        let (r, mut w) = client.into_split();
        let mut r = tokio::io::BufReader::new(r);
        let mut reply = String::new();
        for i in 0..50 {
            w.write_all(format!("line {i}\n").as_bytes()).await?;
            tokio::select! {
                got = rx.recv() => assert_eq!(got.as_deref(), Some(format!("line {i}").as_bytes())),
                _ = tokio::time::sleep(Duration::from_secs(10)) => panic!("line {i} never arrived"),
            }
            reply.clear();
            r.read_line(&mut reply).await?;
            assert_eq!(reply, "ok\n");
        }
        w.shutdown().await?;
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).await?;
        assert!(rest.is_empty());
        server.await.map_err(io::Error::other)??;

        let dir = tempfile::tempdir()?;
        let path = dir.path().join("lines");
        let mut file = BufWriter::new(File::create(&path).await?);
        for i in 0..1000 {
            file.write_all(format!("{i}\n").as_bytes()).await?;
        }
        file.shutdown().await?;
        let mut file = BufReader::new(File::open(&path).await?);
        let mut n = 0;
        while let Some(line) = file.next_line().await? {
            assert_eq!(line, n.to_string().as_bytes());
            n += 1;
        }
        assert_eq!(n, 1000);
        Ok(())
    });
}

/// A task looping over a reader whose data is always ready (`/dev/zero`)
/// does not starve tokio: a tokio timer fires and ends the loop. Our
/// operations spend tokio's budget; without that, on epoll (where such a
/// read completes as it is submitted) the loop would never yield.
#[test]
fn a_loop_over_ready_data_lets_tokio_timers_fire() {
    run(|| async {
        let fired = Rc::new(Cell::new(false));
        let timer = tokio::task::spawn_local({
            let fired = fired.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                fired.set(true);
            }
        });
        let mut r = BufReader::with_capacity(4096, File::open("/dev/zero").await?);
        let mut bytes = 0u64;
        while !fired.get() {
            let n = r.fill_buf().await?.len();
            assert!(n > 0, "/dev/zero ended");
            r.consume(n);
            bytes += n as u64;
        }
        timer.await.map_err(io::Error::other)?;
        assert!(bytes > 0);
        Ok(())
    });
}

/// `uring_bufio::spawn` and our own timers work hosted: the task lands in
/// the `LocalSet`, its handle joins and aborts.
#[test]
fn our_spawn_and_timers_work_hosted() {
    run(|| async {
        let task = uring_bufio::spawn(async {
            uring_bufio::time::sleep(Duration::from_millis(5)).await;
            7
        });
        assert_eq!(task.await?, 7);
        let forever = uring_bufio::spawn(uring_bufio::time::sleep(Duration::from_secs(3600)));
        forever.abort();
        assert!(forever.await.unwrap_err().is_cancelled());
        let slow = uring_bufio::time::sleep(Duration::from_secs(3600));
        assert!(
            uring_bufio::time::timeout(Duration::from_millis(5), slow)
                .await
                .is_err()
        );
        Ok(())
    });
}

/// A writer dropped with unwritten bytes is flushed in the background by
/// the driver task, as on our runtime: the peer receives every byte.
#[test]
fn a_dropped_writer_is_flushed_in_the_background() {
    run(|| async {
        let (a, b) = UnixStream::pair()?;
        let mut w = BufWriter::new(a);
        w.write_all(&[b'x'; 10_000]).await?;
        drop(w);
        let mut r = BufReader::new(b);
        let mut total = 0;
        loop {
            let n = r.fill_buf().await?.len();
            if n == 0 {
                break;
            }
            r.consume(n);
            total += n;
        }
        assert_eq!(total, 10_000);
        Ok(())
    });
}

/// Our streams through tokio's traits: `tokio::io::copy` from our reader
/// into our writer, between a tokio socket pair on each side.
#[test]
fn tokio_io_copy_runs_over_our_streams() {
    run(|| async {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let relay = tokio::task::spawn_local(async move {
            let (socket, _) = listener.accept().await?;
            let (r, w) = socket.into_split();
            let (mut r, mut w) = (BufReader::new(r), BufWriter::new(w));
            let n = tokio::io::copy_buf(&mut r, &mut w).await?;
            w.shutdown().await?;
            Ok::<_, io::Error>(n)
        });
        let mut client = tokio::net::TcpStream::connect(addr).await?;
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let (mut r, mut w) = client.split();
        let (sent, echoed) = tokio::join!(
            async {
                w.write_all(&payload).await?;
                w.shutdown().await
            },
            async {
                let mut back = Vec::new();
                r.read_to_end(&mut back).await.map(|_| back)
            }
        );
        sent?;
        assert_eq!(echoed?, payload);
        assert_eq!(relay.await.map_err(io::Error::other)??, 200_000);
        Ok(())
    });
}

/// Attaching needs a tokio runtime on the thread, and one driver at a time.
#[test]
fn attach_needs_a_runtime_and_only_one_driver() {
    let local = tokio::task::LocalSet::new();
    let err = uring_bufio::hosted::attach(&local).unwrap_err();
    assert!(err.to_string().contains("tokio runtime"), "{err}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let _rt = rt.enter();
    let host = uring_bufio::hosted::attach(&local).unwrap();
    let again = uring_bufio::hosted::attach(&local).unwrap_err();
    assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
    drop(local);
    assert_eq!(host.shutdown(), 0);
}

/// `hosted::start` runs a future with the driver attached and returns its
/// value; the backend is the one the environment asks for.
#[test]
fn start_runs_a_future_on_the_chosen_backend() {
    let kind = uring_bufio::hosted::start(async {
        let (a, b) = UnixStream::pair()?;
        let (res, _) = a.write_all(bytes::Bytes::from_static(b"x")).await;
        res?;
        let (n, _) = b.read(BytesMut::with_capacity(4)).await;
        assert_eq!(n?, 1);
        Ok::<_, io::Error>(())
    })
    .unwrap();
    kind.unwrap();
}
