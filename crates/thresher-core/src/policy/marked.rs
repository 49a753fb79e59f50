//! The ids of a per-id byte mask, in id order: the last pass of most plans (the ids a policy
//! marked as kept, `extend_by_class`, the period cache's lists). `extend_where` does it one id
//! per step; with AVX-512 F and BW it is 64 ids per step here: one byte compare gives the step's
//! mask, and each 8 of it select ids from a register of consecutive ids by a register compress,
//! stored whole (`append8`). The ids are those `extend_where` gives, which remains the path on
//! other CPUs and for the ids past the last whole step.

/// Appends to `out`, ascending, every id whose mark (`marks[id]`) is not `excluded`.
pub(crate) fn extend_marked(out: &mut Vec<u64>, marks: &[u8], excluded: u8) {
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
    {
        // SAFETY: the CPU has AVX-512 F and BW (checked just above).
        done = unsafe { x86::extend_marked(out, marks, excluded) };
    }
    let rest = &marks[done..];
    let start = out.len();
    super::extend_where(out, rest.len(), |i| rest[i] != excluded);
    for id in &mut out[start..] {
        *id += done as u64;
    }
}

/// `extend_marked` over a mask of bools: the ids marked `true`.
pub(crate) fn extend_true(out: &mut Vec<u64>, mask: &[bool]) {
    // SAFETY: a bool is one byte holding 0 or 1 (the language guarantees its layout), so the
    // slice reads as the same number of u8, borrowed as long as `mask`.
    let bytes = unsafe { std::slice::from_raw_parts(mask.as_ptr().cast::<u8>(), mask.len()) };
    extend_marked(out, bytes, 0);
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use std::arch::x86_64::{
        __m512i, __mmask8, _mm512_add_epi64, _mm512_cmpneq_epi8_mask, _mm512_loadu_si512,
        _mm512_maskz_compress_epi64, _mm512_set1_epi64, _mm512_set1_epi8, _mm512_set_epi64,
        _mm512_storeu_si512,
    };

    /// Appends the lanes of `v` selected by `m` to `out`, which has room for 8 values past its
    /// length: the register is compressed and stored whole, and the length moves by the count.
    /// (The compress-to-memory form is microcoded and slow on Zen 4.)
    ///
    /// # Safety
    /// AVX-512 F; `out.capacity() ≥ out.len() + 8`.
    #[inline(always)]
    pub(crate) unsafe fn append8(out: &mut Vec<u64>, m: __mmask8, v: __m512i) {
        debug_assert!(out.capacity() >= out.len() + 8);
        // SAFETY: 8 u64 written at `len`, inside the capacity (the caller's room); the first
        // `count` of them are the selected lanes, so the new length covers only initialised
        // values.
        unsafe {
            let len = out.len();
            let dst = out.as_mut_ptr().add(len).cast::<__m512i>();
            _mm512_storeu_si512(dst, _mm512_maskz_compress_epi64(m, v));
            out.set_len(len + m.count_ones() as usize);
        }
    }

    /// The whole 64-id steps of `extend_marked`; returns how many ids they covered.
    ///
    /// # Safety
    /// AVX-512 F and BW.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn extend_marked(out: &mut Vec<u64>, marks: &[u8], excluded: u8) -> usize {
        let whole = marks.len() / 64 * 64;
        // Room for every id of the pass at once, plus a store's 8: no check per step.
        out.reserve(whole + 8);
        let excluded = _mm512_set1_epi8(excluded as i8);
        let iota = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
        for (step, chunk) in marks[..whole].chunks_exact(64).enumerate() {
            // SAFETY: 64 bytes read from the chunk; AVX-512 F and BW (this function's
            // features); `out` has room for every id of the pass plus 8.
            unsafe {
                let bytes = _mm512_loadu_si512(chunk.as_ptr().cast::<__m512i>());
                let kept = _mm512_cmpneq_epi8_mask(bytes, excluded);
                if kept == 0 {
                    continue;
                }
                let base = (step * 64) as i64;
                for j in 0..8 {
                    let ids = _mm512_add_epi64(_mm512_set1_epi64(base + 8 * j), iota);
                    append8(out, (kept >> (8 * j)) as u8, ids);
                }
            }
        }
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marked_ids_are_extend_wheres() {
        let mut state = 7u64;
        for n in [0usize, 1, 63, 64, 65, 127, 128, 129, 1000, 4097] {
            // Runs of one mark and isolated ones, so whole steps are empty or full too.
            let marks: Vec<u8> = (0..n)
                .map(|i| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    match (i / 200) % 3 {
                        0 => 0,
                        1 => 2,
                        _ => (state >> 60) as u8 % 4,
                    }
                })
                .collect();
            for excluded in [0u8, 2, 3] {
                let mut want = vec![5u64];
                crate::policy::extend_where(&mut want, n, |i| marks[i] != excluded);
                let mut got = vec![5u64];
                extend_marked(&mut got, &marks, excluded);
                assert_eq!(got, want, "n {n}, excluded {excluded}");
            }
            let bools: Vec<bool> = marks.iter().map(|&m| m == 2).collect();
            let mut got = Vec::new();
            extend_true(&mut got, &bools);
            let want: Vec<u64> = (0..n as u64).filter(|&i| bools[i as usize]).collect();
            assert_eq!(got, want, "n {n}");
        }
    }
}
