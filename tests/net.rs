//! TCP and Unix sockets over real io_uring: round trips, split halves in two
//! tasks, addresses, options, shutdown, errors and close.

mod support;

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use support::run;
use uring_bufio::net::{TcpListener, TcpStream, UnixListener, UnixStream, tcp, unix};
use uring_bufio::time::timeout;

/// Byte `i` of the test pattern (period 251, so chunk edges show up).
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31).wrapping_add(7) % 251) as u8
}

/// `len` pattern bytes starting at stream offset `start`.
fn pattern_chunk(start: usize, len: usize) -> Bytes {
    (start..start + len)
        .map(pattern)
        .collect::<Vec<u8>>()
        .into()
}

/// Fowler-Noll-Vo hash, to compare what was sent with what arrived.
fn fnv(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// FNV offset basis.
const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Something that reads with owned buffers: streams and read halves.
trait OwnedRead {
    /// Reads into `buf`'s spare capacity.
    async fn read_into(&self, buf: BytesMut) -> (io::Result<usize>, BytesMut);
}

/// Something that writes owned buffers: streams and write halves.
trait OwnedWrite {
    /// Writes all of `buf`.
    async fn write_all_of(&self, buf: Bytes) -> (io::Result<()>, Bytes);
    /// Shuts down the write direction.
    async fn shutdown_write(&self) -> io::Result<()>;
}

/// Implements [`OwnedRead`] by calling each type's own `read`.
macro_rules! owned_read {
    ($($t:ty),*) => {$(
        impl OwnedRead for $t {
            async fn read_into(&self, buf: BytesMut) -> (io::Result<usize>, BytesMut) {
                self.read(buf).await
            }
        }
    )*};
}
owned_read!(
    TcpStream,
    UnixStream,
    tcp::OwnedReadHalf,
    unix::OwnedReadHalf
);

/// Implements [`OwnedWrite`] for a write half.
macro_rules! owned_write {
    ($($t:ty),*) => {$(
        impl OwnedWrite for $t {
            async fn write_all_of(&self, buf: Bytes) -> (io::Result<()>, Bytes) {
                self.write_all(buf).await
            }
            async fn shutdown_write(&self) -> io::Result<()> {
                self.shutdown().await
            }
        }
    )*};
}
owned_write!(tcp::OwnedWriteHalf, unix::OwnedWriteHalf);

impl OwnedWrite for TcpStream {
    async fn write_all_of(&self, buf: Bytes) -> (io::Result<()>, Bytes) {
        self.write_all(buf).await
    }
    async fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write).await
    }
}

impl OwnedWrite for UnixStream {
    async fn write_all_of(&self, buf: Bytes) -> (io::Result<()>, Bytes) {
        self.write_all(buf).await
    }
    async fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write).await
    }
}

/// Reads until end of stream and returns everything read.
async fn read_to_end(r: &impl OwnedRead) -> io::Result<Vec<u8>> {
    let mut all = Vec::new();
    loop {
        let (n, buf) = r.read_into(BytesMut::with_capacity(4096)).await;
        if n? == 0 {
            return Ok(all);
        }
        all.extend_from_slice(&buf);
    }
}

/// Reads exactly `len` bytes; end of stream before that is `UnexpectedEof`.
async fn read_exact(r: &impl OwnedRead, len: usize) -> io::Result<Bytes> {
    let mut buf = BytesMut::with_capacity(len);
    while buf.len() < len {
        let (n, b) = r.read_into(buf).await;
        buf = b;
        if n? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(buf.freeze())
}

/// Sends a message from `a` to `b` and back, checking both directions.
async fn ping_pong(
    a: &(impl OwnedRead + OwnedWrite),
    b: &(impl OwnedRead + OwnedWrite),
) -> io::Result<()> {
    let msg = Bytes::from_static(b"hello over io_uring");
    let (res, sent) = a.write_all_of(msg.clone()).await;
    res?;
    assert_eq!(sent, msg, "write_all returns the buffer");
    let got = read_exact(b, msg.len()).await?;
    assert_eq!(got, msg);
    b.write_all_of(got).await.0?;
    assert_eq!(read_exact(a, msg.len()).await?, msg);
    Ok(())
}

/// A connected client/server TCP pair on `listener`.
async fn tcp_pair(listener: &TcpListener) -> io::Result<(TcpStream, TcpStream)> {
    let client = TcpStream::connect(listener.local_addr()?).await?;
    let (server, peer) = listener.accept().await?;
    assert_eq!(
        peer,
        client.local_addr()?,
        "accept reports the client's address"
    );
    Ok((client, server))
}

#[test]
fn tcp_round_trip_ipv4() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let (client, server) = tcp_pair(&listener).await?;
        ping_pong(&client, &server).await?;
        Ok(())
    });
}

