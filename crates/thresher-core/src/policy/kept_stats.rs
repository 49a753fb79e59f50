//! The last pass of ε-greedy's and UCB's plans: the kept ids of the mask (ascending) with their
//! weights, and the epoch's reported score mean and spread over the seen ids, in one pass over
//! the ids. On a large book the pass moves more bytes than any other of the plan (every id's
//! mark, count and score read, 12 bytes written per kept id), so it runs 16 ids per step with
//! AVX-512 F where the CPU has it: the appends are register compresses stored whole (as in
//! `marked`), the sums masked vector additions. The scalar loop does the ids past the last
//! whole step and everything on other CPUs, with the same results to the bit (tested).
//!
//! The sums are `lane_sums`' 16 interleaved lanes, id `i` in lane `i % 16`.

use super::lane_sums::{LaneSums, LANES};
use super::Selection;

/// Appends the ids `kept` marks to `out.ids`, ascending, and to `out.weights` for each
/// `weight` where `heavy` marks it, else 1 (`heavy` empty: every weight 1). Returns the mean
/// and population standard deviation of `values[id]` over the ids with `counts[id] > 0`
/// (NaN for none). `heavy`, `counts` and `values` hold at least `kept.len()` entries.
pub(crate) fn extend_kept_and_stats(
    kept: &[bool],
    heavy: &[bool],
    weight: f32,
    counts: &[u32],
    values: &[f32],
    out: &mut Selection,
) -> (f64, f64) {
    let n = kept.len();
    let heavy = if heavy.is_empty() { heavy } else { &heavy[..n] };
    let (counts, values) = (&counts[..n], &values[..n]);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512 F (checked just above); every slice holds n entries.
        let (done, mut sums) =
            unsafe { x86::whole_steps(kept, heavy, weight, counts, values, out) };
        scalar(kept, heavy, weight, counts, values, done, out, &mut sums);
        return sums.mean_std();
    }
    let mut sums = LaneSums::new();
    scalar(kept, heavy, weight, counts, values, 0, out, &mut sums);
    sums.mean_std()
}

