//! RESP2, parsed in place: a request's arguments are spans of the buffer it
//! arrived in (the reader's own buffer on our runtime, a `BytesMut` on
//! tokio), so answering `GET` or `PING` allocates nothing. Shared by every
//! mode of `examples/resp` and included by the tests with `#[path]`.
#![allow(dead_code)] // each includer uses its own part

use std::collections::HashMap;

/// Reply encoders.
#[path = "reply.rs"]
pub mod reply;

use reply::format_int;

/// Bounds against any peer: a request past one is a protocol error that
/// closes its connection, never unbounded growth.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest bulk string (`$<len>`).
    pub max_bulk: usize,
    /// Most arguments of one request (`*<n>`, or words of an inline line).
    pub max_args: usize,
    /// Longest inline command line, without its `\n`.
    pub max_inline: usize,
    /// Longest multibulk request, all headers and bulks included.
    pub max_request: usize,
}

/// The limits the example serves with.
pub const LIMITS: Limits = Limits {
    max_bulk: 1 << 20,
    max_args: 1024,
    max_inline: 64 * 1024,
    max_request: 4 << 20,
};

/// Longest `*<n>` or `$<len>` header line, `\r\n` included.
const MAX_HEADER_LINE: usize = 32;

/// Where the arguments of the last parsed request lie in its buffer. The
/// vector is kept from request to request, so it allocates only while it
/// grows to the largest argument count seen.
#[derive(Debug, Default)]
pub struct Args {
    /// `(start, end)` byte offsets into the parsed slice; `start <= end`.
    spans: Vec<(usize, usize)>,
}

impl Args {
    /// Number of arguments, the command name included.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Argument `i` of the request parsed out of `buf`.
    pub fn get<'b>(&self, buf: &'b [u8], i: usize) -> &'b [u8] {
        let (start, end) = self.spans[i];
        &buf[start..end]
    }
}

/// What [`parse`] found at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request of `len` bytes; its arguments are in the [`Args`]
    /// (none for an empty inline line or `*0`).
    Request {
        /// Bytes the request takes.
        len: usize,
    },
    /// The request is not complete: at least `need` bytes are required.
    Incomplete {
        /// Bytes to have buffered before parsing again.
        need: usize,
    },
    /// The peer broke the protocol or a limit: answer this and close.
    Invalid(&'static str),
}

/// Parses one request from the start of `buf` into `args`.
pub fn parse(buf: &[u8], limits: &Limits, args: &mut Args) -> Parsed {
    args.spans.clear();
    match buf.first() {
        None => Parsed::Incomplete { need: 1 },
        Some(b'*') => parse_multibulk(buf, limits, args),
        Some(_) => parse_inline(buf, limits, args),
    }
}

/// An integer header line `<c><digits>\r\n` at `buf[pos..]`: its value and
/// where the next line starts; `Ok(None)` while incomplete.
fn header_int(buf: &[u8], pos: usize) -> Result<Option<(i64, usize)>, ()> {
    let rest = &buf[pos + 1..];
    let window = &rest[..rest.len().min(MAX_HEADER_LINE)];
    let Some(cr) = memchr::memchr(b'\r', window) else {
        return if rest.len() >= MAX_HEADER_LINE {
            Err(())
        } else {
            Ok(None)
        };
    };
    match rest.get(cr + 1) {
        None => return Ok(None),
        Some(b'\n') => {}
        Some(_) => return Err(()),
    }
    let digits = std::str::from_utf8(&rest[..cr]).map_err(|_| ())?;
    let value = digits.parse::<i64>().map_err(|_| ())?;
    Ok(Some((value, pos + 1 + cr + 2)))
}

