//! The bracket pass of `mark_top_k_scores` (ε-greedy's and UCB's top share once every id is
//! judged), 16 ids per step with AVX-512 F where the CPU has it. Per id the pass packs the key
//! (the score's order bits inverted above the id, NaN and flagged ids as −∞), marks the id when
//! the key is below the bracket and appends the key when it is inside: a handful of
//! operations, which the compiler does not turn into vector code itself because of the append.
//! Here the marks are one 16-byte OR and the appends register compresses stored whole
//! (`marked::x86::append8`). The results are the scalar loop's (`select::mark_top_k_of`), which
//! does the ids past the last whole step and everything on other CPUs.

/// Ids per step.
const STEP: usize = 16;

/// For the ids of the whole steps of `score`: sets `mark[id]` where the key is below `lo`,
/// appends the keys with `lo ≤ key ≤ hi` to `band` (in id order; it has room for every id
/// plus 8), and returns (ids done, keys below `lo`). `flagged` as `mark_top_k_scores` takes it.
/// Does nothing (returns (0, 0)) on CPUs without AVX-512 F.
pub(super) fn bracket_pass(
    score: &[f32],
    flagged: Option<(&[u8], u8)>,
    lo: u64,
    hi: u64,
    mark: &mut [bool],
    band: &mut Vec<u64>,
) -> (usize, usize) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        let whole = score.len() / STEP * STEP;
        assert!(mark.len() >= whole && flagged.is_none_or(|(s, _)| s.len() >= whole));
        assert!(band.capacity() >= band.len() + whole + 8);
        // SAFETY: the CPU has AVX-512 F (checked just above); the lengths were checked.
        return unsafe { x86::bracket_pass(&score[..whole], flagged, lo, hi, mark, band) };
    }
    let _ = (score, flagged, lo, hi, mark, band);
    (0, 0)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m128i, _mm512_add_epi64, _mm512_castps_si512, _mm512_castsi512_si256, _mm512_cmp_ps_mask,
        _mm512_cmpge_epu32_mask, _mm512_cmple_epu64_mask, _mm512_cmplt_epu64_mask,
        _mm512_cvtepi32_epi8, _mm512_cvtepu32_epi64, _mm512_cvtepu8_epi32,
        _mm512_extracti64x4_epi64, _mm512_loadu_ps, _mm512_mask_blend_ps, _mm512_maskz_mov_epi32,
        _mm512_or_si512, _mm512_set1_epi32, _mm512_set1_epi64, _mm512_set1_ps, _mm512_set_epi64,
        _mm512_slli_epi64, _mm512_srai_epi32, _mm512_xor_si512, _mm_loadu_si128, _mm_or_si128,
        _mm_storeu_si128, _CMP_UNORD_Q,
    };

    use super::STEP;
    use crate::policy::marked::x86::append8;

    /// # Safety
    /// AVX-512 F; `mark` and the streaks (when given) hold `score.len()` entries, a multiple
    /// of 16; `band` has room for `score.len() + 8` more keys.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn bracket_pass(
        score: &[f32],
        flagged: Option<(&[u8], u8)>,
        lo: u64,
        hi: u64,
        mark: &mut [bool],
        band: &mut Vec<u64>,
    ) -> (usize, usize) {
        let (lo_v, hi_v) = (_mm512_set1_epi64(lo as i64), _mm512_set1_epi64(hi as i64));
        let minus_inf = _mm512_set1_ps(f32::NEG_INFINITY);
        let window = _mm512_set1_epi32(flagged.map_or(0, |(_, w)| w as i32));
        let iota = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
        let mut below = 0usize;
        for id in (0..score.len()).step_by(STEP) {
            // SAFETY: AVX-512 F (this function's feature); 16 entries read from `score`, the
            // streaks and `mark` at `id` (a whole step inside each); `band` has room for every
            // id plus a store's 8.
            unsafe {
                let x = _mm512_loadu_ps(score.as_ptr().add(id));
                let mut low = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
                if let Some((streak, _)) = flagged {
                    let s = _mm_loadu_si128(streak.as_ptr().add(id).cast::<__m128i>());
                    low |= _mm512_cmpge_epu32_mask(_mm512_cvtepu8_epi32(s), window);
                }
                let b = _mm512_castps_si512(_mm512_mask_blend_ps(low, x, minus_inf));
                // `!ascending_bits`: a negative value's bits kept, a positive value's inverted
                // but for the sign (the sign bit cleared).
                let flip = _mm512_or_si512(_mm512_srai_epi32::<31>(b), _mm512_set1_epi32(i32::MIN));
                let desc = _mm512_xor_si512(_mm512_xor_si512(b, flip), _mm512_set1_epi32(-1));
                let mut below_mask = 0u16;
                for h in 0..2 {
                    let half = if h == 0 {
                        _mm512_castsi512_si256(desc)
                    } else {
                        _mm512_extracti64x4_epi64::<1>(desc)
                    };
                    let ids = _mm512_add_epi64(_mm512_set1_epi64((id + 8 * h) as i64), iota);
                    let key =
                        _mm512_or_si512(_mm512_slli_epi64::<32>(_mm512_cvtepu32_epi64(half)), ids);
                    let is_below = _mm512_cmplt_epu64_mask(key, lo_v);
                    let inside = !is_below & _mm512_cmple_epu64_mask(key, hi_v);
                    append8(band, inside, key);
                    below_mask |= (is_below as u16) << (8 * h);
                }
                below += below_mask.count_ones() as usize;
                // mark[id..id + 16] |= below, as 16 bytes of 0 or 1.
                let ones = _mm512_maskz_mov_epi32(below_mask, _mm512_set1_epi32(1));
                let at = mark.as_mut_ptr().add(id).cast::<__m128i>();
                _mm_storeu_si128(
                    at,
                    _mm_or_si128(_mm_loadu_si128(at), _mm512_cvtepi32_epi8(ones)),
                );
            }
        }
        (score.len(), below)
    }
}

