//! Where a delimiter lies in 64 bytes, as a bit mask: the short-distance
//! search of [`ReadBuffer::find`](super::ReadBuffer::find).
//!
//! `memchr` costs about 75 instructions per call on a 64-byte line (its
//! dispatch and alignment set-up before the first compare); one block
//! mask costs about 20 and answers every record that ends in the block.

/// Bytes one mask covers.
pub(super) const BLOCK: usize = 64;

/// Bit `j` set when `block[j] == delim`.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(super) fn mask(block: &[u8; BLOCK], delim: u8) -> u64 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    let mut mask = 0u64;
    // SAFETY: SSE2 is part of every x86_64 target (this function exists
    // only there), so its intrinsics may run; each unaligned load reads
    // 16 bytes of `block`, which `chunks_exact(16)` hands out.
    unsafe {
        let needle = _mm_set1_epi8(delim as i8);
        for (k, chunk) in block.chunks_exact(16).enumerate() {
            let bytes = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
            let hits = _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, needle)) as u16;
            mask |= u64::from(hits) << (16 * k);
        }
    }
    mask
}

/// Bit `j` set when `block[j] == delim`.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub(super) fn mask(block: &[u8; BLOCK], delim: u8) -> u64 {
    block
        .iter()
        .enumerate()
        .fold(0, |m, (j, &b)| m | (u64::from(b == delim) << j))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_marks_every_delimiter_and_nothing_else() {
        let mut block = [b'x'; BLOCK];
        for j in [0, 15, 16, 31, 47, 48, 63] {
            block[j] = b'\n';
        }
        let want = [0, 15, 16, 31, 47, 48, 63]
            .iter()
            .fold(0u64, |m, j| m | 1 << j);
        assert_eq!(mask(&block, b'\n'), want);
        assert_eq!(mask(&block, b'x'), !want);
        assert_eq!(mask(&block, 0xFF), 0, "a byte with its top bit set");
        block[5] = 0xFF;
        assert_eq!(mask(&block, 0xFF), 1 << 5);
    }
}
