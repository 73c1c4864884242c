//! This crate's streams inside tokio: an echo server on our `TcpListener`
//! and `BufStream`, a client on tokio's own `TcpStream`, a tokio timer and
//! channel, all in one current-thread runtime's `LocalSet`.
//!
//! ```sh
//! cargo run --example hosted --features hosted
//! URING_BUFIO_DRIVER=epoll cargo run --example hosted --features hosted
//! ```

use std::io;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use uring_bufio::io::BufStream;
use uring_bufio::net::TcpListener;

/// Lines the client sends.
const LINES: usize = 1000;

fn main() -> io::Result<()> {
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
    println!("echoed {echoed} lines through uring-bufio hosted on tokio; the tokio timer ticked {ticks} times meanwhile");
    Ok(())
}
