//! Counts the lines and bytes of a file, or of standard input.
//!
//! `cargo run --release --example wc -- FILE` or `... --example wc < FILE`

use std::io;

use uring_bufio::io::BufReader;
use uring_bufio::{ReadSource, Runtime, fs::File, stdio};

/// Lines (newline bytes, as `wc -l` counts them) and bytes of `source`.
async fn count<S: ReadSource>(source: S) -> io::Result<(u64, u64)> {
    let mut reader = BufReader::new(source);
    let (mut lines, mut bytes) = (0u64, 0u64);
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok((lines, bytes));
        }
        lines += memchr::memchr_iter(b'\n', buf).count() as u64;
        bytes += buf.len() as u64;
        let n = buf.len();
        reader.consume(n);
    }
}

fn main() -> io::Result<()> {
    let path = std::env::args().nth(1);
    Runtime::new()?.block_on(async {
        let (lines, bytes) = match &path {
            Some(p) => count(File::open(p).await?).await?,
            None => count(stdio::stdin()).await?,
        };
        println!("{lines} {bytes} {}", path.as_deref().unwrap_or(""));
        Ok(())
    })
}
