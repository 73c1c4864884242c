//! Files on a real io_uring: contents round-trip byte for byte, offsets and
//! the kept position behave, errors have the right kind.

use std::io::{ErrorKind, SeekFrom};
use std::path::Path;

use bytes::{Bytes, BytesMut};
use uring_bufio::Runtime;
use uring_bufio::fs::{File, OpenOptions};

/// Pseudo-random bytes (xorshift64), the same for the same `seed`.
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

/// Reads `file` from its kept position to the end with raw reads of at most
/// `chunk` bytes each.
async fn read_to_end(file: &File, chunk: usize) -> Vec<u8> {
    let mut buf = BytesMut::new();
    loop {
        buf.reserve(chunk);
        let (n, b) = file.read(buf).await;
        buf = b;
        if n.expect("read") == 0 {
            return buf.to_vec();
        }
    }
}

/// Writes `data` to a new file at `path` with `write_all`, reads it back
/// with a second `File`, and checks it with `std` too.
fn round_trip(path: &Path, data: Vec<u8>) {
    let rt = Runtime::new().unwrap();
    let back = rt.block_on(async {
        let file = File::create(path).await.expect("create");
        let (res, given_back) = file.write_all(data.clone()).await;
        res.expect("write_all");
        assert_eq!(
            given_back.len(),
            data.len(),
            "write_all gives all of buf back"
        );
        assert_eq!(file.position(), data.len() as u64);
        file.close().await.expect("close after write");

        let file = File::open(path).await.expect("open");
        let back = read_to_end(&file, 256 * 1024).await;
        assert_eq!(file.position(), data.len() as u64);
        file.close().await.expect("close after read");
        back
    });
    assert!(
        back == data,
        "read back {} bytes, wrote {}",
        back.len(),
        data.len()
    );
    assert!(std::fs::read(path).unwrap() == data, "std sees other bytes");
}

#[test]
fn empty_file_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    round_trip(&dir.path().join("empty"), Vec::new());
}

#[test]
fn small_file_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    round_trip(&dir.path().join("small"), b"hello, io_uring\n".to_vec());
}

#[test]
fn five_mib_file_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    round_trip(
        &dir.path().join("big"),
        pseudo_random(5 * 1024 * 1024 + 13, 7),
    );
}

#[test]
fn sequential_reads_advance_the_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seq");
    std::fs::write(&path, b"abcdefghij").unwrap();
    Runtime::new().unwrap().block_on(async {
        let file = File::open(&path).await.unwrap();
        let mut seen = Vec::new();
        for _ in 0..4 {
            let (n, buf) = file.read(BytesMut::with_capacity(3)).await;
            let n = n.unwrap();
            assert_eq!(&buf[..], &b"abcdefghij"[seen.len()..seen.len() + n]);
            seen.extend_from_slice(&buf);
            assert_eq!(file.position(), seen.len() as u64);
        }
        assert_eq!(seen, b"abcdefghij");
        let (n, _) = file.read(BytesMut::with_capacity(3)).await;
        assert_eq!(n.unwrap(), 0, "end of file");
    });
}

#[test]
fn read_appends_after_existing_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("append-buf");
    std::fs::write(&path, b"world").unwrap();
    Runtime::new().unwrap().block_on(async {
        let file = File::open(&path).await.unwrap();
        let mut buf = BytesMut::with_capacity(16);
        buf.extend_from_slice(b"hello ");
        let (n, buf) = file.read(buf).await;
        assert_eq!(n.unwrap(), 5);
        assert_eq!(&buf[..], b"hello world");
    });
}

#[test]
fn sequential_writes_advance_the_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seqw");
    Runtime::new().unwrap().block_on(async {
        let file = File::create(&path).await.unwrap();
        for part in ["one ", "two ", "three"] {
            let (n, _) = file.write(part).await;
            assert_eq!(n.unwrap(), part.len());
        }
        assert_eq!(file.position(), 13);
        file.sync_all().await.expect("sync_all");
        file.sync_data().await.expect("sync_data");
        file.close().await.unwrap();
    });
    assert_eq!(std::fs::read(&path).unwrap(), b"one two three");
}

