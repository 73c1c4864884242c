//! Standard streams, for real: each parent test runs this test binary again
//! as a child (one `--exact` test, selected by `CHILD_VAR`) with stdin and
//! stdout connected to pipes, files or sockets, and checks the bytes the
//! child's `Stdin`/`Stdout` moved.
//!
//! A child test does nothing unless `CHILD_VAR` names it. When it runs, it
//! writes `MARKER` and then its output, and exits at once, so everything
//! after the first `MARKER` on its stdout is its own (libtest prints only
//! before it).

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};

use bytes::BytesMut;
use uring_bufio::Runtime;
use uring_bufio::stdio::{stderr, stdin, stdout, try_stdin};

/// Environment variable naming the child test to act.
const CHILD_VAR: &str = "URING_BUFIO_STDIO_CHILD";
/// Printed by a child right before its output.
const MARKER: &[u8] = b"<<uring-bufio child output>>";

/// This process is the child `name`.
fn is_child(name: &str) -> bool {
    std::env::var(CHILD_VAR).as_deref() == Ok(name)
}

/// A command running the child test `name`.
fn child(name: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, name)
        .stderr(Stdio::piped());
    cmd
}

/// What the child wrote after `MARKER`; panics with its stderr if it failed.
fn child_output(stdout: &[u8], status: std::process::ExitStatus, stderr: &[u8]) -> Vec<u8> {
    let stderr = String::from_utf8_lossy(stderr);
    assert!(status.success(), "child failed ({status}):\n{stderr}");
    let at = stdout
        .windows(MARKER.len())
        .position(|w| w == MARKER)
        .unwrap_or_else(|| panic!("no marker in child output; stderr:\n{stderr}"));
    stdout[at + MARKER.len()..].to_vec()
}

/// Pseudo-random bytes (xorshift64) of every value, newlines included.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Child: reads all of stdin with raw reads, writes it back uppercased.
#[test]
fn child_uppercase() {
    if !is_child("child_uppercase") {
        return;
    }
    Runtime::new().unwrap().block_on(async {
        let input = stdin();
        let mut buf = BytesMut::new();
        loop {
            buf.reserve(64 * 1024);
            let (n, b) = input.read(buf).await;
            buf = b;
            if n.expect("read stdin") == 0 {
                break;
            }
        }
        let mut out = MARKER.to_vec();
        out.extend(buf.iter().map(u8::to_ascii_uppercase));
        stdout().write_all(out).await.0.expect("write stdout");
    });
    std::process::exit(0);
}

#[test]
fn pipes_in_and_out_round_trip_byte_exact() {
    let input = pseudo_random(3 * 1024 * 1024 + 5, 11);
    let mut proc = child("child_uppercase")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = proc.stdin.take().unwrap();
    let feed = input.clone();
    let writer = std::thread::spawn(move || pipe.write_all(&feed));
    let out = proc.wait_with_output().unwrap();
    writer.join().unwrap().expect("feed child stdin");
    let got = child_output(&out.stdout, out.status, &out.stderr);
    let want: Vec<u8> = input.iter().map(u8::to_ascii_uppercase).collect();
    assert_eq!(got.len(), want.len());
    assert!(
        got == want,
        "child output differs from its uppercased input"
    );
}

#[test]
fn stdin_from_a_file_reads_from_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input");
    std::fs::write(&path, b"skipped|read me, please\n").unwrap();
    let mut file = std::fs::File::open(&path).unwrap();
    file.seek(SeekFrom::Start(8)).unwrap();
    let out = child("child_uppercase")
        .stdin(Stdio::from(file))
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let got = child_output(&out.stdout, out.status, &out.stderr);
    assert_eq!(got, b"READ ME, PLEASE\n");
}

#[test]
fn empty_stdin_gives_empty_output() {
    let out = child("child_uppercase")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(child_output(&out.stdout, out.status, &out.stderr), b"");
}

