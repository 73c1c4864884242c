//! A line echo server: every line a client sends comes back.
//!
//! `cargo run --release --example echo -- 127.0.0.1:7000`, then for example
//! `printf 'hello\nworld\n' | nc -q1 127.0.0.1 7000`.

use std::io;

use uring_bufio::Runtime;
use uring_bufio::io::BufStream;
use uring_bufio::net::{TcpListener, TcpStream};

/// Echoes lines until the client closes; answers are flushed once nothing
/// more has arrived, so pipelined requests share one send.
async fn serve(socket: TcpStream) -> io::Result<()> {
    let mut stream = BufStream::new(socket);
    while let Some(line) = stream.next_line().await? {
        let reply = [line, b"\n"].concat();
        stream.write_all(&reply).await?;
        if stream.reader().buffer().is_empty() {
            stream.flush().await?;
        }
    }
    stream.shutdown().await
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".to_string());
    Runtime::new()?.block_on(async {
        let listener = TcpListener::bind(&addr)?;
        eprintln!("echoing lines on {}", listener.local_addr()?);
        loop {
            let (socket, peer) = listener.accept().await?;
            uring_bufio::spawn(async move {
                if let Err(e) = serve(socket).await {
                    eprintln!("{peer}: {e}");
                }
            });
        }
    })
}
