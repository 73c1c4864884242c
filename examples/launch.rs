//! An echo server on every core, with the launcher.
//!
//! ```text
//! cargo run --release --example launch                      # bounded demo
//! cargo run --release --example launch -- 127.0.0.1:7000    # serve until SIGTERM / ctrl-c
//! cargo run --release --example launch -- 127.0.0.1:7000 --workers 4 --acceptor --pin
//! ```
//!
//! With no address it runs a bounded demo and exits by itself: it serves on
//! a free port, sends 200 short connections from a client thread, prints
//! how many each worker served, then shuts down gracefully. With an address
//! it serves until SIGTERM or ctrl-c, then stops accepting, lets open
//! connections finish (5 s grace), closes its listeners and exits; started
//! again at once it binds the same port.
//!
//! Options: `--workers N` (default: available cores), `--acceptor` (one
//! acceptor thread hands sockets round-robin, instead of a `SO_REUSEPORT`
//! listener per worker), `--pin` (pin worker i to CPU i), `--max N`
//! (connections per worker).

use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::time::Duration;

use uring_bufio::io::BufStream;
use uring_bufio::launch::{Connection, Launcher, Listen, Running, Server};
use uring_bufio::net::TcpStream;

/// Echoes each line back until the peer closes or shutdown begins.
async fn echo(stream: TcpStream, conn: Connection) -> io::Result<()> {
    let mut stream = BufStream::new(stream);
    while let Some(line) = conn.shutdown().run_until_begun(stream.next_line()).await {
        let Some(line) = line? else { break };
        let reply = [line, b"\n"].concat();
        stream.write_all(&reply).await?;
        stream.flush().await?;
    }
    stream.shutdown().await
}

/// The command line.
struct Args {
    /// Where to listen; `None`: the bounded demo.
    addr: Option<SocketAddr>,
    /// The launcher's settings.
    launcher: Launcher,
    /// Listener mode.
    listen: Listen,
    /// Connection cap per worker.
    max: Option<usize>,
}

/// Parses the command line.
fn args() -> io::Result<Args> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    let mut args = Args {
        addr: None,
        launcher: Launcher::new(),
        listen: Listen::ReusePort,
        max: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = || -> io::Result<usize> {
            let v = it
                .next()
                .ok_or_else(|| bad(format!("{arg} needs a number")))?;
            v.parse()
                .map_err(|_| bad(format!("{arg} {v}: not a number")))
        };
        match arg.as_str() {
            "--workers" => _ = args.launcher.workers(number()?),
            "--max" => args.max = Some(number()?),
            "--acceptor" => args.listen = Listen::Acceptor,
            "--pin" => _ = args.launcher.pin_cpus(true),
            addr => {
                args.addr = Some(
                    addr.parse()
                        .map_err(|_| bad(format!("{addr}: not an address")))?,
                )
            }
        }
    }
    Ok(args)
}

fn main() -> io::Result<()> {
    let args = args()?;
    let demo = args.addr.is_none();
    let mut server = Server::new(args.addr.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap()));
    server
        .launcher(args.launcher)
        .listen(args.listen)
        .grace(Duration::from_secs(5));
    if let Some(max) = args.max {
        server.max_connections(max);
    }
    let running = server.serve(echo)?;
    println!(
        "echo on {} with {} workers ({:?})",
        running.local_addr(),
        running.workers().len(),
        args.listen
    );
    if demo {
        run_demo(&running)?;
        running.shutdown();
    } else {
        println!("SIGTERM or ctrl-c to stop");
    }
    let stats = running.join()?;
    for (worker, s) in stats.iter().enumerate() {
        println!(
            "worker {worker}: {} connections, {} finished",
            s.accepted + s.handed_in,
            s.finished
        );
    }
    Ok(())
}

/// 200 short connections from a client thread, each one line echoed.
fn run_demo(running: &Running) -> io::Result<()> {
    let addr = running.local_addr();
    std::thread::spawn(move || -> io::Result<()> {
        for i in 0..200 {
            let mut stream = std::net::TcpStream::connect(addr)?;
            writeln!(stream, "hello {i}")?;
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line)?;
            assert_eq!(line, format!("hello {i}\n"));
        }
        Ok(())
    })
    .join()
    .expect("client thread")?;
    Ok(())
}