#[test]
fn tcp_round_trip_ipv6() {
    let listener = match std::net::TcpListener::bind("[::1]:0") {
        Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => {
            eprintln!("skipping tcp_round_trip_ipv6: cannot bind ::1 ({e}); no IPv6 loopback");
            return;
        }
        other => other.expect("bind [::1]:0"),
    };
    run(async {
        let listener = TcpListener::from_std(listener);
        assert!(listener.local_addr()?.is_ipv6());
        let (client, server) = tcp_pair(&listener).await?;
        assert!(client.peer_addr()?.is_ipv6());
        ping_pong(&client, &server).await?;
        Ok(())
    });
}

#[test]
fn unix_round_trip_through_a_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sock");
    run(async {
        let listener = UnixListener::bind(&path)?;
        assert_eq!(listener.local_addr()?.as_pathname(), Some(path.as_path()));
        let client = UnixStream::connect(&path).await?;
        let (server, peer) = listener.accept().await?;
        assert!(peer.is_unnamed(), "client did not bind: {peer:?}");
        assert_eq!(client.peer_addr()?.as_pathname(), Some(path.as_path()));
        assert_eq!(server.local_addr()?.as_pathname(), Some(path.as_path()));
        ping_pong(&client, &server).await?;
        Ok(())
    });
}

#[test]
fn unix_pair_round_trip() {
    run(async {
        let (a, b) = UnixStream::pair()?;
        ping_pong(&a, &b).await?;
        Ok(())
    });
}

#[test]
fn unix_connect_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    run(async {
        let missing = UnixStream::connect(dir.path().join("missing")).await;
        assert_eq!(missing.unwrap_err().kind(), io::ErrorKind::NotFound);
        let too_long = dir.path().join("x".repeat(200));
        let err = UnixStream::connect(too_long).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        Ok(())
    });
}

/// Total bytes pushed through split halves.
const MIB: usize = 1 << 20;

/// Writes [`MIB`] pattern bytes in uneven chunks, then shuts down; returns
/// the hash of what was sent.
async fn write_mib(half: impl OwnedWrite) -> io::Result<u64> {
    let mut hash = FNV_START;
    let mut sent = 0;
    while sent < MIB {
        let len = (MIB - sent).min(7919 * (1 + sent % 13));
        let chunk = pattern_chunk(sent, len);
        hash = fnv(hash, &chunk);
        half.write_all_of(chunk).await.0?;
        sent += len;
    }
    half.shutdown_write().await?;
    Ok(hash)
}

/// Reads to end of stream, checking every byte against the pattern;
/// returns the hash and the count.
async fn read_checked(half: impl OwnedRead) -> io::Result<(u64, usize)> {
    let mut hash = FNV_START;
    let mut seen = 0;
    loop {
        let (n, buf) = half.read_into(BytesMut::with_capacity(16 * 1024)).await;
        if n? == 0 {
            return Ok((hash, seen));
        }
        for (i, &b) in buf.iter().enumerate() {
            assert_eq!(b, pattern(seen + i), "byte {} differs", seen + i);
        }
        hash = fnv(hash, &buf);
        seen += buf.len();
    }
}

#[test]
fn tcp_split_halves_in_two_tasks() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let (client, server) = tcp_pair(&listener).await?;
        let (c_read, c_write) = client.into_split();
        let (s_read, s_write) = server.into_split();
        assert_eq!(c_write.peer_addr()?, s_read.local_addr()?);
        assert_eq!(c_read.local_addr()?, s_write.peer_addr()?);
        // Both directions at once: four tasks, each with one half.
        let w1 = uring_bufio::spawn(write_mib(c_write));
        let r1 = uring_bufio::spawn(read_checked(s_read));
        let w2 = uring_bufio::spawn(write_mib(s_write));
        let r2 = uring_bufio::spawn(read_checked(c_read));
        for (w, r) in [(w1, r1), (w2, r2)] {
            let sent = w.await.expect("writer task")?;
            let (got, n) = r.await.expect("reader task")?;
            assert_eq!(n, MIB);
            assert_eq!(got, sent, "checksum of received bytes");
        }
        Ok(())
    });
}

#[test]
fn unix_split_halves_in_two_tasks() {
    run(async {
        let (a, b) = UnixStream::pair()?;
        let (_a_read, a_write) = a.into_split();
        let (b_read, _b_write) = b.into_split();
        let w = uring_bufio::spawn(write_mib(a_write));
        let r = uring_bufio::spawn(read_checked(b_read));
        let sent = w.await.expect("writer task")?;
        let (got, n) = r.await.expect("reader task")?;
        assert_eq!((got, n), (sent, MIB));
        Ok(())
    });
}

