//! Bytes → frames: a stream sent over a Unix socket pair in chunks, cut by
//! `frames(LengthDelimitedCodec)` on a `BufReader` of a small capacity with
//! a small `set_max_frame_len`. Must never panic, must agree with the model
//! (frames byte-exact; too long, truncated: the right error, then the end)
//! and must stay within bounded memory.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::StreamExt;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::LengthDelimitedCodec;
use uring_bufio::io::BufReader;
use uring_bufio_fuzz::cutting::{CODEC_MAX, Frame, model_frames, trickled};
use uring_bufio_fuzz::{chunks, run};

/// Counts live heap bytes and their peak, to bound what one input costs.
struct Counting;

/// Live heap bytes.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Highest `LIVE` since the last reset.
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to `System` unchanged; only counters
// are updated besides.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `System` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Heap one input may take beyond what was live before it: the codec
/// reserves room for the length a header announces (up to its own
/// `max_frame_length`, 8 MiB by default), whatever `set_max_frame_len`
/// says; the rest is small.
const HEAP_BOUND: usize = CODEC_MAX + 4 * 1024 * 1024;

/// One input.
#[derive(Debug, Arbitrary)]
struct Input {
    /// The reader's capacity (`+ 1`).
    capacity: u8,
    /// `set_max_frame_len`, at least 4 (a header's length).
    max: u16,
    /// Chunk sizes the peer sends in, cycled.
    chunks: Vec<u8>,
    /// The stream.
    wire: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let max = usize::from(input.max).max(4);
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let (got, ended) = run(async {
        let (socket, writer) = trickled(&input.wire, &chunks(&input.chunks))?;
        let reader = BufReader::with_capacity(usize::from(input.capacity) + 1, socket);
        let mut frames = reader.frames(LengthDelimitedCodec::new());
        frames.set_max_frame_len(max);
        let mut got = Vec::new();
        while let Some(item) = frames.next().await {
            got.push(item.map_err(|e| e.kind()));
            assert!(
                got.len() <= input.wire.len() / 4 + 2,
                "more frames than headers"
            );
        }
        let ended = frames.next().await.is_none();
        // Read the rest, so the peer never waits for room.
        let mut rest = Vec::new();
        frames.into_parts().0.read_to_end(&mut rest).await?;
        assert!(
            input.wire.ends_with(&rest),
            "the rest is not the stream's end"
        );
        writer.await??;
        Ok((got, ended))
    });
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    assert!(peak <= HEAP_BOUND, "one input took {peak} bytes of heap");
    assert!(ended, "the stream yields after its end");
    let want = model_frames(&input.wire, max);
    let mut got = got.into_iter();
    for w in &want {
        match (w, got.next()) {
            (Frame::Item(want), Some(Ok(frame))) => {
                assert_eq!(&frame[..], &want[..]);
            }
            (Frame::TooLong | Frame::TooLongOrTruncated, Some(Err(ErrorKind::InvalidData))) => {
                    break;
                }
                (Frame::TooLongOrTruncated, Some(Err(ErrorKind::Other)) | None) => break,
            (Frame::Truncated, Some(Err(ErrorKind::Other))) => break,
            (w, g) => panic!("want {w:?}, got {g:?}; model {want:?}"),
        }
    }
    let extra: Vec<_> = got.collect();
    assert!(extra.is_empty(), "items past the model's: {extra:?}");
});
