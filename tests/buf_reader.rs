//! `BufReader` over real files on io_uring (and on epoll with
//! `URING_BUFIO_DRIVER=epoll`). Every way of reading (`fill_buf`/`consume`,
//! `read`, `read_to_end`, `next_line`, `read_line`, `read_until`, `lines()`,
//! `read_exact`, `fill_at_least`, `read_to_string`) gives exactly the bytes
//! and records that a reference computed with std says it should, at
//! buffer-size edges and past the maximum record length. Sockets, in the
//! ordinary and the pooled mode, are in `tests/buf_reader_socket.rs`;
//! frames in `tests/frames.rs`.

mod support;

use std::io::{self, ErrorKind};
use std::path::Path;

use bytes::BytesMut;
use futures_util::StreamExt;
use support::records::{
    ALL, End, Shape, assert_bytes, assert_outcome, expected, outcome, skip_record, text,
    text_ending,
};
use support::{Rng, run};
use uring_bufio::ReadSource;
use uring_bufio::fs::File;
use uring_bufio::io::BufReader;

/// Opens `path` with capacity `cap` (default if `None`) and maximum `max`.
async fn open(path: &Path, cap: Option<usize>, max: usize) -> io::Result<BufReader<File>> {
    let file = File::open(path).await?;
    let mut r = match cap {
        Some(cap) => BufReader::with_capacity(cap, file),
        None => BufReader::new(file),
    };
    r.set_max_record_len(max);
    Ok(r)
}

/// Writes `data` to a file and checks every [`Method`] on it.
async fn check_file(
    dir: &Path,
    data: &[u8],
    cap: Option<usize>,
    max: usize,
    seed: u64,
) -> io::Result<()> {
    let path = dir.join(format!("data-{seed}"));
    std::fs::write(&path, data)?;
    for m in ALL {
        let ctx = format!(
            "seed {seed}, {} bytes, capacity {cap:?}, max {max}, {m:?}",
            data.len()
        );
        let (got, _) = outcome(open(&path, cap, max).await?, m, seed).await?;
        assert_outcome(&got, &expected(data, max, m), &ctx);
    }
    std::fs::remove_file(&path)
}

/// Files of 0, 1, capacity - 1, capacity, capacity + 1 bytes (and twice
/// that), ending with and without a newline, read through a 64-byte buffer
/// with lines past the maximum: every method matches std.
#[test]
fn small_files_at_capacity_edges_match_std() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shape = Shape {
        short: 12,
        longest: 40,
        long_every: 3,
    };
    run(async {
        let mut seed = 100;
        for size in [0, 1, 2, 63, 64, 65, 127, 128, 129] {
            for end in [End::AsIs, End::Newline, End::NoNewline] {
                for max in [24, 64 * 1024] {
                    seed += 1;
                    let data = text_ending(&mut Rng::new(seed), size, shape, end, max);
                    check_file(dir.path(), &data, Some(64), max, seed).await?;
                }
            }
        }
        Ok(())
    });
}

/// Three MiB through a 4 KiB buffer, lines up to past a 5000-byte maximum:
/// every method matches std.
#[test]
fn large_file_small_capacity_matches_std() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shape = Shape {
        short: 120,
        longest: 6000,
        long_every: 20,
    };
    run(async {
        for (seed, end) in [(7, End::Newline), (8, End::NoNewline)] {
            let data = text_ending(&mut Rng::new(seed), 3 << 20, shape, end, 5000);
            check_file(dir.path(), &data, Some(4096), 5000, seed).await?;
        }
        Ok(())
    });
}

/// The default capacity and maximum (64 KiB each), with lines up to 70 KiB:
/// every method matches std.
#[test]
fn default_capacity_and_max_match_std() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shape = Shape {
        short: 200,
        longest: 70 * 1024,
        long_every: 40,
    };
    run(async {
        let probe = BufReader::new(File::open("/dev/null").await?);
        assert_eq!(
            (probe.capacity(), probe.max_record_len()),
            (64 * 1024, 64 * 1024)
        );
        let data = text_ending(&mut Rng::new(9), 2 << 20, shape, End::AsIs, 64 * 1024);
        check_file(dir.path(), &data, None, 64 * 1024, 9).await
    });
}

