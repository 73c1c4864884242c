//! HTTP/1.1 parsed in place with `httparse`: the request head is read
//! where it lies in the buffer (the reader's own on our runtime, a
//! `BytesMut` on tokio), bodies are `Content-Length` bytes right after it,
//! and responses to pipelined requests go out in order. Shared by every
//! mode of `examples/http`; included by the tests with `#[path]`.
#![allow(dead_code)] // each includer uses its own part

use std::io::Write;

/// Longest request head (request line and headers, blank line included):
/// past it the answer is `431` and the connection closes.
pub const MAX_HEAD: usize = 8 * 1024;
/// Most headers of one request: more is a `431` too.
pub const MAX_HEADERS: usize = 32;
/// Longest body: past it, `413`.
pub const MAX_BODY: usize = 1 << 20;
/// What `GET /` answers.
pub const HELLO: &[u8] = b"Hello, World!";

/// A response status this server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 200 OK.
    Ok,
    /// 400 Bad Request: the request did not parse.
    BadRequest,
    /// 404 Not Found: no such route.
    NotFound,
    /// 413: the body is longer than [`MAX_BODY`].
    PayloadTooLarge,
    /// 431: the head is longer than [`MAX_HEAD`] or has too many headers.
    HeadersTooLarge,
    /// 501: a `Transfer-Encoding` body, which this server does not read.
    NotImplemented,
}

impl Status {
    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::PayloadTooLarge => 413,
            Status::HeadersTooLarge => 431,
            Status::NotImplemented => 501,
        }
    }

    /// The status line's code and reason.
    pub fn line(self) -> &'static str {
        match self {
            Status::Ok => "200 OK",
            Status::BadRequest => "400 Bad Request",
            Status::NotFound => "404 Not Found",
            Status::PayloadTooLarge => "413 Payload Too Large",
            Status::HeadersTooLarge => "431 Request Header Fields Too Large",
            Status::NotImplemented => "501 Not Implemented",
        }
    }
}

/// A parsed request head; its strings borrow the buffer it was parsed from.
#[derive(Debug, PartialEq, Eq)]
pub struct Head<'b> {
    /// `GET`, `POST`...
    pub method: &'b str,
    /// The request target.
    pub path: &'b str,
    /// The connection stays open after the response.
    pub keep_alive: bool,
    /// Bytes of the head, blank line included: the body starts here.
    pub head_len: usize,
    /// `Content-Length`, 0 without one.
    pub body_len: usize,
}

/// What [`parse`] found at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'b> {
    /// A whole head (the body may still be arriving).
    Head(Head<'b>),
    /// The head is not complete: at least `need` bytes are required.
    Incomplete {
        /// Bytes to have buffered before parsing again.
        need: usize,
    },
    /// Answer this status and close.
    Reject(Status),
}

/// Parses the request head at the start of `buf`, looking at no more than
/// [`MAX_HEAD`] bytes.
pub fn parse(buf: &[u8]) -> Parsed<'_> {
    let window = &buf[..buf.len().min(MAX_HEAD)];
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if window.len() >= MAX_HEAD => {
            return Parsed::Reject(Status::HeadersTooLarge);
        }
        Ok(httparse::Status::Partial) => {
            return Parsed::Incomplete {
                need: buf.len() + 1,
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Parsed::Reject(Status::HeadersTooLarge),
        Err(_) => return Parsed::Reject(Status::BadRequest),
    };
    let (method, path) = (req.method.unwrap_or(""), req.path.unwrap_or(""));
    match body_and_connection(req.version == Some(1), req.headers) {
        Ok((body_len, keep_alive)) => Parsed::Head(Head {
            method,
            path,
            keep_alive,
            head_len,
            body_len,
        }),
        Err(status) => Parsed::Reject(status),
    }
}

/// The body length and whether the connection stays open, from the
/// headers of an HTTP/1.1 (`v11`) or 1.0 request.
fn body_and_connection(v11: bool, headers: &[httparse::Header]) -> Result<(usize, bool), Status> {
    let mut body_len = None;
    let mut keep_alive = v11;
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            let len = std::str::from_utf8(h.value)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<usize>().ok())
                .ok_or(Status::BadRequest)?;
            if body_len.is_some_and(|l| l != len) {
                return Err(Status::BadRequest);
            }
            body_len = Some(len);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Status::NotImplemented);
        } else if h.name.eq_ignore_ascii_case("connection") {
            if h.value.eq_ignore_ascii_case(b"close") {
                keep_alive = false;
            } else if h.value.eq_ignore_ascii_case(b"keep-alive") {
                keep_alive = true;
            }
        }
    }
    match body_len.unwrap_or(0) {
        len if len > MAX_BODY => Err(Status::PayloadTooLarge),
        len => Ok((len, keep_alive)),
    }
}

/// The service: `GET /` (or `HEAD /`) says hello, `POST /echo` sends the
/// body back, everything else is 404. The hyper mode serves the same.
pub fn route<'a>(method: &str, path: &str, body: &'a [u8]) -> (Status, &'a [u8]) {
    match (method, path) {
        ("GET" | "HEAD", "/") => (Status::Ok, HELLO),
        ("POST", "/echo") => (Status::Ok, body),
        _ => (Status::NotFound, b"not found"),
    }
}

/// Appends a response to `out` (memory kept from batch to batch: writing
/// a response allocates nothing once it has grown).
pub fn respond(out: &mut Vec<u8>, status: Status, body: &[u8], head_only: bool, close: bool) {
    let connection = if close { "connection: close\r\n" } else { "" };
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n{connection}\r\n",
        status.line(),
        body.len()
    );
    if !head_only {
        out.extend_from_slice(body);
    }
}

/// One connection's state: the responses of the current batch.
#[derive(Debug, Default)]
pub struct Session {
    /// Responses not yet handed to the writer.
    out: Vec<u8>,
}

/// What [`Session::handle`] did with a buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Step {
    /// Bytes of whole requests answered; consume them.
    pub consumed: usize,
    /// Bytes to have buffered (after consuming) before the next call.
    pub need: usize,
    /// The last response closes the connection: flush, then shut down.
    pub close: bool,
}

impl Session {
    /// Answers every whole request at the start of `buf`.
    pub fn handle(&mut self, buf: &[u8]) -> Step {
        let mut pos = 0;
        loop {
            let rest = &buf[pos..];
            let head = match parse(rest) {
                Parsed::Head(head) => head,
                Parsed::Incomplete { need } => {
                    return Step {
                        consumed: pos,
                        need,
                        close: false,
                    };
                }
                Parsed::Reject(status) => {
                    respond(&mut self.out, status, status.line().as_bytes(), false, true);
                    return Step {
                        consumed: pos,
                        need: 0,
                        close: true,
                    };
                }
            };
            let total = head.head_len + head.body_len;
            if rest.len() < total {
                return Step {
                    consumed: pos,
                    need: total,
                    close: false,
                };
            }
            let body = &rest[head.head_len..total];
            let (status, reply) = route(head.method, head.path, body);
            let head_only = head.method == "HEAD";
            respond(&mut self.out, status, reply, head_only, !head.keep_alive);
            pos += total;
            if !head.keep_alive {
                return Step {
                    consumed: pos,
                    need: 0,
                    close: true,
                };
            }
        }
    }

    /// Responses appended since the last [`clear_replies`](Session::clear_replies).
    pub fn replies(&self) -> &[u8] {
        &self.out
    }

    /// Forgets the responses once written (keeps their memory).
    pub fn clear_replies(&mut self) {
        self.out.clear();
    }
}
