//! `BufReader` over sockets fed in random chunks with random pauses, in
//! both modes: ordinary readers with their own buffer, and pooled readers
//! (`BufReader::pooled`) receiving into small buffers of the runtime's pool,
//! so that records span pool buffers and are joined in the spill buffer.
//! Every way of reading gives exactly what std computes from the bytes
//! sent, and a pooled test ends with every pool buffer back. Runs on
//! io_uring and, with `URING_BUFIO_DRIVER=epoll`, on epoll. The file tests
//! are in `tests/buf_reader.rs`.

mod support;

use std::io::{self, ErrorKind};
use std::time::Duration;

use support::Rng;
use support::pool::{Mode, run_mode};
use support::records::{
    ALL, End, Shape, assert_bytes, assert_outcome, expected, outcome, text, text_ending,
};
use support::trickle::{Feed, trickled};
use uring_bufio::ReadSource;
use uring_bufio::fs::File;
use uring_bufio::io::BufReader;

/// Upper bound for one test's IO, so a hang fails instead of stalling.
const LIMIT: Duration = Duration::from_secs(30);

/// A reader on `s` for `mode` with capacity `cap` (plain; the default if
/// `None`) and maximum `max`.
fn reader<S: ReadSource>(mode: Mode, s: S, cap: Option<usize>, max: usize) -> BufReader<S> {
    let mut r = mode.reader(s, cap);
    r.set_max_record_len(max);
    r
}

/// Text fed to a socket in random chunks with random pauses, by a task or a
/// std thread, read through small and default buffers (with lines past a
/// 2000-byte maximum): every method gives what std computes from the bytes
/// sent. The read half of a split stream reads as well as the stream.
fn trickled_socket(mode: Mode) {
    let shape = Shape {
        short: 80,
        longest: 2600,
        long_every: 10,
    };
    run_mode(mode, LIMIT, async {
        let mut seed = 500;
        for feed in [Feed::Task, Feed::Thread] {
            for m in ALL {
                for (cap, max) in [(Some(64), 2000), (Some(1000), 2000), (None, 64 * 1024)] {
                    seed += 1;
                    let data = text_ending(&mut Rng::new(seed), 40_000, shape, End::AsIs, max);
                    let (socket, writer) = trickled(&data, seed, 1500, feed).await?;
                    let ctx = format!(
                        "{mode:?}, seed {seed}, {feed:?}, capacity {cap:?}, max {max}, {m:?}"
                    );
                    let got = if seed % 2 == 0 {
                        let (got, r) = outcome(reader(mode, socket, cap, max), m, seed).await?;
                        mode.assert_reader(&r);
                        got
                    } else {
                        let half = socket.into_split().0;
                        let (got, r) = outcome(reader(mode, half, cap, max), m, seed).await?;
                        mode.assert_reader(&r);
                        got
                    };
                    assert_outcome(&got, &expected(&data, max, m), &ctx);
                    writer.finish().await?;
                }
            }
        }
        Ok(())
    });
}

/// See [`trickled_socket`].
#[test]
fn trickled_socket_matches_std() {
    trickled_socket(Mode::Plain);
}

/// See [`trickled_socket`]: pooled, 64-byte pool buffers (every line spans
/// buffers).
#[test]
fn trickled_socket_matches_std_pooled() {
    trickled_socket(Mode::Pooled(64));
}

/// See [`trickled_socket`]: pooled, 4 KiB pool buffers taken whole by
/// each receive (most lines lie inside one buffer and are lent from it).
#[test]
fn trickled_socket_matches_std_pooled_whole_4k() {
    trickled_socket(Mode::PooledWhole(4096));
}

/// `read_exact` of random sizes (up to four times the capacity) on a
/// trickled socket returns the bytes sent, in order; asking for more than is
/// left is `UnexpectedEof` and leaves every remaining byte readable.
fn read_exact_random_sizes(mode: Mode) {
    run_mode(mode, LIMIT, async {
        for (seed, feed) in [(31, Feed::Task), (32, Feed::Thread)] {
            let mut rng = Rng::new(seed);
            let data = rng.bytes(200_000);
            let (socket, writer) = trickled(&data, seed, 3000, feed).await?;
            let mut r = mode.reader(socket, Some(512));
            let ctx = format!("{mode:?}, seed {seed}");
            let mut at = 0;
            loop {
                let mut dst = vec![0; rng.below(2048)];
                if at + dst.len() > data.len() {
                    let err = r.read_exact(&mut dst).await.expect_err("past the end");
                    assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{ctx}: {err}");
                    break;
                }
                r.read_exact(&mut dst).await?;
                assert_bytes(&dst, &data[at..at + dst.len()], &format!("{ctx} at {at}"));
                at += dst.len();
            }
            let mut rest = Vec::new();
            r.read_to_end(&mut rest).await?;
            assert_bytes(
                &rest,
                &data[at..],
                &format!("{ctx}: bytes after UnexpectedEof"),
            );
            mode.assert_reader(&r);
            writer.finish().await?;
        }
        Ok(())
    });
}

/// See [`read_exact_random_sizes`].
#[test]
fn read_exact_random_sizes_on_trickled_socket() {
    read_exact_random_sizes(Mode::Plain);
}

/// See [`read_exact_random_sizes`]: pooled, 256-byte pool buffers.
#[test]
fn read_exact_random_sizes_on_trickled_socket_pooled() {
    read_exact_random_sizes(Mode::Pooled(256));
}

