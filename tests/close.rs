//! Closing connections: abortively (`SO_LINGER` 0, the peer sees a reset)
//! and gracefully within a time limit (flush, `SHUT_WR`, wait for the
//! peer's end: `Ok` when it closes, `TimedOut` when it does not).

mod support;

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use uring_bufio::io::{BufStream, BufWriter};
use uring_bufio::net::UnixStream;
use uring_bufio::spawn;

use support::{Stream, bounded, read_exact, read_to_end, run, tcp_pair};

/// Long enough for any peer here that does close; only reached on a hang.
const GENEROUS: Duration = Duration::from_secs(10);

/// A limit the peers that never close must meet.
const SHORT: Duration = Duration::from_millis(200);

/// Reads from `s` until an error; returns it (end of stream is a failure).
async fn read_until_error<S: Stream>(s: &S) -> io::Error {
    loop {
        let (res, _) = bounded("read", s.read_buf(BytesMut::with_capacity(4096))).await;
        match res {
            Ok(0) => panic!("end of stream where a reset was expected"),
            Ok(_) => continue,
            Err(e) => return e,
        }
    }
}

/// After `abort`, the peer's read fails with `ConnectionReset`, whether
/// or not it had bytes still to read; `set_linger` reads back.
#[test]
fn abort_resets_the_peer() {
    run(async {
        for unread in [0usize, 5000] {
            let (client, server) = tcp_pair().await;
            client.set_linger(Some(Duration::ZERO))?;
            assert_eq!(client.linger()?, Some(Duration::ZERO));
            client.set_linger(None)?;
            assert_eq!(client.linger()?, None);
            if unread > 0 {
                client.write_all(vec![7u8; unread]).await.0?;
                read_exact(&server, 1).await?;
            }
            client.abort().await?;
            let e = read_until_error(&server).await;
            assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
        }
        Ok(())
    });
}

/// An abort after buffered bytes were taken out unsent (`into_parts`):
/// the peer never sees them complete, and its writes fail too.
#[test]
fn abort_of_a_buffered_writer() {
    run(async {
        let (client, server) = tcp_pair().await;
        let mut w = BufWriter::new(client);
        w.write_all(b"partial").await?;
        let (client, unsent) = w.into_parts();
        assert_eq!(&unsent[..], b"partial");
        client.abort().await?;
        let e = read_until_error(&server).await;
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
        Ok(())
    });
}

/// The graceful close returns `Ok` with the count of discarded bytes once
/// the peer closes; the peer read everything first.
#[test]
fn graceful_close_when_the_peer_closes() {
    run(async {
        let (client, server) = tcp_pair().await;
        let mut s = BufStream::new(server);
        s.write_all(b"response").await?;
        let peer = spawn(async move {
            client.write_all(&b"trailing junk"[..]).await.0?;
            let got = read_to_end(&client).await?;
            client.shutdown(std::net::Shutdown::Write).await?;
            Ok::<_, io::Error>(got)
        });
        assert_eq!(s.shutdown_graceful(GENEROUS).await?, 13);
        assert_eq!(peer.await.expect("peer")?, b"response");
        Ok(())
    });
}

/// The writer-side form on both socket types: the peer drops its socket
/// after reading to the end.
#[test]
fn graceful_close_of_a_writer() {
    run(async {
        let (a, b) = UnixStream::pair()?;
        let mut w = BufWriter::new(a);
        w.write_all(&[1; 100_000]).await?;
        let peer = spawn(async move { read_to_end(&b).await.map(|v| v.len()) });
        assert_eq!(w.shutdown_graceful(GENEROUS).await?, 0);
        assert_eq!(peer.await.expect("peer")?, 100_000);

        let (client, server) = tcp_pair().await;
        let mut w = BufWriter::new(server);
        w.write_all(b"x").await?;
        let peer = spawn(async move { read_to_end(&client).await.map(|v| v.len()) });
        assert_eq!(w.shutdown_graceful(GENEROUS).await?, 0);
        assert_eq!(peer.await.expect("peer")?, 1);
        Ok(())
    });
}

/// A peer that reads our end but never closes its side: `TimedOut`, and
/// the stream is still there to close or abort.
#[test]
fn graceful_close_times_out_when_the_peer_stays() {
    run(async {
        let (client, server) = tcp_pair().await;
        let mut s = BufStream::new(server);
        s.write_all(b"bye").await?;
        let e = s.shutdown_graceful(SHORT).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert_eq!(read_to_end(&client).await?, b"bye", "the peer got our end");
        let (server, _) = s.into_parts();
        server.abort().await?;
        // The peer had read our end, so the reset shows on its writes.
        let (res, _) = bounded("write", client.write_all(&b"late"[..])).await;
        let e = res.unwrap_err();
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ),
            "{e}"
        );
        Ok(())
    });
}

/// A peer that never reads: the flush cannot finish, `TimedOut` too.
#[test]
fn graceful_close_times_out_when_the_peer_never_reads() {
    run(async {
        let (_client, server) = tcp_pair().await;
        let mut w = BufWriter::new(server);
        w.write_all(&vec![0; 64 << 20]).await?;
        let e = w.shutdown_graceful(SHORT).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        let (server, _) = w.into_parts();
        server.abort().await
    });
}
