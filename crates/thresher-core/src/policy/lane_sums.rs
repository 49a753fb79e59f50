//! The sums behind a plan's reported score mean and spread, kept in 16 interleaved f64 lanes
//! (value `i` of a pass in lane `i % 16`) and added together in lane order at the end: one chain
//! of f64 additions would hold a pass over N values to an addition's latency per value. The
//! scalar `LaneSums::add` and the AVX-512 `x86::Wide::add16` (16 values a step, one lane each)
//! make the same additions in the same order, so a pass that does its whole steps wide and the
//! rest one by one gives the same bits as the scalar pass alone. Used by ε-greedy's and UCB's
//! last pass (`kept_stats`) and by the static policies' (`finite_stats`). The figures are only
//! reported, and may differ in their last bits from `mean_std`'s sums in value order.

use super::mean_std_of;

/// Lanes of the sums (and values per wide step).
pub(crate) const LANES: usize = 16;

/// The count of the values added, and their sum and sum of squares per lane.
pub(crate) struct LaneSums {
    n: u64,
    sum: [f64; LANES],
    sq: [f64; LANES],
}

impl LaneSums {
    pub(crate) fn new() -> LaneSums {
        LaneSums {
            n: 0,
            sum: [0.0; LANES],
            sq: [0.0; LANES],
        }
    }

    /// Adds `v` to lane `lane` when `on`, without a branch: otherwise +0.0 is added, which
    /// leaves the sums as they were (they start at +0.0, so they are never −0.0), as the wide
    /// step's masked addition does.
    #[inline(always)]
    pub(crate) fn add(&mut self, lane: usize, on: bool, v: f32) {
        let x = if on { v as f64 } else { 0.0 };
        self.n += u64::from(on);
        self.sum[lane] += x;
        self.sq[lane] += x * x;
    }

    /// Mean and population standard deviation of the values added; NaN for none.
    pub(crate) fn mean_std(&self) -> (f64, f64) {
        mean_std_of(self.n as usize, self.sum.iter().sum(), self.sq.iter().sum())
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use std::arch::x86_64::{
        __m512, __m512d, __mmask16, _mm256_castsi256_ps, _mm512_castps512_ps256,
        _mm512_castps_si512, _mm512_cvtps_pd, _mm512_extracti64x4_epi64, _mm512_mask_add_pd,
        _mm512_mul_pd, _mm512_setzero_pd, _mm512_storeu_pd,
    };

    use super::LaneSums;

    /// The sums of a wide pass in registers: lanes 0–7 in the first of each pair, 8–15 in the
    /// second.
    pub(crate) struct Wide {
        n: u64,
        sum: [__m512d; 2],
        sq: [__m512d; 2],
    }

    impl Wide {
        /// # Safety
        /// AVX-512 F.
        #[inline(always)]
        pub(crate) unsafe fn new() -> Wide {
            // SAFETY: register operations only; AVX-512 F by the caller.
            let zero = unsafe { _mm512_setzero_pd() };
            Wide {
                n: 0,
                sum: [zero; 2],
                sq: [zero; 2],
            }
        }

        /// Adds the values of `v` that `on` selects, value `l` to lane `l` (a multiply and an
        /// add for the square, not a fused one: `LaneSums::add`'s arithmetic).
        ///
        /// # Safety
        /// AVX-512 F.
        #[inline(always)]
        pub(crate) unsafe fn add16(&mut self, on: __mmask16, v: __m512) {
            self.n += u64::from(on.count_ones());
            // SAFETY: register operations only; AVX-512 F by the caller.
            unsafe {
                let low = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
                let high = _mm512_cvtps_pd(_mm256_castsi256_ps(_mm512_extracti64x4_epi64::<1>(
                    _mm512_castps_si512(v),
                )));
                for (h, x) in [low, high].into_iter().enumerate() {
                    let m = (on >> (8 * h)) as u8;
                    self.sum[h] = _mm512_mask_add_pd(self.sum[h], m, self.sum[h], x);
                    self.sq[h] = _mm512_mask_add_pd(self.sq[h], m, self.sq[h], _mm512_mul_pd(x, x));
                }
            }
        }

        /// The sums as `LaneSums`, to go on with one value at a time.
        ///
        /// # Safety
        /// AVX-512 F.
        #[inline(always)]
        pub(crate) unsafe fn into_lanes(self) -> LaneSums {
            let mut out = LaneSums::new();
            // SAFETY: each store writes 8 f64 into 8 lanes of the 16-lane arrays.
            unsafe {
                for h in 0..2 {
                    _mm512_storeu_pd(out.sum[8 * h..].as_mut_ptr(), self.sum[h]);
                    _mm512_storeu_pd(out.sq[8 * h..].as_mut_ptr(), self.sq[h]);
                }
            }
            out.n = self.n;
            out
        }
    }
}