/// `*<n>\r\n` followed by `n` bulk strings `$<len>\r\n<bytes>\r\n`.
fn parse_multibulk(buf: &[u8], limits: &Limits, args: &mut Args) -> Parsed {
    let more = Parsed::Incomplete {
        need: buf.len() + 1,
    };
    let (count, mut pos) = match header_int(buf, 0) {
        Ok(Some(header)) => header,
        Ok(None) => return more,
        Err(()) => return Parsed::Invalid("Protocol error: invalid multibulk length"),
    };
    if count > limits.max_args as i64 {
        return Parsed::Invalid("Protocol error: invalid multibulk length");
    }
    for _ in 0..count.max(0) {
        match buf.get(pos) {
            None => return more,
            Some(b'$') => {}
            Some(_) => return Parsed::Invalid("Protocol error: expected '$'"),
        }
        let (len, start) = match header_int(buf, pos) {
            Ok(Some(header)) => header,
            Ok(None) => return more,
            Err(()) => return Parsed::Invalid("Protocol error: invalid bulk length"),
        };
        if len < 0 || len > limits.max_bulk as i64 {
            return Parsed::Invalid("Protocol error: invalid bulk length");
        }
        let end = start + len as usize;
        if end + 2 > limits.max_request {
            return Parsed::Invalid("Protocol error: request too large");
        }
        if buf.len() < end + 2 {
            return Parsed::Incomplete { need: end + 2 };
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Parsed::Invalid("Protocol error: bulk not ended by CRLF");
        }
        args.spans.push((start, end));
        pos = end + 2;
    }
    Parsed::Request { len: pos }
}

/// A line of words separated by spaces, ended by `\n` or `\r\n`.
fn parse_inline(buf: &[u8], limits: &Limits, args: &mut Args) -> Parsed {
    let window = &buf[..buf.len().min(limits.max_inline + 1)];
    let Some(nl) = memchr::memchr(b'\n', window) else {
        return if buf.len() > limits.max_inline {
            Parsed::Invalid("Protocol error: too big inline request")
        } else {
            Parsed::Incomplete {
                need: buf.len() + 1,
            }
        };
    };
    let line = buf[..nl].strip_suffix(b"\r").unwrap_or(&buf[..nl]);
    let mut pos = 0;
    while pos < line.len() {
        if line[pos] == b' ' || line[pos] == b'\t' {
            pos += 1;
            continue;
        }
        let end = line[pos..]
            .iter()
            .position(|&b| b == b' ' || b == b'\t')
            .map_or(line.len(), |i| pos + i);
        if args.spans.len() == limits.max_args {
            return Parsed::Invalid("Protocol error: invalid multibulk length");
        }
        args.spans.push((pos, end));
        pos = end;
    }
    Parsed::Request { len: nl + 1 }
}

/// The keys and values, shared by every connection of a server.
#[derive(Debug, Default)]
pub struct Db {
    /// Key to value; values of `INCR`ed keys are decimal text.
    map: HashMap<Vec<u8>, Vec<u8>>,
}

impl Db {
    /// Stores `value` under `key`, reusing the old value's memory.
    fn set(&mut self, key: &[u8], value: &[u8]) {
        match self.map.get_mut(key) {
            Some(old) => {
                old.clear();
                old.extend_from_slice(value);
            }
            None => {
                self.map.insert(key.to_vec(), value.to_vec());
            }
        }
    }

    /// `INCR`: the new value, or the error to answer.
    fn incr(&mut self, key: &[u8]) -> Result<i64, &'static str> {
        let old = match self.map.get(key) {
            None => 0,
            Some(v) => std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or("ERR value is not an integer or out of range")?,
        };
        let new = old
            .checked_add(1)
            .ok_or("ERR increment or decrement would overflow")?;
        let mut digits = [0u8; 20];
        self.set(key, format_int(new, &mut digits));
        Ok(new)
    }
}

