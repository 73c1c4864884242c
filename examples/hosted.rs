//! This crate's streams inside tokio: an echo server on our `TcpListener`
//! and `BufStream`, a client on tokio's own `TcpStream`, a tokio timer and
//! channel, all in one current-thread runtime's `LocalSet`.
//!
//! ```sh
//! cargo run --example hosted --features hosted
//! URING_BUFIO_DRIVER=epoll cargo run --example hosted --features hosted
//! ```
//!
//! With `--serve MODE` it instead prints a port and echoes the lines of one
//! connection until it closes, the server of `scripts/hosted-syscalls.sh`:
//! MODE `hosted` (our stream in tokio), `ours` (our runtime) or `tokio`
//! (tokio's own stream).

use std::io;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use uring_bufio::io::BufStream;
use uring_bufio::net::TcpListener;

/// Lines the client sends.
const LINES: usize = 1000;

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, mode] = &args[..]
        && flag == "--serve"
    {
        return serve(mode);
    }
    demo()
}

/// The demo: server, ticker and client in one process.
fn demo() -> io::Result<()> {
    let (echoed, ticks) = uring_bufio::hosted::start(async {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        // Server: our listener and buffered stream, in a spawn_local task.
        let server = tokio::task::spawn_local(async move {
            let (socket, _) = listener.accept().await?;
            let mut stream = BufStream::new(socket);
            while let Some(line) = stream.next_line().await? {
                let reply = [line, b"\n"].concat();
                stream.write_all(&reply).await?;
                stream.flush().await?;
            }
            stream.shutdown().await
        });
        // A tokio timer ticking meanwhile, reporting through a tokio channel.
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let ticker = tokio::task::spawn_local(async move {
            let mut ticks = 0u32;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(1)) => ticks += 1,
                    _ = &mut stop_rx => return ticks,
                }
            }
        });
        // Client: tokio's own socket and buffered reader.
        let socket = tokio::net::TcpStream::connect(addr).await?;
        let (r, mut w) = socket.into_split();
        let mut r = tokio::io::BufReader::new(r);
        let mut echoed = 0;
        let mut line = String::new();
        for i in 0..LINES {
            w.write_all(format!("line {i}\n").as_bytes()).await?;
            line.clear();
            r.read_line(&mut line).await?;
            if line != format!("line {i}\n") {
                return Err(io::Error::other(format!("echo {i} came back as {line:?}")));
            }
            echoed += 1;
        }
        w.shutdown().await?;
        server.await.map_err(io::Error::other)??;
        let _ = stop_tx.send(());
        let ticks = ticker.await.map_err(io::Error::other)?;
        Ok::<_, io::Error>((echoed, ticks))
    })??;
    println!(
        "echoed {echoed} lines through uring-bufio hosted on tokio; the tokio timer ticked {ticks} times meanwhile"
    );
    Ok(())
}

/// Echoes the lines of one connection on 127.0.0.1 (the port goes to
/// stdout) with our stream hosted on tokio, on our runtime, or with tokio's.
fn serve(mode: &str) -> io::Result<()> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    println!("{}", listener.local_addr()?.port());
    match mode {
        "hosted" => uring_bufio::hosted::start(echo_ours(listener))?,
        "ours" => uring_bufio::Runtime::new()?.block_on(echo_ours(listener)),
        "tokio" => tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?
            .block_on(echo_tokio(listener)),
        other => Err(io::Error::other(format!("unknown mode {other:?}"))),
    }
}

/// One connection echoed with our `BufStream`.
async fn echo_ours(listener: std::net::TcpListener) -> io::Result<()> {
    let (socket, _) = TcpListener::from_std(listener).accept().await?;
    socket.set_nodelay(true)?;
    let mut stream = BufStream::new(socket);
    while let Some(line) = stream.next_line().await? {
        let reply = [line, b"\n"].concat();
        stream.write_all(&reply).await?;
        stream.flush().await?;
    }
    stream.shutdown().await
}

/// One connection echoed with tokio's `BufStream`.
async fn echo_tokio(listener: std::net::TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let (socket, _) = tokio::net::TcpListener::from_std(listener)?
        .accept()
        .await?;
    socket.set_nodelay(true)?;
    let mut stream = tokio::io::BufStream::new(socket);
    let mut line = Vec::new();
    loop {
        line.clear();
        if stream.read_until(b'\n', &mut line).await? == 0 {
            return stream.shutdown().await;
        }
        stream.write_all(&line).await?;
        stream.flush().await?;
    }
}