/// See [`read_exact_random_sizes`]: pooled, 1000-byte pool buffers taken
/// whole.
#[test]
fn read_exact_random_sizes_on_trickled_socket_pooled_whole() {
    read_exact_random_sizes(Mode::PooledWhole(1000));
}

/// `fill_at_least(n)` with `n` far above the capacity returns at least `n`
/// contiguous bytes in stream order, on a trickled socket and on a file;
/// asking for more than the stream holds is `UnexpectedEof` with every
/// remaining byte still buffered and readable. (A pooled reader on a file
/// reads the ordinary way.)
fn fill_at_least_beyond(mode: Mode) {
    let dir = tempfile::tempdir().expect("tempdir");
    run_mode(mode, LIMIT, async {
        for (seed, feed) in [(41, Some(Feed::Task)), (42, Some(Feed::Thread)), (43, None)] {
            let mut rng = Rng::new(seed);
            let data = rng.bytes(60_000);
            let ctx = format!("{mode:?}, seed {seed}, {feed:?}");
            match feed {
                Some(feed) => {
                    let (socket, writer) = trickled(&data, seed, 700, feed).await?;
                    let mut r = mode.reader(socket, Some(64));
                    fill_through(&mut r, &data, &mut rng, &ctx).await?;
                    mode.assert_reader(&r);
                    writer.finish().await?;
                }
                None => {
                    let path = dir.path().join("fill");
                    std::fs::write(&path, &data)?;
                    let mut r = reader(mode, File::open(&path).await?, Some(64), 100);
                    fill_through(&mut r, &data, &mut rng, &ctx).await?;
                    assert!(!r.is_pooled(), "{ctx}: a file reader reads pooled");
                }
            }
        }
        Ok(())
    });
}

/// See [`fill_at_least_beyond`].
#[test]
fn fill_at_least_beyond_capacity() {
    fill_at_least_beyond(Mode::Plain);
}

/// See [`fill_at_least_beyond`]: pooled, 64-byte pool buffers, so one
/// `fill_at_least` joins up to 47 of them.
#[test]
fn fill_at_least_beyond_capacity_pooled() {
    fill_at_least_beyond(Mode::Pooled(64));
}

/// Walks `r` (holding `data`) with `fill_at_least` of random sizes up to
/// 3000 and random consumes, then asks for one byte more than is left.
async fn fill_through<S: ReadSource>(
    r: &mut BufReader<S>,
    data: &[u8],
    rng: &mut Rng,
    ctx: &str,
) -> io::Result<()> {
    let mut at = 0;
    loop {
        let want = 1 + rng.below(3000);
        if at + want > data.len() {
            break;
        }
        let got = r.fill_at_least(want).await?;
        assert!(
            got.len() >= want,
            "{ctx}: fill_at_least({want}) gave {} bytes",
            got.len()
        );
        assert_bytes(got, &data[at..at + got.len()], &format!("{ctx}: at {at}"));
        let n = rng.below(want + 1);
        r.consume(n);
        at += n;
    }
    let left = data.len() - at;
    let err = r
        .fill_at_least(left + 1)
        .await
        .expect_err("more than is left");
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{ctx}: {err}");
    assert_bytes(
        r.buffer(),
        &data[at..],
        &format!("{ctx}: buffered after UnexpectedEof"),
    );
    assert_eq!(
        r.fill_at_least(left).await?.len(),
        left,
        "{ctx}: exactly what is left"
    );
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).await?;
    assert_bytes(
        &rest,
        &data[at..],
        &format!("{ctx}: read after UnexpectedEof"),
    );
    Ok(())
}

/// Multi-byte UTF-8 sent in chunks of 1..7 bytes with pauses, read through
/// buffers of 1, 3, 5 bytes and the default: `read_to_string` appends
/// exactly the text sent (after what `out` held) and counts its bytes.
fn read_to_string_split_characters(mode: Mode) {
    let shape = Shape {
        short: 60,
        longest: 60,
        long_every: 1,
    };
    run_mode(mode, LIMIT, async {
        for (seed, cap, feed) in [
            (51, Some(1), Feed::Task),
            (52, Some(3), Feed::Thread),
            (53, Some(5), Feed::Task),
            (54, None, Feed::Thread),
        ] {
            let data = text(&mut Rng::new(seed), 2500, shape);
            let (socket, writer) = trickled(&data, seed, 7, feed).await?;
            let mut out = String::from("kept→");
            let mut r = reader(mode, socket, cap, 100);
            let n = r.read_to_string(&mut out).await?;
            let ctx = format!("{mode:?}, seed {seed}, capacity {cap:?}, {feed:?}");
            assert_eq!(n, data.len(), "{ctx}: count");
            assert_bytes(
                out.as_bytes(),
                &[&b"kept\xe2\x86\x92"[..], &data].concat(),
                &ctx,
            );
            mode.assert_reader(&r);
            writer.finish().await?;
        }
        Ok(())
    });
}

/// See [`read_to_string_split_characters`].
#[test]
fn read_to_string_joins_characters_split_across_chunks() {
    read_to_string_split_characters(Mode::Plain);
}

/// See [`read_to_string_split_characters`]: pooled, 64-byte pool buffers.
#[test]
fn read_to_string_joins_characters_split_across_chunks_pooled() {
    read_to_string_split_characters(Mode::Pooled(64));
}
