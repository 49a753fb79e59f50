//! The reported score mean and spread of a static policy's plan (`mean_std_finite`), and at
//! the epoch that fixes its subset the noise guard in the same pass (`stats_and_guard`): one
//! read of N scores instead of two. On a large book the pass is a few ns an id when its f64
//! sums are scalar, so it runs 16 ids per step with AVX-512 F where the CPU has it (the sums
//! masked vector additions, the guard a masked store); the scalar loop does the ids past the
//! last whole step and everything on other CPUs, with the same results to the bit (tested).
//! The sums are `lane_sums`' 16 interleaved lanes.

use super::lane_sums::{LaneSums, LANES};

/// Mean and population standard deviation of the finite values of `values` (NaN and ±∞ left
/// out); NaN for none.
pub(crate) fn mean_std_finite(values: &[f32]) -> (f64, f64) {
    // SAFETY: one slice's pointer and length; without a guard nothing is stored through it.
    let (done, mut sums) = unsafe { wide_steps(values.as_ptr().cast_mut(), values.len(), None) };
    for (i, &v) in values.iter().enumerate().skip(done) {
        sums.add(i % LANES, v.is_finite(), v);
    }
    sums.mean_std()
}

/// Mean and population standard deviation of `values[i]` over the ids with `counts[i] > 0`
/// and a finite value (InfoBatch's S: seen, with a finite loss); NaN for none.
pub(crate) fn mean_std_seen_finite(counts: &[u32], values: &[f32]) -> (f64, f64) {
    let len = counts.len().min(values.len());
    let (counts, values) = (&counts[..len], &values[..len]);
    #[allow(unused_mut)]
    let (mut done, mut sums) = (0, LaneSums::new());
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512 F (checked just above); two slices of one length.
        (done, sums) = unsafe { x86::seen_steps(counts, values) };
    }
    for (i, (&c, &v)) in counts.iter().zip(values).enumerate().skip(done) {
        sums.add(i % LANES, (c > 0) & v.is_finite(), v);
    }
    sums.mean_std()
}

/// `mean_std_finite` of `scores`, and in the same pass the noise guard: each seen score (not
/// NaN) whose id has a wrong streak of at least `window` becomes −∞, so it ranks below every
/// other seen sample. The figures are of the scores before the guard. `streaks` is the book's
/// `wrong_streak`, one per id; a book without streaks has an empty one, and then nothing is
/// flagged.
pub(crate) fn stats_and_guard(scores: &mut [f32], streaks: &[u8], window: u8) -> (f64, f64) {
    if streaks.len() != scores.len() {
        return mean_std_finite(scores);
    }
    let guard = Some((streaks, window));
    // SAFETY: one mutable slice's pointer and length, and a streak per score.
    let (done, mut sums) = unsafe { wide_steps(scores.as_mut_ptr(), scores.len(), guard) };
    for (i, (s, &streak)) in scores.iter_mut().zip(streaks).enumerate().skip(done) {
        sums.add(i % LANES, s.is_finite(), *s);
        if !s.is_nan() && streak >= window {
            *s = f32::NEG_INFINITY;
        }
    }
    sums.mean_std()
}

