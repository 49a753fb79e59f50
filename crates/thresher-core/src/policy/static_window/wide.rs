//! The window's two passes over every id, 16 ids per step with AVX-512 F where the CPU has it:
//! the bracket pass (`bracket.rs`: per bracket, the seen keys below it counted and those inside
//! it listed) and the split (`window.rs`: the ids inside the window to one list, the others to
//! another). Each is a handful of scalar operations per id, which the compiler does not turn
//! into vector code itself because of the appends; here the appends are register compresses
//! followed by a whole-register store (`marked::x86::append8`). The results are those of the scalar loops, which do the
//! ids past the last whole step and everything on other CPUs.
//!
//! Each function returns how many ids (from 0, a multiple of 16) it did, 0 when the CPU lacks
//! AVX-512 F.

use super::bracket::key;

/// Ids per step.
const STEP: usize = 16;

/// Whether the CPU runs the wide passes (elsewhere they do nothing and return 0).
pub(super) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        return true;
    }
    false
}

/// Bracket pass over the first ids of `scores`: for each bracket `(lo, hi)`, adds to `below`
/// the seen keys `k < lo` and appends to `bands` those with `lo ≤ k ≤ hi`, in id order.
pub(super) fn bracket_pass<const R: usize>(
    scores: &[f32],
    brackets: &[(u64, u64); R],
    below: &mut [usize; R],
    bands: &mut [Vec<u64>; R],
) -> usize {
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: the CPU has AVX-512 F (`available`).
        return unsafe { x86::bracket_pass(scores, brackets, below, bands) };
    }
    let _ = (scores, brackets, below, bands);
    0
}

/// Split of the first ids of `scores`: an id whose key `k` is seen with `k − lo < span`
/// (wrapping), or is never seen when `keep_unseen`, is appended to `fixed`; any other to `pool`
/// when there is one. Both in id order.
pub(super) fn split_pass(
    scores: &[f32],
    lo: u64,
    span: u64,
    keep_unseen: bool,
    fixed: &mut Vec<u64>,
    pool: Option<&mut Vec<u64>>,
) -> usize {
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: the CPU has AVX-512 F (`available`).
        return unsafe { x86::split_pass(scores, lo, span, keep_unseen, fixed, pool) };
    }
    let _ = (scores, lo, span, keep_unseen, fixed, pool);
    0
}

