//! The public API agrees with tokio's where the names are the same: an
//! inherent method that shadows a tokio extension trait's method returns
//! what the trait's would, and `BufStream` has the accessors tokio's has.

use std::io;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use uring_bufio::io::{BufReader, BufStream, BufWriter};
use uring_bufio::net::UnixStream;
use uring_bufio::{Runtime, time::timeout};

/// Runs `body` on a fresh runtime; errors and hangs (10 s) fail.
fn run(body: impl std::future::Future<Output = io::Result<()>>) {
    Runtime::new()
        .expect("runtime")
        .block_on(async { timeout(Duration::from_secs(10), body).await? })
        .expect("test body");
}

/// With `AsyncReadExt` in scope the inherent `read_exact` is the one
/// called (inherent methods win); it returns the length read, as tokio's.
#[test]
fn read_exact_returns_the_length_as_tokios_does() {
    run(async {
        let (a, b) = UnixStream::pair()?;
        let mut w = BufWriter::new(a);
        w.write_all(b"hello world").await?;
        w.flush().await?;
        let mut r = BufReader::new(b);
        let mut five = [0u8; 5];
        let n: usize = r.read_exact(&mut five).await?;
        assert_eq!((n, &five), (5, b"hello"));
        // The trait's method, called by path, agrees.
        let mut six = [0u8; 6];
        let n = AsyncReadExt::read_exact(&mut r, &mut six).await?;
        assert_eq!((n, &six), (6, b" world"));
        Ok(())
    });
}

/// `BufStream::into_inner` writes what is buffered before it hands the
/// stream back (the peer sees every byte), and `get_mut` reaches the
/// stream underneath.
#[test]
fn buf_stream_into_inner_flushes_and_get_mut_reaches_the_stream() {
    run(async {
        let (a, b) = UnixStream::pair()?;
        let mut s = BufStream::new(a);
        s.write_all(b"buffered").await?;
        let _: &mut UnixStream = s.get_mut();
        let a = s.into_inner().await.map_err(|(e, _, _)| e)?;
        drop(a);
        let mut got = Vec::new();
        BufReader::new(b).read_to_end(&mut got).await?;
        assert_eq!(got, b"buffered");
        Ok(())
    });
}