/// The whole 16-id steps over the `len` f32s at `ptr` where the CPU has AVX-512 F (none
/// elsewhere): how many ids they covered, and the sums so far. With `guard` (streaks and the
/// window) the steps also guard the values in place.
///
/// # Safety
/// `ptr` points at `len` readable f32s, writable (from a `&mut`) when `guard` is Some, whose
/// streaks then hold at least `len` entries.
unsafe fn wide_steps(ptr: *mut f32, len: usize, guard: Option<(&[u8], u8)>) -> (usize, LaneSums) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512 F (checked just above); the rest by the caller.
        return unsafe { x86::steps(ptr, len, guard) };
    }
    let _ = (ptr, len, guard);
    (0, LaneSums::new())
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use crate::policy::lane_sums::x86::Wide;
    use crate::policy::lane_sums::{LaneSums, LANES};

    /// The whole 16-id steps over the `len` f32s at `ptr`, guarded where `guard` is Some.
    ///
    /// # Safety
    /// AVX-512 F; `ptr` points at `len` f32s, writable where `guard` is Some, whose streaks
    /// hold `len` entries.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn steps(
        ptr: *mut f32,
        len: usize,
        guard: Option<(&[u8], u8)>,
    ) -> (usize, LaneSums) {
        let whole = len / LANES * LANES;
        let abs_mask = _mm512_set1_epi32(0x7fff_ffff);
        let inf_bits = _mm512_set1_epi32(0x7f80_0000);
        let minus_inf = _mm512_set1_ps(f32::NEG_INFINITY);
        let window = _mm512_set1_epi32(guard.map_or(0, |(_, w)| i32::from(w)));
        // SAFETY: AVX-512 F (this function's feature).
        let mut sums = unsafe { Wide::new() };
        for id in (0..whole).step_by(LANES) {
            // SAFETY: AVX-512 F; 16 f32s (and 16 streaks) read at `id` (< whole ≤ len); the
            // store only where `guard` is Some (then writable).
            unsafe {
                let v = _mm512_loadu_ps(ptr.add(id));
                let abs = _mm512_and_si512(_mm512_castps_si512(v), abs_mask);
                sums.add16(_mm512_cmplt_epu32_mask(abs, inf_bits), v);
                if let Some((streaks, _)) = guard {
                    let seen = _mm512_cmple_epu32_mask(abs, inf_bits);
                    let st = _mm512_cvtepu8_epi32(_mm_loadu_si128(
                        streaks.as_ptr().add(id).cast::<__m128i>(),
                    ));
                    let flagged = seen & _mm512_cmpge_epu32_mask(st, window);
                    _mm512_mask_storeu_ps(ptr.add(id), flagged, minus_inf);
                }
            }
        }
        // SAFETY: AVX-512 F.
        (whole, unsafe { sums.into_lanes() })
    }

    /// The whole 16-id steps of `mean_std_seen_finite`.
    ///
    /// # Safety
    /// AVX-512 F; `counts` and `values` of one length.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn seen_steps(counts: &[u32], values: &[f32]) -> (usize, LaneSums) {
        debug_assert_eq!(counts.len(), values.len());
        let whole = values.len() / LANES * LANES;
        let abs_mask = _mm512_set1_epi32(0x7fff_ffff);
        let inf_bits = _mm512_set1_epi32(0x7f80_0000);
        // SAFETY: AVX-512 F (this function's feature).
        let mut sums = unsafe { Wide::new() };
        for id in (0..whole).step_by(LANES) {
            // SAFETY: AVX-512 F; 16 u32 and 16 f32 read at `id` (< whole ≤ both lengths).
            unsafe {
                let v = _mm512_loadu_ps(values.as_ptr().add(id));
                let c = _mm512_loadu_si512(counts.as_ptr().add(id).cast::<__m512i>());
                let abs = _mm512_and_si512(_mm512_castps_si512(v), abs_mask);
                let on = _mm512_cmplt_epu32_mask(abs, inf_bits) & _mm512_test_epi32_mask(c, c);
                sums.add16(on, v);
            }
        }
        // SAFETY: AVX-512 F.
        (whole, unsafe { sums.into_lanes() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..len)
            .map(|i| ((i * 37) % 101) as f32 * 0.25 - 3.0 + (i as f32).sqrt() * 1e-3)
            .collect();
        for (i, x) in v.iter_mut().enumerate() {
            match i % 23 {
                5 => *x = f32::NAN,
                11 => *x = f32::INFINITY,
                17 => *x = f32::NEG_INFINITY,
                19 => *x = -0.0,
                _ => {}
            }
        }
        v
    }

    #[test]
    fn seen_finite_wide_steps_equal_the_scalar_pass_to_the_bit() {
        for len in [0, 1, 15, 16, 17, 1003] {
            let v = values(len);
            let counts: Vec<u32> = (0..len)
                .map(|i| (i % 7 != 3) as u32 * (i as u32 % 4))
                .collect();
            let mut sums = LaneSums::new();
            for i in 0..len {
                sums.add(i % LANES, counts[i] > 0 && v[i].is_finite(), v[i]);
            }
            let (want, got) = (sums.mean_std(), mean_std_seen_finite(&counts, &v));
            assert_eq!(
                (got.0.to_bits(), got.1.to_bits()),
                (want.0.to_bits(), want.1.to_bits()),
                "len {len}"
            );
            // Only seen, finite values count: the same as `mean_std` over them, to rounding.
            let (m, _) = crate::policy::mean_std(
                (0..len)
                    .filter(|&i| counts[i] > 0 && v[i].is_finite())
                    .map(|i| v[i]),
            );
            assert!(m.is_nan() && got.0.is_nan() || (m - got.0).abs() <= 1e-12 * m.abs().max(1.0));
        }
    }

    /// The pass one id per step, lane `i % 16`, the guard in a second loop: what the wide steps
    /// must give to the bit.
    fn reference(v: &[f32], streaks: &[u8], window: u8) -> ((f64, f64), Vec<f32>) {
        let mut sums = LaneSums::new();
        for (i, &x) in v.iter().enumerate() {
            sums.add(i % LANES, x.is_finite(), x);
        }
        let guarded = v
            .iter()
            .zip(streaks)
            .map(|(&x, &s)| {
                if !x.is_nan() && s >= window {
                    f32::NEG_INFINITY
                } else {
                    x
                }
            })
            .collect();
        (sums.mean_std(), guarded)
    }

    fn same(a: (f64, f64), b: (f64, f64)) -> bool {
        let eq = |x: f64, y: f64| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan());
        eq(a.0, b.0) && eq(a.1, b.1)
    }

    #[test]
    fn the_passes_agree_with_the_reference_and_with_mean_std() {
        let all = values(1003);
        let streaks: Vec<u8> = (0..1003).map(|i| (i % 5) as u8).collect();
        for len in [0, 1, 15, 16, 17, 40, 1003] {
            let (v, st) = (&all[..len], &streaks[..len]);
            let (want, guarded) = reference(v, st, 2);
            assert!(same(mean_std_finite(v), want), "{len}");
            let mut g = v.to_vec();
            assert!(same(stats_and_guard(&mut g, st, 2), want), "{len}");
            let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&g), bits(&guarded), "{len}");
            // Without streaks nothing is flagged.
            let mut g = v.to_vec();
            assert!(same(stats_and_guard(&mut g, &[], 2), want), "{len}");
            assert_eq!(bits(&g), bits(v), "{len}");
            // The figures are those of mean_std over the finite values, up to rounding.
            let (m, s) = super::super::mean_std(v.iter().copied().filter(|x| x.is_finite()));
            let (lm, ls) = want;
            if len == 0 {
                assert!(m.is_nan() && lm.is_nan() && s.is_nan() && ls.is_nan());
            } else {
                assert!((m - lm).abs() < 1e-9 && (s - ls).abs() < 1e-9, "{len}");
            }
        }
    }
}
