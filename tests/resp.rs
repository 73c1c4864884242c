//! The RESP example's protocol edges, on io_uring and on epoll, over real
//! sockets on 127.0.0.1: pipelined commands cut at every byte, the bounds
//! (bulk length, argument count, inline line) answering an error and
//! closing that connection only, and a client closing mid-command.

mod support;
mod wire;

#[path = "../examples/resp/proto.rs"]
mod proto;
#[path = "../examples/resp/server.rs"]
mod server;

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use proto::{Db, LIMITS, Parsed, Session};
use uring_bufio::JoinHandle;
use uring_bufio::net::TcpStream;
use wire::{exchange, on_both, show, until_closed};

/// Pipelined requests of every kind: multibulk and inline, a binary value
/// holding `\r\n`, an empty bulk, an empty inline line, unknown commands.
const SCRIPT: &[u8] = b"*1\r\n$4\r\nPING\r\n\
PING hello\r\n\
*3\r\n$3\r\nSET\r\n$7\r\ncounter\r\n$2\r\n41\r\n\
INCR counter\n\
*2\r\n$3\r\nGET\r\n$7\r\ncounter\r\n\
*3\r\n$3\r\nSET\r\n$3\r\nbin\r\n$4\r\n\r\n\x00x\r\n\
*3\r\n$4\r\nMGET\r\n$3\r\nbin\r\n$4\r\nnone\r\n\
*2\r\n$4\r\nECHO\r\n$0\r\n\r\n\
\r\n\
*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$4\r\nsave\r\n\
EXISTS counter  bin\tnone\r\n\
frob x\r\n\
*3\r\n$3\r\nDEL\r\n$7\r\ncounter\r\n$3\r\nbin\r\n\
GET counter\r\n";

/// What the server answers to [`SCRIPT`].
const ANSWERS: &[u8] = b"+PONG\r\n\
$5\r\nhello\r\n\
+OK\r\n\
:42\r\n\
$2\r\n42\r\n\
+OK\r\n\
*2\r\n$4\r\n\r\n\x00x\r\n$-1\r\n\
$0\r\n\r\n\
*0\r\n\
:2\r\n\
-ERR unknown command 'frob'\r\n\
:2\r\n\
$-1\r\n";

/// A connection to a fresh server running the example's loop on this
/// runtime; the handle returns the loop's result once it ended.
async fn connect(pooled: bool) -> (TcpStream, JoinHandle<io::Result<()>>) {
    let (client, socket) = support::tcp_pair().await;
    let db = Rc::new(RefCell::new(Db::default()));
    (
        client,
        uring_bufio::spawn(server::serve(socket, db, pooled)),
    )
}

/// Pure parser check: the script fed in two pieces cut at every byte gives
/// the same answers, and an incomplete request asks for more than it has.
#[test]
fn session_answers_the_same_at_every_cut() {
    for cut in 0..=SCRIPT.len() {
        let (mut session, mut db) = (Session::default(), Db::default());
        let (mut buf, mut answers) = (Vec::new(), Vec::new());
        for piece in [&SCRIPT[..cut], &SCRIPT[cut..]] {
            buf.extend_from_slice(piece);
            let step = session.handle(&buf, &mut db);
            assert!(!step.close, "cut {cut}: closed");
            answers.extend_from_slice(session.replies());
            session.clear_replies();
            buf.drain(..step.consumed);
            assert!(
                step.need > buf.len(),
                "cut {cut}: asks for {} with {} buffered",
                step.need,
                buf.len()
            );
        }
        assert!(buf.is_empty(), "cut {cut}: left {:?}", show(&buf));
        assert_eq!(show(&answers), show(ANSWERS), "cut {cut}");
    }
}

/// A bulk's announced length is how many bytes the parser waits for.
#[test]
fn incomplete_bulk_asks_for_all_of_it() {
    let mut args = proto::Args::default();
    let head = b"*2\r\n$3\r\nGET\r\n$1000\r\n";
    let need = head.len() + 1000 + 2;
    assert_eq!(
        proto::parse(head, &LIMITS, &mut args),
        Parsed::Incomplete { need }
    );
}

#[test]
fn pipelined_commands_cut_at_every_byte() {
    on_both(|_| async {
        for pooled in [false, true] {
            for cut in 0..=SCRIPT.len() {
                let (client, served) = connect(pooled).await;
                let parts = [&SCRIPT[..cut], &SCRIPT[cut..]];
                let answers = exchange(&client, &parts, Duration::from_millis(1)).await?;
                assert_eq!(show(&answers), show(ANSWERS), "cut {cut}, pooled {pooled}");
                served.await??;
            }
        }
        Ok(())
    });
}

#[test]
fn every_byte_its_own_send() {
    on_both(|_| async {
        let (client, served) = connect(false).await;
        let parts: Vec<&[u8]> = SCRIPT.chunks(1).collect();
        let answers = exchange(&client, &parts, Duration::from_micros(50)).await?;
        assert_eq!(show(&answers), show(ANSWERS));
        served.await?
    });
}