#[test]
fn tcp_addresses_agree_between_ends() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        assert_ne!(addr.port(), 0, "kernel picked a port");
        let (client, server) = tcp_pair(&listener).await?;
        assert_eq!(client.peer_addr()?, addr);
        assert_eq!(server.local_addr()?, addr);
        assert_eq!(server.peer_addr()?, client.local_addr()?);
        Ok(())
    });
}

#[test]
fn tcp_set_nodelay() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let (client, _server) = tcp_pair(&listener).await?;
        client.set_nodelay(true)?;
        assert!(client.nodelay()?);
        client.set_nodelay(false)?;
        assert!(!client.nodelay()?);
        Ok(())
    });
}

#[test]
fn shutdown_write_makes_peer_read_eof() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let (client, server) = tcp_pair(&listener).await?;
        client.write_all("last words").await.0?;
        client.shutdown(Shutdown::Write).await?;
        assert_eq!(read_to_end(&server).await?, b"last words");
        // The other direction still works after a half shutdown.
        server.write_all("reply").await.0?;
        assert_eq!(&read_exact(&client, 5).await?[..], b"reply");

        let (a, b) = UnixStream::pair()?;
        a.shutdown(Shutdown::Write).await?;
        assert!(read_to_end(&b).await?.is_empty());
        Ok(())
    });
}

#[test]
fn connect_to_closed_port_is_refused() {
    // A socket bound but not listening holds the port for the whole test:
    // a closed port could be taken by another test's listener meanwhile, or
    // be the ephemeral port our connect picks (a TCP self-connect succeeds).
    let holder =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    holder
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .expect("bind");
    let addr = holder
        .local_addr()
        .expect("local_addr")
        .as_socket()
        .unwrap();
    run(async {
        let err = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
        Ok(())
    });
}

#[test]
fn connect_tries_every_address() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let addrs = [closed, listener.local_addr()?];
        let client = TcpStream::connect(&addrs[..]).await?;
        assert_eq!(client.peer_addr()?, addrs[1]);
        let none: &[SocketAddr] = &[];
        let err = TcpStream::connect(none).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        Ok(())
    });
}

#[test]
fn close_returns_ok_and_peer_sees_eof() {
    let dir = tempfile::tempdir().expect("tempdir");
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let (client, server) = tcp_pair(&listener).await?;
        client.close().await?;
        assert!(read_to_end(&server).await?.is_empty());
        server.close().await?;
        listener.close().await?;

        let path = dir.path().join("sock");
        let listener = UnixListener::bind(&path)?;
        let client = UnixStream::connect(&path).await?;
        let (server, _) = listener.accept().await?;
        client.close().await?;
        server.close().await?;
        listener.close().await?;
        Ok(())
    });
}

#[test]
fn read_without_spare_capacity_reads_nothing() {
    run(async {
        let (a, b) = UnixStream::pair()?;
        b.write_all("x").await.0?;
        let (n, buf) = a.read(BytesMut::new()).await;
        assert_eq!(n?, 0);
        assert!(buf.is_empty());
        // The byte is still there for a read with room.
        assert_eq!(&read_exact(&a, 1).await?[..], b"x");
        Ok(())
    });
}

#[test]
fn read_appends_after_existing_bytes() {
    run(async {
        let (a, b) = UnixStream::pair()?;
        b.write_all("world").await.0?;
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(b"hello ");
        let (n, buf) = a.read(buf).await;
        assert_eq!(n?, 5);
        assert_eq!(&buf[..], b"hello world");
        Ok(())
    });
}

#[test]
fn from_std_nonblocking_listener_still_accepts() {
    run(async {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(std_listener);
        let addr = listener.local_addr()?;
        // Accept first, in its own task, so it must wait for the connection.
        let accept = uring_bufio::spawn(async move { listener.accept().await });
        uring_bufio::time::sleep(Duration::from_millis(20)).await;
        let client = TcpStream::connect(addr).await?;
        let (server, _) = accept.await.expect("accept task")?;
        ping_pong(&client, &server).await?;
        Ok(())
    });
}

#[test]
fn dropped_accept_does_not_break_the_listener() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let pending = timeout(Duration::from_millis(10), listener.accept()).await;
        assert!(pending.is_err(), "nothing connected yet");
        let (client, server) = tcp_pair(&listener).await?;
        ping_pong(&client, &server).await?;
        listener.close().await
    });
}