/// Runs the request parsed into `args` out of `buf`; its reply goes to `out`.
pub fn execute(buf: &[u8], args: &Args, db: &mut Db, out: &mut Vec<u8>) {
    if args.len() == 0 {
        return;
    }
    let arg = |i| args.get(buf, i);
    let name = arg(0);
    let n = args.len();
    let is = |cmd: &str| name.eq_ignore_ascii_case(cmd.as_bytes());
    if is("PING") && n <= 2 {
        match n {
            1 => reply::simple(out, b"PONG"),
            _ => reply::bulk(out, Some(arg(1))),
        }
    } else if is("ECHO") && n == 2 {
        reply::bulk(out, Some(arg(1)));
    } else if is("GET") && n == 2 {
        reply::bulk(out, db.map.get(arg(1)).map(Vec::as_slice));
    } else if is("SET") && n == 3 {
        db.set(arg(1), arg(2));
        reply::simple(out, b"OK");
    } else if is("INCR") && n == 2 {
        match db.incr(arg(1)) {
            Ok(v) => reply::int(out, v),
            Err(e) => reply::error(out, e),
        }
    } else if (is("DEL") || is("EXISTS")) && n >= 2 {
        let del = is("DEL");
        let mut count = 0;
        for i in 1..n {
            let hit = if del {
                db.map.remove(arg(i)).is_some()
            } else {
                db.map.contains_key(arg(i))
            };
            count += i64::from(hit);
        }
        reply::int(out, count);
    } else if is("MGET") && n >= 2 {
        reply::array(out, n - 1);
        for i in 1..n {
            reply::bulk(out, db.map.get(arg(i)).map(Vec::as_slice));
        }
    } else if is("CONFIG") && n == 3 && arg(1).eq_ignore_ascii_case(b"GET") {
        reply::array(out, 0);
    } else {
        unknown(name, out);
    }
}

/// The error for a command we do not serve, or one with a wrong arity.
fn unknown(name: &[u8], out: &mut Vec<u8>) {
    const KNOWN: [&str; 9] = [
        "PING", "ECHO", "GET", "SET", "INCR", "DEL", "EXISTS", "MGET", "CONFIG",
    ];
    let known = KNOWN
        .iter()
        .any(|k| name.eq_ignore_ascii_case(k.as_bytes()));
    let shown = &name[..name.len().min(64)];
    let printable = |b: &u8| b.is_ascii_graphic() || *b == b' ';
    out.extend_from_slice(if known {
        b"-ERR wrong number of arguments for '"
    } else {
        b"-ERR unknown command '"
    });
    out.extend(shown.iter().map(|b| if printable(b) { *b } else { b'?' }));
    out.extend_from_slice(if known { b"' command" } else { b"'" });
    out.extend_from_slice(b"\r\n");
}

/// One connection's parsing state: the argument spans and the replies of
/// the current batch, both kept from batch to batch.
#[derive(Debug, Default)]
pub struct Session {
    /// Spans of the request being run.
    args: Args,
    /// Replies not yet handed to the writer.
    out: Vec<u8>,
}

/// What [`Session::handle`] did with a buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Step {
    /// Bytes of whole requests run; consume them.
    pub consumed: usize,
    /// Bytes to have buffered (after consuming) before the next call.
    pub need: usize,
    /// A protocol error was answered: flush the replies and close.
    pub close: bool,
}

impl Session {
    /// Runs every whole request at the start of `buf`, appending replies.
    pub fn handle(&mut self, buf: &[u8], db: &mut Db) -> Step {
        let mut pos = 0;
        loop {
            let rest = &buf[pos..];
            match parse(rest, &LIMITS, &mut self.args) {
                Parsed::Request { len } => {
                    execute(rest, &self.args, db, &mut self.out);
                    pos += len;
                }
                Parsed::Incomplete { need } => {
                    return Step {
                        consumed: pos,
                        need,
                        close: false,
                    };
                }
                Parsed::Invalid(msg) => {
                    self.out.extend_from_slice(b"-ERR ");
                    self.out.extend_from_slice(msg.as_bytes());
                    self.out.extend_from_slice(b"\r\n");
                    return Step {
                        consumed: pos,
                        need: 0,
                        close: true,
                    };
                }
            }
        }
    }

    /// Replies appended since the last [`clear_replies`](Session::clear_replies).
    pub fn replies(&self) -> &[u8] {
        &self.out
    }

    /// Forgets the replies once written (keeps their memory).
    pub fn clear_replies(&mut self) {
        self.out.clear();
    }
}