#[cfg(test)]
mod tests {
    use super::bracket_pass;
    use crate::policy::select::tests::AWKWARD_SCORES;
    use crate::policy::{ascending_bits, mark_top_k, mark_top_k_scores};
    use crate::rng::{Rng, Stream};

    /// The pass itself against its rule, id by id, at brackets around a few of the keys (a
    /// wrong mark or band would often be undone by `mark_top_k_of`'s fallback, so the test
    /// above alone could miss it).
    #[test]
    fn the_wide_pass_marks_below_and_lists_inside_the_bracket() {
        let mut rng = Rng::new(12, Stream::Select, 0, 0);
        for n in [0usize, 15, 16, 17, 48, 1000, 4099] {
            let score: Vec<f32> = (0..n)
                .map(|_| match rng.below(4) {
                    0 => AWKWARD_SCORES[rng.below(8) as usize],
                    _ => rng.below(100) as f32 * 0.5 - 20.0,
                })
                .collect();
            let streak: Vec<u8> = (0..n).map(|_| rng.below(4) as u8).collect();
            for flagged in [None, Some((&streak[..], 2u8))] {
                let key = |id: usize| {
                    let s = match flagged {
                        Some((st, w)) if st[id] >= w => f32::NEG_INFINITY,
                        _ if score[id].is_nan() => f32::NEG_INFINITY,
                        _ => score[id],
                    };
                    ((!ascending_bits(s) as u64) << 32) | id as u64
                };
                let mut keys: Vec<u64> = (0..n).map(key).collect();
                keys.sort_unstable();
                let at = |q: usize| keys.get(q * n / 4).copied().unwrap_or(u64::MAX);
                for (lo, hi) in [(at(1), at(2)), (0, u64::MAX), (at(3), at(3))] {
                    let mut mark: Vec<bool> = (0..n).map(|i| i % 7 == 0).collect();
                    let mut band = Vec::with_capacity(n + 8);
                    let (done, below) = bracket_pass(&score, flagged, lo, hi, &mut mark, &mut band);
                    let ids = 0..done;
                    let want_below = ids.clone().filter(|&id| key(id) < lo).count();
                    let want_band: Vec<u64> = ids
                        .clone()
                        .map(key)
                        .filter(|&k| lo <= k && k <= hi)
                        .collect();
                    assert_eq!((below, &band), (want_below, &want_band), "n {n}");
                    for (id, &m) in mark.iter().enumerate() {
                        let want = id % 7 == 0 || (id < done && key(id) < lo);
                        assert_eq!(m, want, "n {n}, id {id}");
                    }
                    #[cfg(target_arch = "x86_64")]
                    if std::arch::is_x86_feature_detected!("avx512f") {
                        assert_eq!(done, n / 16 * 16);
                    }
                }
            }
        }
    }

    /// The marks `mark_top_k` gives over the listed ids 0..n (its scalar pass) against
    /// `mark_top_k_scores`'s (the wide pass where the CPU has it), at lengths around the step
    /// and the size where the bracket is sampled, with and without flagged ids, at several k.
    #[test]
    fn the_wide_pass_marks_the_scalar_top() {
        let mut rng = Rng::new(11, Stream::Select, 0, 0);
        for n in [0usize, 1, 15, 16, 17, 33, 1000, 65_536, 65_553, 100_003] {
            let score: Vec<f32> = (0..n)
                .map(|_| match rng.below(5) {
                    0 => AWKWARD_SCORES[rng.below(8) as usize],
                    // Many ties, so the ids break them.
                    1 => 1.5,
                    _ => rng.below(10_000) as f32 * 0.01 - 20.0,
                })
                .collect();
            let streak: Vec<u8> = (0..n).map(|_| rng.below(4) as u8).collect();
            let ids: Vec<u64> = (0..n as u64).collect();
            for k in [0, 1, n / 3, n * 7 / 10, n.saturating_sub(1), n] {
                for flagged in [None, Some((&streak[..], 2u8))] {
                    let key = |id: u64| match flagged {
                        Some((s, w)) if s[id as usize] >= w => f32::NEG_INFINITY,
                        _ => score[id as usize],
                    };
                    let (mut want, mut band) = (vec![false; n], Vec::new());
                    mark_top_k(&ids, k, key, &mut want, &mut band);
                    let mut got = vec![false; n];
                    mark_top_k_scores(n, k, &score, flagged, &mut got, &mut band);
                    assert!(got == want, "n {n}, k {k}, flagged {}", flagged.is_some());
                    assert_eq!(got.iter().filter(|&&m| m).count(), k.min(n));
                }
            }
        }
    }
}
