//! A random sequence of stream operations on a `BufWriter` and a
//! `BufReader` at the two ends of a Unix socket pair, each future dropped
//! after a random number of polls (a runtime tick apart). The model is the
//! byte stream: every byte a write took arrives exactly once, in order;
//! every record read agrees with the model of cutting; a dropped future
//! took and consumed nothing; at the end everything left arrives.
#![no_main]

use std::io::ErrorKind;

use futures_util::future::join;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use uring_bufio::io::{BufReader, BufWriter};
use uring_bufio::net::UnixStream;
use uring_bufio_fuzz::cutting::{Method, call_borrowed, expect};
use uring_bufio_fuzz::{limited, run};

/// One input: capacities, the maximum record length, and the operations.
#[derive(Debug, Arbitrary)]
struct Input {
    /// The reader's capacity (`+ 1`).
    read_capacity: u8,
    /// The writer's capacity (`+ 1`).
    write_capacity: u8,
    /// The maximum record length (`+ 1`).
    max: u8,
    ops: Vec<Op>,
}

/// One operation; `polls` (modulo 8) is how many times its future is
/// polled before it is dropped.
#[derive(Debug, Arbitrary)]
enum Op {
    Write { data: Vec<u8>, polls: u8 },
    WriteAll { data: Vec<u8>, polls: u8 },
    Flush { polls: u8 },
    Shutdown { polls: u8 },
    FillBuf { consume: u16, polls: u8 },
    Read { len: u8, polls: u8 },
    ReadExact { len: u8, polls: u8 },
    Record { method: M, polls: u8 },
}

/// The borrowing record methods, for `Arbitrary`.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum M {
    NextLine,
    ReadLine,
    NextUntil(u8),
    ReadUntil(u8),
}

impl From<M> for Method {
    fn from(m: M) -> Method {
        match m {
            M::NextLine => Method::NextLine,
            M::ReadLine => Method::ReadLine,
            M::NextUntil(d) => Method::NextUntil(d),
            M::ReadUntil(d) => Method::ReadUntil(d),
        }
    }
}

/// The model: the stream of bytes the writer took.
#[derive(Debug, Default)]
struct Model {
    /// Every byte a write took, in order.
    sent: Vec<u8>,
    /// How many of them the reader consumed.
    pos: usize,
    /// A shutdown was started: no more writes.
    shut: bool,
    /// The maximum record length.
    max: usize,
}

impl Model {
    /// Bytes sent and not consumed.
    fn rest(&self) -> &[u8] {
        &self.sent[self.pos..]
    }

    /// The reader saw the end of the stream: only after a shutdown, and
    /// with every byte consumed.
    fn end(&self, what: &str) {
        assert!(self.shut, "{what}: end of stream without a shutdown");
        assert!(
            self.rest().is_empty(),
            "{what}: end with {} bytes lost",
            self.rest().len()
        );
    }

    /// `got` bytes were consumed by a read: they must be the next ones.
    fn consumed(&mut self, got: &[u8], what: &str) {
        assert!(
            self.rest().starts_with(got),
            "{what}: read {got:?}, stream has {:?}",
            self.rest()
        );
        self.pos += got.len();
    }
}

/// How many polls an operation's future gets before it is dropped.
fn k(polls: u8) -> usize {
    usize::from(polls % 8)
}

type Reader = BufReader<UnixStream>;
type Writer = BufWriter<UnixStream>;