/// A line longer than the maximum is `InvalidData` for `next_line`,
/// `read_line`, `read_until` and `lines()`; its bytes stay buffered (a retry
/// fails the same way), and after the caller consumes them reading goes on.
#[test]
fn too_long_line_is_invalid_data_and_stays_buffered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("long");
    let long = "y".repeat(100);
    let tail = "z".repeat(30);
    std::fs::write(&path, format!("short\n{long}\r\nafter\n{tail}")).expect("write");
    run(async {
        let mut r = open(&path, Some(8), 16).await?;
        assert_eq!(r.next_line().await?, Some(&b"short"[..]));
        for _ in 0..2 {
            let err = r
                .next_line()
                .await
                .expect_err("a 102-byte line with max 16");
            assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
            assert!(r.buffer().len() > 16 && r.buffer().starts_with(&long.as_bytes()[..17]));
        }
        let (mut s, mut v) = (String::new(), Vec::new());
        assert_eq!(
            r.read_line(&mut s).await.map_err(|e| e.kind()),
            Err(ErrorKind::InvalidData)
        );
        assert_eq!(
            r.read_until(b'\n', &mut v).await.map_err(|e| e.kind()),
            Err(ErrorKind::InvalidData)
        );
        assert!(s.is_empty() && v.is_empty(), "nothing appended on error");
        assert_eq!(skip_record(&mut r).await?, long.as_bytes()[..17]);
        assert_eq!(r.next_line().await?, Some(&b"after"[..]));
        let err = r
            .next_line()
            .await
            .expect_err("a last 30-byte line with max 16");
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
        let kept = r.buffer().len();
        assert!(
            kept > 16,
            "only {kept} bytes of the last line stay buffered"
        );
        assert_eq!(r.buffer(), &tail.as_bytes()[..kept]);
        assert_eq!(skip_record(&mut r).await?, tail.as_bytes()[..17]);
        assert_eq!(r.next_line().await?, None);
        let mut lines = open(&path, Some(8), 16).await?.lines();
        assert_eq!(lines.next().await.transpose()?.as_deref(), Some("short"));
        let err = lines.next().await.expect("an item").expect_err("too long");
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
        Ok(())
    });
}

/// The maximum does not count the delimiter: with a maximum of 10, a record
/// of 10 bytes plus its delimiter passes and one of 11 bytes plus delimiter
/// is `InvalidData`, for `next_line`, `read_until` and `next_until`.
#[test]
fn max_record_len_does_not_count_the_delimiter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("boundary");
    std::fs::write(
        &path,
        "1234567890\n12345678901\n123456789\r\n1234567890\n12345678901\n",
    )
    .expect("write");
    let comma = dir.path().join("comma");
    std::fs::write(&comma, "1234567890,12345678901,").expect("write");
    run(async {
        let mut r = open(&path, Some(4), 10).await?;
        assert_eq!(r.next_line().await?, Some(&b"1234567890"[..]));
        let err = r.next_line().await.expect_err("11 bytes and `\\n`");
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
        assert_eq!(skip_record(&mut r).await?, b"12345678901");
        assert_eq!(r.next_line().await?, Some(&b"123456789"[..]));
        let mut v = Vec::new();
        assert_eq!(r.read_until(b'\n', &mut v).await?, 11);
        let err = r
            .read_until(b'\n', &mut v)
            .await
            .expect_err("11 bytes and `\\n`");
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
        assert_eq!(v, b"1234567890\n", "nothing appended on error");
        let mut r = open(&comma, Some(4), 10).await?;
        assert_eq!(r.next_until(b',').await?, Some(&b"1234567890"[..]));
        let err = r.next_until(b',').await.expect_err("11 bytes and `,`");
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
        Ok(())
    });
}

/// A line is defined without its `\n` or `\r\n` and the maximum does not
/// count the delimiter, so a `\r\n` line of exactly the maximum (10 bytes)
/// passes `next_line`, `read_line` and `lines()`, as the same line ending
/// in `\n` does.
#[test]
fn crlf_line_of_max_bytes_is_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("crlf");
    std::fs::write(&path, "1234567890\r\n1234567890\r\n1234567890\r\n").expect("write");
    run(async {
        let mut r = open(&path, Some(4), 10).await?;
        let line = r.next_line().await.map(|l| l.map(<[u8]>::to_vec));
        assert_eq!(
            line.map_err(|e| e.kind()),
            Ok(Some(b"1234567890".to_vec())),
            "next_line"
        );
        let mut s = String::new();
        let n = r.read_line(&mut s).await.map_err(|e| e.kind());
        assert_eq!(n, Ok(12), "read_line");
        let mut lines = r.lines();
        let line = lines.next_line().await.map_err(|e| e.kind());
        assert_eq!(line, Ok(Some("1234567890".to_owned())), "lines()");
        Ok(())
    });
}

/// A last record without a delimiter may be as long as the maximum: with a
/// maximum of 10, 10 bytes pass and 11 are `InvalidData`, and stay buffered.
#[test]
fn last_record_without_newline_counts_against_the_max() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ten, eleven) = (dir.path().join("ten"), dir.path().join("eleven"));
    std::fs::write(&ten, "1234567890").expect("write");
    std::fs::write(&eleven, "12345678901").expect("write");
    run(async {
        let mut r = open(&ten, Some(4), 10).await?;
        assert_eq!(r.next_line().await?, Some(&b"1234567890"[..]));
        assert_eq!(r.next_line().await?, None);
        let mut r = open(&eleven, Some(4), 10).await?;
        let err = r.next_until(b',').await.expect_err("11 bytes with max 10");
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
        assert_eq!(r.buffer(), b"12345678901");
        Ok(())
    });
}