#[test]
fn read_at_and_write_at_leave_the_position_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("at");
    Runtime::new().unwrap().block_on(async {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .open(&path)
            .await
            .unwrap();
        file.write_all("0123456789").await.0.unwrap();
        assert_eq!(file.position(), 10);

        let (n, _) = file.write_at(Bytes::from_static(b"XY"), 4).await;
        assert_eq!(n.unwrap(), 2);
        // Past the end: the gap reads as zeros.
        let (n, _) = file.write_at("Z", 12).await;
        assert_eq!(n.unwrap(), 1);
        assert_eq!(file.position(), 10);

        let (n, buf) = file.read_at(BytesMut::with_capacity(4), 3).await;
        assert_eq!(n.unwrap(), 4);
        assert_eq!(&buf[..], b"3XY6");
        let (n, buf) = file.read_at(BytesMut::with_capacity(100), 0).await;
        assert_eq!(n.unwrap(), 13);
        assert_eq!(&buf[..], b"0123XY6789\0\0Z");
        let (n, _) = file.read_at(BytesMut::with_capacity(4), 100).await;
        assert_eq!(n.unwrap(), 0, "past the end");
        assert_eq!(file.position(), 10);

        let (res, _) = file.read_at(BytesMut::with_capacity(4), u64::MAX).await;
        assert_eq!(res.unwrap_err().kind(), ErrorKind::InvalidInput);
        let (res, _) = file.write_at("x", 1 << 63).await;
        assert_eq!(res.unwrap_err().kind(), ErrorKind::InvalidInput);
    });
}

#[test]
fn seek_moves_the_kept_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seek");
    std::fs::write(&path, b"0123456789").unwrap();
    Runtime::new().unwrap().block_on(async {
        let file = File::open(&path).await.unwrap();
        assert_eq!(file.seek(SeekFrom::Start(2)).unwrap(), 2);
        assert_eq!(file.seek(SeekFrom::Current(3)).unwrap(), 5);
        assert_eq!(file.seek(SeekFrom::Current(-1)).unwrap(), 4);
        let (_, buf) = file.read(BytesMut::with_capacity(2)).await;
        assert_eq!(&buf[..], b"45");
        assert_eq!(file.seek(SeekFrom::End(-3)).unwrap(), 7);
        let (_, buf) = file.read(BytesMut::with_capacity(10)).await;
        assert_eq!(&buf[..], b"789");
        assert_eq!(
            file.seek(SeekFrom::End(5)).unwrap(),
            15,
            "past the end is allowed"
        );

        let err = file.seek(SeekFrom::End(-11)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err = file.seek(SeekFrom::Current(-16)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err = file.seek(SeekFrom::Start(u64::MAX)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(file.position(), 15, "a failed seek leaves the position");
    });
}

#[test]
fn create_new_on_existing_file_is_already_exists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exists");
    std::fs::write(&path, b"keep me").unwrap();
    Runtime::new().unwrap().block_on(async {
        let err = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    });
    assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
}

#[test]
fn open_missing_file_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    Runtime::new().unwrap().block_on(async {
        let err = File::open(dir.path().join("missing")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    });
}

#[test]
fn path_with_nul_is_invalid_input() {
    Runtime::new().unwrap().block_on(async {
        let err = File::open("bad\0path").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("NUL"), "{err}");
    });
}

#[test]
fn option_combinations_are_checked_like_std() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("never-created");
    Runtime::new().unwrap().block_on(async {
        let cases = [
            OpenOptions::new().create(true).clone(),
            OpenOptions::new().read(true).truncate(true).clone(),
            OpenOptions::new().read(true).create_new(true).clone(),
            OpenOptions::new().append(true).truncate(true).clone(),
        ];
        for options in cases {
            let err = options.open(&path).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{options:?}");
        }
    });
    assert!(!path.exists());
}

