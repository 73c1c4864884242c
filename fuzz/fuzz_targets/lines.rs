//! Bytes → records: a payload sent over a Unix socket pair in chunks, cut
//! by a `BufReader` of a small capacity with a mix of line and record
//! methods, each result compared with the model. Must never panic and must
//! always agree.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use uring_bufio::io::BufReader;
use uring_bufio_fuzz::cutting::{Method, check_calls, read_by_methods, trickled};
use uring_bufio_fuzz::{chunks, run};

/// One input: how to read, how to send, what to send.
#[derive(Debug, Arbitrary)]
struct Input {
    /// The reader's capacity (`+ 1`).
    capacity: u8,
    /// The maximum record length (`+ 1`).
    max: u8,
    /// Chunk sizes the peer sends in, cycled.
    chunks: Vec<u8>,
    /// Methods, cycled.
    methods: Vec<M>,
    /// The stream.
    payload: Vec<u8>,
}

/// [`Method`], for `Arbitrary`.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum M {
    NextLine,
    ReadLine,
    NextUntil(u8),
    ReadUntil(u8),
    LinesNext,
    SplitNext(u8),
}

impl From<M> for Method {
    fn from(m: M) -> Method {
        match m {
            M::NextLine => Method::NextLine,
            M::ReadLine => Method::ReadLine,
            M::NextUntil(d) => Method::NextUntil(d),
            M::ReadUntil(d) => Method::ReadUntil(d),
            M::LinesNext => Method::LinesNext,
            M::SplitNext(d) => Method::SplitNext(d),
        }
    }
}

fuzz_target!(|input: Input| {
    let max = usize::from(input.max) + 1;
    let methods: Vec<Method> = if input.methods.is_empty() {
        vec![Method::NextLine]
    } else {
        input.methods.iter().map(|&m| m.into()).collect()
    };
    let (calls, rest) = run(async {
        let (socket, writer) = trickled(&input.payload, &chunks(&input.chunks))?;
        let mut reader = BufReader::with_capacity(usize::from(input.capacity) + 1, socket);
        reader.set_max_record_len(max);
        let bound = input.payload.len() + methods.len() + 2;
        let out = read_by_methods(reader, &methods, bound).await?;
        writer.await??;
        Ok(out)
    });
    if let Err(e) = check_calls(&input.payload, &methods, max, &calls, &rest) {
        panic!("{e}");
    }
});
