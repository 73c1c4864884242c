//! End of stream is reported once, to the call that needed more bytes than
//! were buffered; the next call reads again. A file that grows after its
//! end was reported is read on, through every kind of call that can meet
//! the end (`fill_buf`, `next_line`, `fill_at_least`, `read_to_end`).

mod support;

use std::io::{ErrorKind, Write};

use support::run;
use uring_bufio::fs::File;
use uring_bufio::io::BufReader;

/// Appends `bytes` to the file at `path`.
fn append(path: &std::path::Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn a_file_that_grows_after_its_end_is_read_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("growing");
    std::fs::write(&path, b"abc").expect("write");
    run(async {
        let mut r = BufReader::with_capacity(16, File::open(&path).await?);
        assert_eq!(r.fill_buf().await?, b"abc");
        r.consume(3);
        assert!(r.fill_buf().await?.is_empty(), "the end");
        append(&path, b"one\ntwo");
        assert_eq!(r.fill_buf().await?, b"one\ntwo", "read again after the end");
        assert_eq!(r.next_line().await?, Some(&b"one"[..]));
        assert_eq!(r.next_line().await?, Some(&b"two"[..]));
        assert_eq!(r.next_line().await?, None);
        append(&path, b"\nxy");
        assert_eq!(r.next_line().await?, Some(&b""[..]), "the line after `two`");
        let err = r.fill_at_least(3).await.expect_err("only 2 bytes");
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
        append(&path, b"z");
        assert_eq!(r.fill_at_least(3).await?, b"xyz");
        let mut rest = Vec::new();
        assert_eq!(r.read_to_end(&mut rest).await?, 3);
        append(&path, b"more");
        rest.clear();
        assert_eq!(r.read_to_end(&mut rest).await?, 4);
        assert_eq!(rest, b"more");
        Ok(())
    });
}