/// Runs one operation against the reader, the writer and the model.
async fn step(r: &mut Reader, w: &mut Writer, m: &mut Model, op: Op) {
    match op {
        Op::Write { data, polls } if !m.shut => {
            if let Some(res) = limited(w.write(&data), k(polls)).await {
                let n = res.expect("write");
                assert!(
                    n <= data.len() && (n > 0 || data.is_empty()),
                    "write took {n}"
                );
                m.sent.extend_from_slice(&data[..n]);
            }
        }
        Op::WriteAll { data, polls } if !m.shut => {
            if let Some(res) = limited(w.write_all(&data), k(polls)).await {
                res.expect("write_all");
                m.sent.extend_from_slice(&data);
            }
        }
        Op::Write { .. } | Op::WriteAll { .. } => {}
        Op::Flush { polls } => {
            if let Some(res) = limited(w.flush(), k(polls)).await {
                res.expect("flush");
                assert!(w.buffer().is_empty(), "flushed with bytes buffered");
            }
        }
        Op::Shutdown { polls } => {
            m.shut = true;
            if let Some(res) = limited(w.shutdown(), k(polls)).await {
                res.expect("shutdown");
            }
        }
        Op::FillBuf { consume, polls } => {
            let fill = async { r.fill_buf().await.map(<[u8]>::to_vec) };
            if let Some(res) = limited(fill, k(polls)).await {
                let buf = res.expect("fill_buf");
                if buf.is_empty() {
                    m.end("fill_buf");
                }
                assert!(m.rest().starts_with(&buf), "fill_buf: {buf:?} not next");
                let n = usize::from(consume) % (buf.len() + 1);
                r.consume(n);
                m.consumed(&buf[..n], "fill_buf");
            }
        }
        Op::Read { len, polls } => {
            let mut dst = vec![0; usize::from(len)];
            if let Some(res) = limited(r.read(&mut dst), k(polls)).await {
                let n = res.expect("read");
                if n == 0 && len > 0 {
                    m.end("read");
                }
                m.consumed(&dst[..n], "read");
            }
        }
        Op::ReadExact { len, polls } => {
            let mut dst = vec![0; usize::from(len)];
            match limited(r.read_exact(&mut dst), k(polls)).await {
                Some(Ok(())) => m.consumed(&dst, "read_exact"),
                Some(Err(e)) if e.kind() == ErrorKind::UnexpectedEof => {
                    assert!(
                        m.shut && m.rest().len() < dst.len(),
                        "read_exact: early end"
                    );
                    assert_eq!(r.buffer(), m.rest(), "read_exact: end consumed bytes");
                }
                Some(Err(e)) => panic!("read_exact: {e}"),
                None => {}
            }
        }
        Op::Record { method, polls } => {
            let method = Method::from(method);
            if let Some(got) = limited(call_borrowed(r, method), k(polls)).await {
                let (want, consumed) = expect(m.rest(), method, m.max);
                assert_eq!(got, want, "{method:?} at byte {}", m.pos);
                match consumed {
                    Some(0) => m.end("record"),
                    Some(n) => m.pos += n,
                    None => {}
                }
            }
        }
    }
    // Buffered bytes are always the next of the stream, and the writer's
    // unsent bytes the last it took.
    assert!(
        m.rest().starts_with(r.buffer()),
        "reader buffers bytes out of order"
    );
    assert!(
        m.sent.ends_with(w.buffer()),
        "writer buffers bytes it did not take"
    );
}

fuzz_target!(|input: Input| {
    run(async {
        let (a, b) = UnixStream::pair()?;
        let mut w = BufWriter::with_capacity(usize::from(input.write_capacity) + 1, a);
        let mut r = BufReader::with_capacity(usize::from(input.read_capacity) + 1, b);
        let mut m = Model {
            max: usize::from(input.max) + 1,
            ..Model::default()
        };
        r.set_max_record_len(m.max);
        for op in input.ops {
            step(&mut r, &mut w, &mut m, op).await;
        }
        // Whatever was dropped where: everything taken and not yet read
        // arrives, once, in order.
        let mut rest = Vec::new();
        let (shut, read) = join(w.shutdown(), r.read_to_end(&mut rest)).await;
        shut?;
        read?;
        m.shut = true;
        m.consumed(&rest, "the rest");
        m.end("the rest");
        Ok(())
    });
});
