//! The reported score mean and spread of a static policy's plan (`mean_std_finite`), and at
//! the epoch that fixes its subset the noise guard in the same pass (`stats_and_guard`): one
//! read of N scores instead of two. On a large book the pass is a few ns an id when its f64
//! sums are scalar, so it runs 16 ids per step with AVX-512 F where the CPU has it (the sums
//! masked vector additions, the guard a masked store); the scalar loop does the ids past the
//! last whole step and everything on other CPUs, with the same results to the bit (tested).
//!
//! The sums run in 16 interleaved lanes, id `i` in lane `i % 16`, added together in lane order
//! at the end: one chain of f64 additions would hold the pass to an addition's latency per id.
//! The figures are only reported, and may differ in their last bits from `mean_std`'s sums in
//! id order.

use super::mean_std_of;

/// Lanes of the sums (and ids per wide step).
const LANES: usize = 16;

/// The pass's running sums: the count of finite values, and their sum and sum of squares per
/// lane.
struct Sums {
    n: u64,
    sum: [f64; LANES],
    sq: [f64; LANES],
}

impl Sums {
    fn new() -> Sums {
        Sums {
            n: 0,
            sum: [0.0; LANES],
            sq: [0.0; LANES],
        }
    }

    /// Adds `v` to lane `l` when it is finite.
    #[inline(always)]
    fn add(&mut self, l: usize, v: f32) {
        if v.is_finite() {
            let x = v as f64;
            self.n += 1;
            self.sum[l] += x;
            self.sq[l] += x * x;
        }
    }

    fn mean_std(&self) -> (f64, f64) {
        mean_std_of(self.n as usize, self.sum.iter().sum(), self.sq.iter().sum())
    }
}

/// Mean and population standard deviation of the finite values of `values` (NaN and ±∞ left
/// out); NaN for none.
pub(crate) fn mean_std_finite(values: &[f32]) -> (f64, f64) {
    let mut sums = Sums::new();
    #[allow(unused_mut)] // only the x86 pass sets it
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512 F (checked just above).
        done = unsafe { x86::whole_steps(values, &mut sums) };
    }
    for (i, &v) in values.iter().enumerate().skip(done) {
        sums.add(i % LANES, v);
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
    let mut sums = Sums::new();
    #[allow(unused_mut)] // only the x86 pass sets it
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512 F (checked just above); `streaks` holds one entry per
        // score.
        done = unsafe { x86::whole_steps_mut(scores, Some((streaks, window)), &mut sums) };
    }
    for (i, (s, &streak)) in scores.iter_mut().zip(streaks).enumerate().skip(done) {
        sums.add(i % LANES, *s);
        if !s.is_nan() && streak >= window {
            *s = f32::NEG_INFINITY;
        }
    }
    sums.mean_std()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Sums, LANES};

    /// The whole 16-id steps over `values` (read only); returns how many ids they covered.
    ///
    /// # Safety
    /// AVX-512 F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn whole_steps(values: &[f32], sums: &mut Sums) -> usize {
        // SAFETY: AVX-512 F by the caller; without a guard nothing is stored through the
        // pointer.
        unsafe { steps(values.as_ptr().cast_mut(), values.len(), None, sums) }
    }

    /// The whole 16-id steps over `scores` with the noise guard (`Some((streaks, window))`,
    /// `streaks` as long as `scores`); returns how many ids they covered.
    ///
    /// # Safety
    /// AVX-512 F; `streaks` holds `scores.len()` entries.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn whole_steps_mut(
        scores: &mut [f32],
        guard: Option<(&[u8], u8)>,
        sums: &mut Sums,
    ) -> usize {
        // SAFETY: AVX-512 F and the streaks' length by the caller.
        unsafe { steps(scores.as_mut_ptr(), scores.len(), guard, sums) }
    }

    /// # Safety
    /// AVX-512 F; `ptr` points at `len` f32s, writable where `guard` is Some, whose streaks
    /// hold `len` entries.
    #[inline(always)]
    unsafe fn steps(
        ptr: *mut f32,
        len: usize,
        guard: Option<(&[u8], u8)>,
        sums: &mut Sums,
    ) -> usize {
        let whole = len / LANES * LANES;
        let abs_mask = _mm512_set1_epi32(0x7fff_ffff);
        let inf_bits = _mm512_set1_epi32(0x7f80_0000);
        let minus_inf = _mm512_set1_ps(f32::NEG_INFINITY);
        let window = _mm512_set1_epi32(guard.map_or(0, |(_, w)| i32::from(w)));
        let mut sum = [_mm512_setzero_pd(); 2];
        let mut sq = [_mm512_setzero_pd(); 2];
        let mut n = 0u64;
        for id in (0..whole).step_by(LANES) {
            // SAFETY: AVX-512 F (the caller's feature); 16 f32s (and 16 streaks) read at `id`
            // (< whole ≤ len); the store only where `guard` is Some (then writable).
            unsafe {
                let v = _mm512_loadu_ps(ptr.add(id));
                let abs = _mm512_and_si512(_mm512_castps_si512(v), abs_mask);
                let finite = _mm512_cmplt_epu32_mask(abs, inf_bits);
                n += u64::from(finite.count_ones());
                let low = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
                let high = _mm512_cvtps_pd(_mm256_castsi256_ps(_mm512_extracti64x4_epi64::<1>(
                    _mm512_castps_si512(v),
                )));
                for (h, x) in [low, high].into_iter().enumerate() {
                    let m = (finite >> (8 * h)) as u8;
                    sum[h] = _mm512_mask_add_pd(sum[h], m, sum[h], x);
                    sq[h] = _mm512_mask_add_pd(sq[h], m, sq[h], _mm512_mul_pd(x, x));
                }
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
        // SAFETY: each store writes 8 f64 into 8 lanes of the 16-lane arrays.
        unsafe {
            for h in 0..2 {
                _mm512_storeu_pd(sums.sum[8 * h..].as_mut_ptr(), sum[h]);
                _mm512_storeu_pd(sums.sq[8 * h..].as_mut_ptr(), sq[h]);
            }
        }
        sums.n += n;
        whole
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

    /// The pass one id per step, lane `i % 16`, the guard in a second loop: what the wide steps
    /// must give to the bit.
    fn reference(v: &[f32], streaks: &[u8], window: u8) -> ((f64, f64), Vec<f32>) {
        let mut sums = Sums::new();
        for (i, &x) in v.iter().enumerate() {
            sums.add(i % LANES, x);
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