#[test]
fn stdout_to_a_socket_round_trips() {
    let (mut ours, theirs) = UnixStream::pair().unwrap();
    let mut cmd = child("child_uppercase");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::from(OwnedFd::from(theirs)));
    let mut proc = cmd.spawn().unwrap();
    drop(cmd); // Closes our copy of the child's end, so EOF follows its exit.
    let mut pipe = proc.stdin.take().unwrap();
    let writer = std::thread::spawn(move || pipe.write_all(b"over a socket"));
    let mut got = Vec::new();
    ours.read_to_end(&mut got).unwrap();
    let status = proc.wait().unwrap();
    writer.join().unwrap().unwrap();
    let mut err = Vec::new();
    proc.stderr.take().unwrap().read_to_end(&mut err).unwrap();
    assert_eq!(child_output(&got, status, &err), b"OVER A SOCKET");
}

/// Child: SIGPIPE restored to its default (death), fd 1 replaced by a
/// socket whose peer is gone: the write must fail with `BrokenPipe`, not
/// kill the child.
#[test]
fn child_write_to_closed_socket() {
    use std::os::fd::AsRawFd;
    if !is_child("child_write_to_closed_socket") {
        return;
    }
    let (ours, theirs) = UnixStream::pair().unwrap();
    drop(ours);
    // SAFETY: makes fd 1 a copy of `theirs`; this child writes nothing else
    // to fd 1 from here on. Then restores the default action of SIGPIPE.
    unsafe {
        assert_eq!(libc::dup2(theirs.as_raw_fd(), 1), 1);
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let err = Runtime::new()
        .unwrap()
        .block_on(async { stdout().write_all(vec![b'x'; 1 << 20]).await.0.unwrap_err() });
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err}");
    std::process::exit(0);
}

#[test]
fn stdout_socket_with_closed_peer_is_broken_pipe_not_sigpipe() {
    let out = child("child_write_to_closed_socket")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed ({}):\n{stderr}",
        out.status
    );
}

/// Child: fd 0 is closed. `try_stdin` reports it, `stdin` reads fail with
/// `EBADF`, and neither the placeholder nor the duplicate of fd 1 takes the
/// free slot 0.
#[test]
fn child_stdin_closed() {
    if !is_child("child_stdin_closed") {
        return;
    }
    let rt = Runtime::new().unwrap();
    // SAFETY: closes this child's own fd 0; nothing else here uses it.
    unsafe { libc::close(0) };
    let err = try_stdin().unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        None,
        "the error names the stream: {err}"
    );
    assert!(err.to_string().contains("stdin (fd 0)"), "{err}");
    let input = stdin();
    let output = stdout();
    // SAFETY: only asks whether fd 0 is open.
    assert_eq!(unsafe { libc::fcntl(0, libc::F_GETFD) }, -1, "fd 0 taken");
    drop(output);
    let (res, _) = rt.block_on(input.read(BytesMut::with_capacity(8)));
    assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EBADF));
    std::process::exit(0);
}

#[test]
fn closed_stdin_is_reported() {
    let out = child("child_stdin_closed")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed ({}):\n{stderr}",
        out.status
    );
}

/// Child: dropping our handles leaves the real fds 0 and 1 open: std can
/// still read stdin and write stdout afterwards.
#[test]
fn child_drop_keeps_real_streams() {
    if !is_child("child_drop_keeps_real_streams") {
        return;
    }
    Runtime::new().unwrap().block_on(async {
        let input = stdin();
        let (n, buf) = input.read(BytesMut::with_capacity(5)).await;
        assert_eq!(n.unwrap(), 5);
        stdout().write_all(MARKER).await.0.unwrap();
        stdout().write_all(buf).await.0.unwrap();
        stderr().write_all("(stderr works)").await.0.unwrap();
        drop(input);
    });
    let mut rest = Vec::new();
    std::io::stdin().read_to_end(&mut rest).unwrap();
    let mut out = std::io::stdout();
    out.write_all(b"|").unwrap();
    out.write_all(&rest).unwrap();
    out.flush().unwrap();
    std::process::exit(0);
}

#[test]
fn dropping_handles_keeps_real_streams_open() {
    let mut proc = child("child_drop_keeps_real_streams")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    proc.stdin
        .take()
        .unwrap()
        .write_all(b"first, then std")
        .unwrap();
    let out = proc.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("(stderr works)"));
    let got = child_output(&out.stdout, out.status, &out.stderr);
    assert_eq!(got, b"first|, then std");
}
