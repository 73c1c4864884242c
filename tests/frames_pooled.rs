//! Frames over pooled readers, where the pool's bookkeeping shows what
//! happened to the memory: a frame that lies inside one pool buffer leaves
//! without a copy and keeps that buffer's allocation when the buffer goes
//! back to the pool (`PoolStats::replaced`), and no later receive writes
//! into it. Runs on io_uring and, with `URING_BUFIO_DRIVER=epoll`, on epoll.
//! The frame tests of both modes are in `tests/frames.rs`.

mod support;

use std::io;
use std::net::Shutdown;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::StreamExt;
use support::Rng;
use support::pool::{Mode, assert_pool_settled, pool_supported};
use tokio_util::codec::LengthDelimitedCodec;
use uring_bufio::io::BufReader;
use uring_bufio::net::UnixStream;
use uring_bufio::time::timeout;
use uring_bufio::{PoolStats, Runtime};

/// Upper bound for one test's IO, so a hang fails instead of stalling.
const LIMIT: Duration = Duration::from_secs(20);

/// Pool buffers of this many bytes, taken whole by each receive.
const SIZE: usize = 4096;

/// `payloads` as `LengthDelimitedCodec` frames.
fn encode(payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut wire = Vec::new();
    for p in payloads {
        wire.extend_from_slice(&u32::try_from(p.len()).expect("small").to_be_bytes());
        wire.extend_from_slice(p);
    }
    wire
}

/// The pool's counters.
fn stats(rt: &Runtime) -> PoolStats {
    rt.pool_stats()
        .expect("a pooled reader read: the pool exists")
}

/// Sends `payloads` as frames in one write (less than one pool buffer, so
/// one receive takes them all) and reads them back through a pooled
/// reader: each frame starts 4 header bytes after the previous one ends,
/// so all lie in the pool buffer the receive filled. With `keep`, the
/// frames are held until the reader reached the end (and gave the drained
/// buffer back); else each is dropped at once. Returns the frames kept.
async fn frames_of_one_buffer(payloads: &[Vec<u8>], keep: bool) -> io::Result<Vec<BytesMut>> {
    let wire = encode(payloads);
    assert!(wire.len() < SIZE, "the frames fit one pool buffer");
    let (a, b) = UnixStream::pair()?;
    a.write_all(wire).await.0?;
    a.shutdown(Shutdown::Write).await?;
    let mut frames = BufReader::pooled(b).frames(LengthDelimitedCodec::new());
    let mut kept: Vec<BytesMut> = Vec::new();
    let mut end_of_last = None;
    for (i, p) in payloads.iter().enumerate() {
        let frame = frames.next().await.expect("a frame")?;
        assert_eq!(&frame[..], &p[..], "frame {i}");
        if let Some(end) = end_of_last {
            assert_eq!(frame.as_ptr() as usize, end + 4, "frame {i} was copied");
        }
        end_of_last = Some(frame.as_ptr() as usize + frame.len());
        if keep {
            kept.push(frame);
        }
    }
    assert!(frames.get_ref().is_pooled(), "the reader reads pooled");
    assert!(frames.next().await.is_none(), "frames after the last");
    Ok(kept)
}

/// Frames inside one pool buffer, held while the reader drains it: the
/// buffer goes back to the pool, but its allocation stays with the frames
/// and a fresh one takes its id (`replaced` grows by exactly one). Frames
/// dropped before the buffer goes back leave the allocation to the pool
/// (`replaced` unchanged). Then 64 KiB more through pooled readers (so
/// every pool buffer is written again) leave the held frames unchanged, and
/// every buffer comes back.
#[test]
fn frame_inside_one_pool_buffer_keeps_its_allocation() {
    let rt = Mode::PooledWhole(SIZE).runtime();
    if !pool_supported(&rt) {
        eprintln!("skipped: io_uring here has no provided buffer rings");
        return;
    }
    let mut rng = Rng::new(840);
    let payloads: Vec<Vec<u8>> = [1, 100, 7, 900, 0, 33]
        .into_iter()
        .map(|n| rng.bytes(n))
        .collect();
    let body = async {
        let kept = frames_of_one_buffer(&payloads, true).await?;
        let after_kept = stats(&rt);
        assert_eq!(after_kept.replaced, 1, "kept frames: {after_kept:?}");
        frames_of_one_buffer(&payloads, false).await?;
        let after_dropped = stats(&rt);
        assert_eq!(
            after_dropped.replaced, 1,
            "dropped frames: {after_dropped:?}"
        );

        let (a, b) = UnixStream::pair()?;
        let noise = vec![0xEE; 64 * 1024];
        let writer = uring_bufio::spawn(async move {
            a.write_all(noise).await.0?;
            a.shutdown(Shutdown::Write).await
        });
        let mut r = BufReader::pooled(b);
        let mut got = Vec::new();
        r.read_to_end(&mut got).await?;
        assert!(got.len() == 64 * 1024 && got.iter().all(|&x| x == 0xEE));
        writer.await??;
        for (i, (frame, p)) in kept.iter().zip(&payloads).enumerate() {
            assert_eq!(&frame[..], &p[..], "frame {i} after the pool reused its id");
        }
        Ok::<_, io::Error>(())
    };
    rt.block_on(async {
        timeout(LIMIT, body)
            .await
            .expect("no result within the limit (hang)")
            .expect("test failed");
        let stats = assert_pool_settled(&rt).await;
        eprintln!("all buffers back: {stats:?}");
    });
}