/// Sends `request` (which must be wholly read by the server before it can
/// tell the bound is broken, so its close is a FIN, not a reset), expects
/// the error reply and the close, and checks another connection still works.
async fn broken_bound(request: &[u8], error: &str) -> io::Result<()> {
    let (bystander, bystander_served) = connect(false).await;
    let (client, served) = connect(false).await;
    let answer = until_closed(&client, request).await?;
    assert_eq!(show(&answer), show(format!("-ERR {error}\r\n").as_bytes()));
    served.await??;
    let answer = exchange(&bystander, &[b"PING\r\n"], Duration::ZERO).await?;
    assert_eq!(answer, b"+PONG\r\n", "another connection was hurt");
    bystander_served.await?
}

#[test]
fn oversized_bulk_answers_an_error_and_closes() {
    let request = format!("*2\r\n$3\r\nGET\r\n${}\r\n", LIMITS.max_bulk + 1);
    on_both(|_| broken_bound(request.as_bytes(), "Protocol error: invalid bulk length"));
}

#[test]
fn too_many_arguments_answers_an_error_and_closes() {
    let request = format!("PING\r\n*{}\r\n", LIMITS.max_args + 1);
    on_both(|_| async {
        let (client, served) = connect(false).await;
        let answer = until_closed(&client, request.as_bytes()).await?;
        let want = "+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n";
        assert_eq!(show(&answer), show(want.as_bytes()));
        served.await?
    });
    let words = "x ".repeat(LIMITS.max_args + 1) + "\r\n";
    on_both(|_| broken_bound(words.as_bytes(), "Protocol error: invalid multibulk length"));
}

#[test]
fn long_inline_line_answers_an_error_and_closes() {
    let line = vec![b'a'; LIMITS.max_inline + 1];
    on_both(|_| broken_bound(&line, "Protocol error: too big inline request"));
}

#[test]
fn malformed_headers_answer_an_error_and_close() {
    on_both(|_| broken_bound(b"*x\r\n", "Protocol error: invalid multibulk length"));
    on_both(|_| broken_bound(b"*1\r\n:4\r\n", "Protocol error: expected '$'"));
    on_both(|_| broken_bound(b"*1\r\n$-5\r\n", "Protocol error: invalid bulk length"));
    on_both(|_| {
        broken_bound(
            b"*1\r\n$4\r\nPINGxx",
            "Protocol error: bulk not ended by CRLF",
        )
    });
}

/// A multibulk request whose bulks add up past the request bound is
/// refused before the reader grows to hold it.
#[test]
fn request_past_the_total_bound_answers_an_error_and_closes() {
    let bulk = LIMITS.max_bulk;
    let count = LIMITS.max_request / bulk + 2;
    let mut request = format!("*{count}\r\n$4\r\nMGET\r\n").into_bytes();
    for _ in 0..count - 1 {
        request.extend_from_slice(format!("${bulk}\r\n").as_bytes());
        request.resize(request.len() + bulk, b'k');
        request.extend_from_slice(b"\r\n");
        if request.len() + bulk > LIMITS.max_request {
            request.extend_from_slice(format!("${bulk}\r\n").as_bytes());
            break;
        }
    }
    on_both(|_| broken_bound(&request, "Protocol error: request too large"));
}

#[test]
fn client_closing_mid_command_ends_the_connection_quietly() {
    let cuts: [&[u8]; 4] = [
        b"*2\r\n$3\r\nGET\r\n$1",
        b"*2\r\n$3\r\nGET\r\n$3\r\nke",
        b"PING",
        b"*2\r",
    ];
    on_both(|_| async {
        for pooled in [false, true] {
            for cut in cuts {
                let (client, served) = connect(pooled).await;
                let request = [b"PING\r\n", cut].concat();
                let answer = exchange(&client, &[&request], Duration::ZERO).await?;
                assert_eq!(answer, b"+PONG\r\n", "after {:?}", show(cut));
                served.await??;
                // Closed entirely, not just the write direction.
                let (client, served) = connect(pooled).await;
                let (res, _) = client.write_all(bytes::Bytes::copy_from_slice(cut)).await;
                res?;
                client.close().await?;
                served.await??;
            }
        }
        Ok(())
    });
}

/// A value larger than the reader's default 64 KiB buffer: the reader
/// grows to the bulk's announced length.
#[test]
fn bulk_larger_than_the_read_buffer() {
    let value = vec![b'v'; 300 * 1024];
    let mut request = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", value.len()).into_bytes();
    request.extend_from_slice(&value);
    request.extend_from_slice(b"\r\nGET k\r\n");
    let mut want = format!("+OK\r\n${}\r\n", value.len()).into_bytes();
    want.extend_from_slice(&value);
    want.extend_from_slice(b"\r\n");
    on_both(|_| async {
        for pooled in [false, true] {
            let (client, served) = connect(pooled).await;
            let answer = exchange(&client, &[&request], Duration::ZERO).await?;
            assert!(
                answer == want,
                "pooled {pooled}: {} bytes back",
                answer.len()
            );
            served.await??;
        }
        Ok(())
    });
}
