//! Pooled readers close every fd exactly once: connections whose readers
//! are dropped mid-stream, with receives armed, completions queued and
//! buffers lent, leave the fd count where it started once the runtime
//! settles. Alone in its own test binary, so no other test opens fds
//! meanwhile.

mod support;

use std::io;
use std::time::Duration;

use bytes::Bytes;
use support::pool::pool_supported;
use support::{Rng, bounded, fd_count, settle_fd_count, within};
use uring_bufio::io::BufReader;
use uring_bufio::net::{TcpListener, TcpStream};
use uring_bufio::time::{sleep, timeout};
use uring_bufio::{PoolConfig, Runtime, spawn};

#[test]
fn dropped_pooled_readers_close_their_sockets_and_return_their_buffers() {
    within(Duration::from_secs(60), || {
        let rt = Runtime::builder()
            .pool(PoolConfig::new().buffer_size(256).buffers(8).per_reader(2))
            .build()
            .expect("runtime");
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            // Counted with the listener open and the runtime running.
            let start = fd_count();
            let mut rng = Rng::new(5);
            // The clients stay open to the end: a server socket can only be
            // closed by cancelling its armed receive, not by an end of stream.
            let mut clients = Vec::new();
            for round in 0..4 {
                let mut tasks = Vec::new();
                for i in 0..50 {
                    let client = std::rc::Rc::new(TcpStream::connect(addr).await?);
                    clients.push(client.clone());
                    let (server, _) = listener.accept().await?;
                    let burst = 1 + rng.below(4000);
                    let wait = rng.below(3) as u64;
                    tasks.push(spawn(async move {
                        let (res, _) = client.write_all(Bytes::from(vec![b'x'; burst])).await;
                        res?;
                        let mut r = BufReader::pooled(server);
                        // Read some, then drop the reader in one of three
                        // states: idle, waiting on a receive, or holding
                        // bytes and queued completions.
                        let _ = timeout(Duration::from_millis(wait), r.fill_buf()).await;
                        if (round + i) % 3 == 0 {
                            sleep(Duration::from_millis(2)).await;
                        }
                        drop(r);
                        Ok::<_, io::Error>(())
                    }));
                }
                for t in tasks {
                    bounded("task", t).await.expect("task")?;
                }
            }
            let end = settle_fd_count(start + clients.len(), Duration::from_secs(5)).await;
            assert_eq!(
                end,
                start + clients.len(),
                "fds before {start}, after {end} with {} clients open",
                clients.len()
            );
            drop(clients);
            let end = settle_fd_count(start, Duration::from_secs(5)).await;
            assert_eq!(end, start, "fds before {start}, after {end}");
            match rt.pool_stats() {
                Some(stats) => assert_eq!(stats.out, 0, "buffers still out: {stats:?}"),
                // io_uring without buffer rings: the readers read the
                // ordinary way, and only their sockets are checked.
                None => assert!(!pool_supported(&rt), "no pool where one is supported"),
            }
            Ok::<_, io::Error>(())
        })
        .expect("test failed");
    });
}