/// The pass over ids `from..kept.len()`, one id per step: the whole pass on CPUs without
/// AVX-512 F. Branch-free, as the loop it replaced: kept ids and seen ids come mixed at random,
/// so a branch on either would be mispredicted often. Every id's slot is written and the
/// lists' lengths advance only over kept ids; an unseen id adds +0.0, which leaves a lane's sum
/// as the wide pass's masked add does (a sum that starts at +0.0 is never −0.0).
#[allow(clippy::too_many_arguments)]
fn scalar(
    kept: &[bool],
    heavy: &[bool],
    weight: f32,
    counts: &[u32],
    values: &[f32],
    from: usize,
    out: &mut Selection,
    sums: &mut LaneSums,
) {
    let n = kept.len();
    let rest = n - from.min(n);
    let (ids, weights) = (&mut out.ids, &mut out.weights);
    ids.reserve(rest);
    weights.reserve(rest);
    let start = ids.len();
    let spare = &mut ids.spare_capacity_mut()[..rest];
    let spare_w = &mut weights.spare_capacity_mut()[..rest];
    let by_heavy = [1.0, weight];
    let mut k = 0;
    for id in from..n {
        // k ≤ id − from < rest: every slot below the final k is written before k passes it.
        spare[k].write(id as u64);
        // Indexed by the mask, not branched on: the heavy ids are a random draw.
        spare_w[k].write(by_heavy[usize::from(!heavy.is_empty() && heavy[id])]);
        k += usize::from(kept[id]);
        sums.add(id % LANES, counts[id] > 0, values[id]);
    }
    // SAFETY: slots start..start + k of both were initialised above, and their capacities
    // hold start + rest ≥ start + k elements.
    unsafe {
        ids.set_len(start + k);
        weights.set_len(start + k);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m128i, __m512, __m512i, __mmask16, _mm512_add_epi64, _mm512_cvtepu8_epi32,
        _mm512_loadu_ps, _mm512_loadu_si512, _mm512_mask_blend_ps, _mm512_maskz_compress_ps,
        _mm512_set1_epi64, _mm512_set1_ps, _mm512_set_epi64, _mm512_storeu_ps,
        _mm512_test_epi32_mask, _mm_loadu_si128,
    };

    use crate::policy::lane_sums::x86::Wide;
    use crate::policy::lane_sums::{LaneSums, LANES};
    use crate::policy::marked::x86::append8;
    use crate::policy::Selection;

    /// Which of 16 bools (bytes 0 or 1) are true.
    ///
    /// # Safety
    /// AVX-512 F; `at` holds at least 16 bools.
    #[inline(always)]
    unsafe fn mask16(at: &[bool]) -> __mmask16 {
        debug_assert!(at.len() >= 16);
        // SAFETY: 16 bytes read from `at`; AVX-512 F by the caller.
        unsafe {
            let bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128(at.as_ptr().cast::<__m128i>()));
            _mm512_test_epi32_mask(bytes, bytes)
        }
    }

    /// The whole 16-id steps of `extend_kept_and_stats`; returns how many ids they covered
    /// and the sums so far.
    ///
    /// # Safety
    /// AVX-512 F; `counts` and `values` hold `kept.len()` entries, `heavy` as many or none.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn whole_steps(
        kept: &[bool],
        heavy: &[bool],
        weight: f32,
        counts: &[u32],
        values: &[f32],
        out: &mut Selection,
    ) -> (usize, LaneSums) {
        let whole = kept.len() / LANES * LANES;
        debug_assert!(counts.len() >= whole && values.len() >= whole);
        debug_assert!(heavy.is_empty() || heavy.len() >= whole);
        // Room for every id of the pass at once, plus a whole store past the last: no check
        // per step.
        out.ids.reserve(whole + 8);
        out.weights.reserve(whole + LANES);
        let iota = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
        let (one, heavy_weight) = (_mm512_set1_ps(1.0), _mm512_set1_ps(weight));
        // SAFETY: AVX-512 F (this function's feature).
        let mut sums = unsafe { Wide::new() };
        for id in (0..whole).step_by(LANES) {
            // SAFETY: AVX-512 F (this function's feature); 16 entries read from each slice at
            // `id` (< whole ≤ their lengths); the lists have room for every id plus a store.
            unsafe {
                let k = mask16(&kept[id..]);
                if k != 0 {
                    for h in 0..2 {
                        let ids = _mm512_add_epi64(_mm512_set1_epi64((id + 8 * h) as i64), iota);
                        append8(&mut out.ids, (k >> (8 * h)) as u8, ids);
                    }
                    let w: __m512 = if heavy.is_empty() {
                        one
                    } else {
                        _mm512_mask_blend_ps(mask16(&heavy[id..]), one, heavy_weight)
                    };
                    let len = out.weights.len();
                    _mm512_storeu_ps(
                        out.weights.as_mut_ptr().add(len),
                        _mm512_maskz_compress_ps(k, w),
                    );
                    out.weights.set_len(len + k.count_ones() as usize);
                }
                let c = _mm512_loadu_si512(counts.as_ptr().add(id).cast::<__m512i>());
                let seen = _mm512_test_epi32_mask(c, c);
                sums.add16(seen, _mm512_loadu_ps(values.as_ptr().add(id)));
            }
        }
        // SAFETY: AVX-512 F (this function's feature).
        (whole, unsafe { sums.into_lanes() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::select::tests::AWKWARD_SCORES;
    use crate::rng::{Rng, Stream};

    /// The scalar pass over every id (the reference for the wide steps).
    fn scalar_only(
        kept: &[bool],
        heavy: &[bool],
        weight: f32,
        counts: &[u32],
        values: &[f32],
    ) -> (Selection, (f64, f64)) {
        let mut out = Selection::default();
        let mut sums = LaneSums::new();
        scalar(kept, heavy, weight, counts, values, 0, &mut out, &mut sums);
        (out, sums.mean_std())
    }

    #[test]
    fn the_pass_gives_the_scalar_ids_weights_and_figures_to_the_bit() {
        let mut rng = Rng::new(9, Stream::Select, 0, 0);
        for n in [0usize, 1, 15, 16, 17, 31, 32, 33, 1000, 4099] {
            let kept: Vec<bool> = (0..n).map(|i| i % 97 < 40 || rng.below(3) == 0).collect();
            let heavy: Vec<bool> = (0..n).map(|_| rng.below(4) == 0).collect();
            let counts: Vec<u32> = (0..n).map(|_| rng.below(3) as u32).collect();
            // Finite values (the sums then compare to the bit), and with every awkward value
            // (the sums are then mostly NaN, whose sign and payload Rust leaves unspecified:
            // compared as NaN).
            let finite: Vec<f32> = (0..n)
                .map(|_| rng.below(1000) as f32 * 0.37 - 90.0)
                .collect();
            let awkward: Vec<f32> = (0..n)
                .map(|i| match rng.below(4) {
                    0 => AWKWARD_SCORES[rng.below(8) as usize],
                    _ => finite[i],
                })
                .collect();
            let same = |a: f64, b: f64| (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits();
            for (heavy, values) in [
                (&heavy[..], &finite),
                (&[], &finite),
                (&heavy[..], &awkward),
            ] {
                let mut got = Selection::default();
                got.ids.push(7);
                got.weights.push(0.5);
                let stats = extend_kept_and_stats(&kept, heavy, 2.5, &counts, values, &mut got);
                let (want, want_stats) = scalar_only(&kept, heavy, 2.5, &counts, values);
                assert_eq!(got.ids[1..], want.ids[..], "n {n}");
                assert_eq!((got.ids[0], got.weights[0]), (7, 0.5));
                let bits = |w: &[f32]| w.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got.weights[1..]), bits(&want.weights), "n {n}");
                assert!(
                    same(stats.0, want_stats.0),
                    "n {n}: {stats:?} {want_stats:?}"
                );
                assert!(
                    same(stats.1, want_stats.1),
                    "n {n}: {stats:?} {want_stats:?}"
                );
                if std::ptr::eq(values, &finite) && counts.iter().any(|&c| c > 0) {
                    assert!(stats.0.is_finite() && stats.1.is_finite(), "n {n}");
                }
                // The ids are the marked ones, each weighed by its heavy mark.
                let marked: Vec<u64> = (0..n as u64).filter(|&i| kept[i as usize]).collect();
                assert_eq!(want.ids, marked);
                for (&id, &w) in want.ids.iter().zip(&want.weights) {
                    let heavy_id = heavy.get(id as usize).copied().unwrap_or(false);
                    assert_eq!(w, if heavy_id { 2.5 } else { 1.0 });
                }
            }
        }
    }

    #[test]
    fn the_figures_are_mean_std_of_the_seen_values() {
        let values: Vec<f32> = (0..1003).map(|i| ((i * 37) % 101) as f32 * 0.25).collect();
        let counts: Vec<u32> = (0..1003).map(|i| (i % 5 != 0) as u32).collect();
        let kept = vec![false; 1003];
        let mut out = Selection::default();
        let (m, s) = extend_kept_and_stats(&kept, &[], 1.0, &counts, &values, &mut out);
        let (wm, ws) =
            crate::policy::mean_std((0..1003).filter(|&i| counts[i] > 0).map(|i| values[i]));
        assert!(
            (m - wm).abs() < 1e-9 && (s - ws).abs() < 1e-9,
            "{m} {wm} {s} {ws}"
        );
        assert!(out.ids.is_empty() && out.weights.is_empty());
        let none = extend_kept_and_stats(&kept, &[], 1.0, &[0; 1003], &values, &mut out);
        assert!(none.0.is_nan() && none.1.is_nan());
    }
}