/// The scalar rule of `split_pass` for one id (the scalar loops and the tests use it).
#[inline(always)]
pub(super) fn in_fixed(scores: &[f32], id: usize, lo: u64, span: u64, keep_unseen: bool) -> bool {
    let s = scores[id];
    (!s.is_nan() & (key(s, id).wrapping_sub(lo) < span)) | (keep_unseen & s.is_nan())
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m512i, __mmask8, _mm512_add_epi64, _mm512_castps_si512, _mm512_castsi512_si256,
        _mm512_cmp_ps_mask, _mm512_cvtepu32_epi64, _mm512_extracti64x4_epi64, _mm512_loadu_ps,
        _mm512_mask_cmple_epu64_mask, _mm512_mask_cmplt_epu64_mask, _mm512_or_si512,
        _mm512_set1_epi32, _mm512_set1_epi64, _mm512_set_epi64, _mm512_slli_epi64,
        _mm512_srai_epi32, _mm512_sub_epi64, _mm512_xor_si512, _CMP_ORD_Q,
    };

    use super::STEP;
    use crate::policy::marked::x86::append8;

    /// The keys of ids `id .. id + 16` (two registers of 8) and which of them are seen.
    ///
    /// # Safety
    /// AVX-512 F; `scores` holds at least 16 values.
    #[inline(always)]
    unsafe fn keys16(scores: &[f32], id: usize) -> ([__m512i; 2], [__mmask8; 2]) {
        debug_assert!(scores.len() >= STEP);
        // SAFETY: 16 f32 read from `scores` (at least 16 long); AVX-512 F by the caller.
        unsafe {
            let x = _mm512_loadu_ps(scores.as_ptr());
            let seen = _mm512_cmp_ps_mask::<_CMP_ORD_Q>(x, x);
            // `ascending_bits`: a negative value's bits inverted, a positive value's sign set.
            let b = _mm512_castps_si512(x);
            let flip = _mm512_or_si512(_mm512_srai_epi32::<31>(b), _mm512_set1_epi32(i32::MIN));
            let asc = _mm512_xor_si512(b, flip);
            let iota = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
            let half = |bits, first: usize| {
                let high = _mm512_slli_epi64::<32>(_mm512_cvtepu32_epi64(bits));
                let ids = _mm512_add_epi64(_mm512_set1_epi64(first as i64), iota);
                _mm512_or_si512(high, ids)
            };
            let k0 = half(_mm512_castsi512_si256(asc), id);
            let k1 = half(_mm512_extracti64x4_epi64::<1>(asc), id + 8);
            ([k0, k1], [seen as u8, (seen >> 8) as u8])
        }
    }

    /// # Safety
    /// AVX-512 F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn bracket_pass<const R: usize>(
        scores: &[f32],
        brackets: &[(u64, u64); R],
        below: &mut [usize; R],
        bands: &mut [Vec<u64>; R],
    ) -> usize {
        let whole = scores.len() / STEP * STEP;
        let lo = brackets.map(|(lo, _)| _mm512_set1_epi64(lo as i64));
        let span = brackets.map(|(lo, hi)| _mm512_set1_epi64(hi.wrapping_sub(lo) as i64));
        for (step, chunk) in scores[..whole].chunks_exact(STEP).enumerate() {
            for band in bands.iter_mut() {
                band.reserve(STEP + 8);
            }
            // SAFETY: AVX-512 F (this function's feature); the chunk holds 16 scores; each band
            // has room for 16 + 8 values, more than one step appends (16) plus a store's 8.
            unsafe {
                let (keys, seen) = keys16(chunk, step * STEP);
                for h in 0..2 {
                    for b in 0..R {
                        let low = _mm512_mask_cmplt_epu64_mask(seen[h], keys[h], lo[b]);
                        below[b] += low.count_ones() as usize;
                        let off = _mm512_sub_epi64(keys[h], lo[b]);
                        let inside = _mm512_mask_cmple_epu64_mask(seen[h], off, span[b]);
                        append8(&mut bands[b], inside, keys[h]);
                    }
                }
            }
        }
        whole
    }

    /// # Safety
    /// AVX-512 F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn split_pass(
        scores: &[f32],
        lo: u64,
        span: u64,
        keep_unseen: bool,
        fixed: &mut Vec<u64>,
        mut pool: Option<&mut Vec<u64>>,
    ) -> usize {
        let whole = scores.len() / STEP * STEP;
        // Room for every id at once, plus a store's 8: no check per step.
        fixed.reserve(whole + 8);
        if let Some(p) = pool.as_deref_mut() {
            p.reserve(whole + 8);
        }
        let (lo, span) = (_mm512_set1_epi64(lo as i64), _mm512_set1_epi64(span as i64));
        let iota = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
        for (step, chunk) in scores[..whole].chunks_exact(STEP).enumerate() {
            // SAFETY: AVX-512 F (this function's feature); the chunk holds 16 scores; each
            // list was given room for every id of the pass plus 8.
            unsafe {
                let (keys, seen) = keys16(chunk, step * STEP);
                for h in 0..2 {
                    let off = _mm512_sub_epi64(keys[h], lo);
                    let window = _mm512_mask_cmplt_epu64_mask(seen[h], off, span);
                    let unseen = if keep_unseen { !seen[h] } else { 0 };
                    let keep = window | unseen;
                    let ids =
                        _mm512_add_epi64(_mm512_set1_epi64((step * STEP + 8 * h) as i64), iota);
                    append8(fixed, keep, ids);
                    if let Some(p) = pool.as_deref_mut() {
                        append8(p, !keep, ids);
                    }
                }
            }
        }
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::select::tests::AWKWARD_SCORES;
    use crate::rng::{Rng, Stream};

    /// Scores with every awkward value, at lengths around the step.
    fn cases() -> Vec<Vec<f32>> {
        let mut rng = Rng::new(5, Stream::Select, 0, 0);
        [0usize, 1, 15, 16, 17, 31, 32, 33, 1000, 4099]
            .iter()
            .map(|&n| {
                (0..n)
                    .map(|_| match rng.below(3) {
                        0 => AWKWARD_SCORES[rng.below(8) as usize],
                        _ => rng.below(40) as f32 - 20.0,
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn the_wide_passes_give_the_scalar_results() {
        for scores in cases() {
            let n = scores.len();
            // Bounds at a few keys of the scores themselves (and the extremes).
            let mut keys: Vec<u64> = (0..n).map(|id| key(scores[id], id)).collect();
            keys.sort_unstable();
            let at = |q: usize| keys.get(q * n / 4).copied().unwrap_or(u64::MAX);
            let brackets = [(at(1), at(2)), (0, u64::MAX), (at(3), at(3))];
            let (mut below, mut bands) = ([0usize; 3], [vec![], vec![], vec![]]);
            let done = bracket_pass(&scores, &brackets, &mut below, &mut bands);
            let (mut below_s, mut bands_s) = ([0usize; 3], [vec![], vec![], vec![]]);
            for (id, &s) in scores.iter().enumerate().take(done) {
                let (k, seen) = (key(s, id), !s.is_nan());
                for (b, &(lo, hi)) in brackets.iter().enumerate() {
                    below_s[b] += usize::from(seen & (k < lo));
                    if seen && k.wrapping_sub(lo) <= hi - lo {
                        bands_s[b].push(k);
                    }
                }
            }
            assert_eq!((below, bands), (below_s, bands_s), "n {n}");
            for keep_unseen in [false, true] {
                for (lo, hi) in brackets {
                    let span = hi.wrapping_sub(lo);
                    let (mut fixed, mut pool) = (vec![], vec![]);
                    let done =
                        split_pass(&scores, lo, span, keep_unseen, &mut fixed, Some(&mut pool));
                    let mut only = vec![];
                    assert_eq!(
                        split_pass(&scores, lo, span, keep_unseen, &mut only, None),
                        done
                    );
                    let want: Vec<u64> = (0..done as u64)
                        .filter(|&id| in_fixed(&scores, id as usize, lo, span, keep_unseen))
                        .collect();
                    let rest: Vec<u64> = (0..done as u64).filter(|id| !want.contains(id)).collect();
                    assert_eq!((&fixed, &pool), (&want, &rest), "n {n}");
                    assert_eq!(only, want);
                }
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                assert_eq!(
                    split_pass(&scores, 0, 1, true, &mut vec![], None),
                    n / 16 * 16
                );
            }
        }
    }
}