/// Invalid UTF-8 (a bad byte, a bad continuation, a character cut by the
/// end) makes `read_to_string` fail with `InvalidData`, having appended
/// exactly the valid text before it and left the rest readable.
#[test]
fn read_to_string_rejects_invalid_utf8() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&[u8], usize); 3] = [
        (b"h\xc3\xa9llo w\xc3\xb6rld\xff rest", 13),
        (b"ab\xe2\x28\xa1cd", 2),
        (b"abc\xe2\x82", 3),
    ];
    run(async {
        for (i, (bytes, valid)) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("bad-{i}"));
            std::fs::write(&path, bytes)?;
            for cap in [1, 3, 4096] {
                let ctx = format!("case {i}, capacity {cap}");
                let mut r = open(&path, Some(cap), 100).await?;
                let mut out = String::from(">");
                let err = r.read_to_string(&mut out).await.expect_err(&ctx);
                assert_eq!(err.kind(), ErrorKind::InvalidData, "{ctx}: {err}");
                assert_eq!(
                    out.as_bytes(),
                    [&b">"[..], &bytes[..valid]].concat(),
                    "{ctx}: appended"
                );
                let mut rest = Vec::new();
                r.read_to_end(&mut rest).await?;
                assert_eq!(rest, &bytes[valid..], "{ctx}: left readable");
            }
        }
        Ok(())
    });
}

/// `into_inner` on a file reader sets the file's position back to the first
/// byte not consumed, whatever was buffered or read ahead: the file read on
/// directly continues exactly there (after one `next_line` with the default
/// capacity, after random mixes of calls, after `lines()`).
#[test]
fn into_inner_rewinds_file_to_first_unconsumed_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rewind");
    let shape = Shape {
        short: 80,
        longest: 80,
        long_every: 1,
    };
    let data = [
        &b"first line\r\n"[..],
        &text(&mut Rng::new(61), 300_000, shape),
    ]
    .concat();
    std::fs::write(&path, &data).expect("write");
    run(async {
        let mut r = open(&path, None, 64 * 1024).await?;
        assert_eq!(r.next_line().await?, Some(&b"first line"[..]));
        check_rest(r.into_inner(), &data, 12, "one next_line").await?;
        for seed in 62..82 {
            let mut r = open(&path, Some(64), 64 * 1024).await?;
            let consumed = random_calls(&mut r, &data, &mut Rng::new(seed)).await?;
            check_rest(r.into_inner(), &data, consumed, &format!("seed {seed}")).await?;
        }
        let mut lines = open(&path, Some(64), 64 * 1024).await?.lines();
        let mut consumed = 0;
        for _ in 0..5 {
            let line = lines.next_line().await?.expect("a line");
            consumed += line.len()
                + if data[consumed + line.len()] == b'\r' {
                    2
                } else {
                    1
                };
        }
        check_rest(lines.into_inner().into_inner(), &data, consumed, "lines()").await
    });
}

/// Makes 0..40 random reading calls on `r` (holding `data`); returns how
/// many bytes they consumed.
async fn random_calls<S: ReadSource>(
    r: &mut BufReader<S>,
    data: &[u8],
    rng: &mut Rng,
) -> io::Result<usize> {
    let mut at = 0;
    for _ in 0..rng.below(40) {
        match rng.below(4) {
            0 => {
                r.next_line().await?.expect("a line");
                at += data[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .expect("a newline")
                    + 1;
            }
            1 => {
                let n = rng.below(r.fill_buf().await?.len() + 1);
                r.consume(n);
                at += n;
            }
            2 => at += r.read(&mut [0; 100][..rng.below(100)]).await?,
            _ => {
                let mut dst = vec![0; rng.below(300)];
                r.read_exact(&mut dst).await?;
                at += dst.len();
            }
        }
    }
    Ok(at)
}

/// Checks that `file` is at `at` and that `File::read` from there gives
/// `data[at..]` to the end.
async fn check_rest(file: File, data: &[u8], at: usize, ctx: &str) -> io::Result<()> {
    assert_eq!(
        file.position(),
        at as u64,
        "{ctx}: position after into_inner"
    );
    let mut got = BytesMut::new();
    // Bounded: a read that did not move on would fill memory forever.
    while got.len() <= data.len() - at {
        got.reserve(64 * 1024);
        let (res, buf) = file.read(got).await;
        got = buf;
        if res? == 0 {
            break;
        }
    }
    assert_bytes(
        &got,
        &data[at..],
        &format!("{ctx}: read on after into_inner"),
    );
    file.close().await
}