#[test]
fn append_mode_writes_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    std::fs::write(&path, b"first\n").unwrap();
    Runtime::new().unwrap().block_on(async {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .await
            .unwrap();
        file.write_all("second\n").await.0.unwrap();
        // A write_at in append mode appends too (as pwrite does on Linux).
        let (n, _) = file.write_at("third\n", 0).await;
        assert_eq!(n.unwrap(), 6);
        assert_eq!(file.position(), 0, "appends leave the kept position");
        let back = read_to_end(&file, 4).await;
        assert_eq!(back, b"first\nsecond\nthird\n");
        file.close().await.unwrap();
    });
    assert_eq!(std::fs::read(&path).unwrap(), b"first\nsecond\nthird\n");
}

#[test]
fn create_truncates_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trunc");
    std::fs::write(&path, b"old contents").unwrap();
    Runtime::new().unwrap().block_on(async {
        let file = File::create(&path).await.unwrap();
        assert_eq!(file.metadata().unwrap().len(), 0);
        file.write_all("new").await.0.unwrap();
        assert_eq!(file.metadata().unwrap().len(), 3);
        assert!(file.metadata().unwrap().is_file());
    });
    assert_eq!(std::fs::read(&path).unwrap(), b"new");
}

#[test]
fn mode_sets_permissions_of_created_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private");
    Runtime::new().unwrap().block_on(async {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .await
            .unwrap();
        let mode = file.metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    });
}

#[test]
fn write_to_read_only_file_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro");
    std::fs::write(&path, b"x").unwrap();
    Runtime::new().unwrap().block_on(async {
        let file = File::open(&path).await.unwrap();
        let (res, buf) = file.write_all("nope").await;
        assert!(res.is_err());
        assert_eq!(&buf[..], b"nope", "the buffer comes back on error");
        assert_eq!(file.position(), 0);
    });
    assert_eq!(std::fs::read(&path).unwrap(), b"x");
}

#[test]
fn from_std_keeps_the_offset_and_append_flag() {
    use std::io::{Seek, Write};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("std");
    let mut std_file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    std_file.write_all(b"abcdef").unwrap();
    std_file.seek(SeekFrom::Start(2)).unwrap();
    let appending = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    Runtime::new().unwrap().block_on(async {
        let file = File::from_std(std_file);
        assert_eq!(file.position(), 2);
        let (_, buf) = file.read(BytesMut::with_capacity(2)).await;
        assert_eq!(&buf[..], b"cd");
        file.close().await.unwrap();

        let file = File::from_std(appending);
        file.write_all("gh").await.0.unwrap();
        file.close().await.unwrap();
    });
    assert_eq!(std::fs::read(&path).unwrap(), b"abcdefgh");
}

#[test]
fn from_std_reads_a_pipe() {
    use std::io::Write;
    let (reader, mut writer) = std::io::pipe().unwrap();
    writer.write_all(b"through a pipe").unwrap();
    drop(writer);
    let reader = std::fs::File::from(std::os::fd::OwnedFd::from(reader));
    Runtime::new().unwrap().block_on(async {
        let file = File::from_std(reader);
        assert_eq!(read_to_end(&file, 5).await, b"through a pipe");
    });
}

/// (device, inode) of what `fd` refers to now, if it is open.
fn identity(fd: std::os::fd::RawFd) -> Option<(u64, u64)> {
    // SAFETY: `fstat` writes only into `st`, a properly sized local.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above; a closed `fd` is reported as an error.
    let res = unsafe { libc::fstat(fd, &mut st) };
    (res == 0).then_some((st.st_dev, st.st_ino))
}

#[test]
fn close_reports_ok_and_closes_the_fd() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("close");
    Runtime::new().unwrap().block_on(async {
        let file = File::create(&path).await.unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        let before = identity(fd);
        assert!(before.is_some());
        file.close().await.expect("close");
        // Other tests may reuse the number at once, but not for this file.
        assert_ne!(identity(fd), before, "fd {fd} still open after close");
    });
}

#[test]
fn open_outside_a_runtime_is_an_error() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(File::open("/"));
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(Err(e)) => assert!(e.to_string().contains("runtime"), "{e}"),
        Poll::Ready(Ok(_)) => panic!("opened without a runtime"),
        Poll::Pending => panic!("pending without a runtime"),
    }
}
