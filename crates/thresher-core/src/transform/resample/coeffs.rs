//! The filter taps of Pillow's bilinear resize (`precompute_coeffs` + `normalize_coeffs_8bpc`
//! of libImaging/Resample.c): each output position's first input position and its 22-bit
//! fixed-point weights, the rounding back to 8 bits, and one RGB output pixel from its taps
//! (`pixel3`, shared by the portable and AVX2 fused passes).

/// Pillow's PRECISION_BITS for 8-bit images: 32 − 8 − 2.
pub(super) const PRECISION_BITS: u32 = 22;
pub(super) const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// The filter taps of one axis: for output position i, `count[i]` input positions from
/// `start[i]`, with weights `k[i * ksize..][..count[i]]` followed by zeros up to `ksize` (as in
/// Pillow's buffer), so every position can also be run with `max_count` taps.
#[derive(Debug, Default)]
pub(crate) struct Coeffs {
    pub(super) ksize: usize,
    pub(super) max_count: usize,
    pub(super) start: Vec<usize>,
    pub(super) count: Vec<usize>,
    pub(super) k: Vec<i32>,
    /// The f64 weights before normalisation (kept to reuse the allocation).
    kk: Vec<f64>,
}

fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

impl Coeffs {
    /// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for resizing `in_size` to
    /// `out_size` (the box being the whole input), with the bilinear (support 1) filter.
    #[cfg(test)]
    pub(crate) fn compute(&mut self, in_size: usize, out_size: usize) {
        self.compute_box(in_size, 0.0, in_size as f64, out_size, 0);
    }

    /// The same for the box `in0..in1` (fractional, as Pillow's `resize(box=...)`) of an input
    /// of `in_size`, whose taps may reach past the box (clamped to the input, as Pillow's);
    /// the taps' positions are then shifted down by `offset` (where the caller's pixels start).
    pub(crate) fn compute_box(
        &mut self,
        in_size: usize,
        in0: f64,
        in1: f64,
        out_size: usize,
        offset: usize,
    ) {
        let scale = (in1 - in0) / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let ss = 1.0 / filterscale;
        self.ksize = ksize;
        self.start.clear();
        self.count.clear();
        self.kk.clear();
        self.kk.resize(out_size * ksize, 0.0);
        for xx in 0..out_size {
            let center = in0 + (xx as f64 + 0.5) * scale;
            // C's (int) cast truncates toward zero, as `as i64` does.
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
            let n = (xmax - xmin).max(0) as usize;
            let k = &mut self.kk[xx * ksize..xx * ksize + n];
            let mut ww = 0.0;
            for (x, w) in k.iter_mut().enumerate() {
                *w = triangle(((x as i64 + xmin) as f64 - center + 0.5) * ss);
                ww += *w;
            }
            if ww != 0.0 {
                for w in k.iter_mut() {
                    *w /= ww;
                }
            }
            self.start.push((xmin as usize).saturating_sub(offset));
            self.count.push(n);
        }
        self.max_count = self.count.iter().copied().max().unwrap_or(0);
        self.k.clear();
        self.k.extend(self.kk.iter().map(|&w| {
            let scaled = w * (1u32 << PRECISION_BITS) as f64;
            if w < 0.0 {
                (-0.5 + scaled) as i32
            } else {
                (0.5 + scaled) as i32
            }
        }));
    }

    pub(super) fn taps(&self, i: usize) -> (usize, &[i32]) {
        (
            self.start[i],
            &self.k[i * self.ksize..i * self.ksize + self.count[i]],
        )
    }
}

#[inline(always)]
pub(super) fn clip8(v: i32) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Output pixel `xx` of the horizontal pass of an RGB row, from its real taps.
#[inline(always)]
pub(super) fn pixel3(line: &[u8], origin: usize, co: &Coeffs, xx: usize) -> [u8; 3] {
    let (start, k) = co.taps(xx);
    let base = (start - origin) * 3;
    let mut acc = [HALF; 3];
    for (t, &w) in k.iter().enumerate() {
        for ch in 0..3 {
            acc[ch] += line[base + 3 * t + ch] as i32 * w;
        }
    }
    acc.map(clip8)
}
