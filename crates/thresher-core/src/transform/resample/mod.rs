//! Bilinear resampling of 8-bit images, bit-exact with Pillow's `Image.resize(size,
//! Image.BILINEAR)` (libImaging/Resample.c), which torchvision's `Resize` and
//! `RandomResizedCrop` call on PIL images. Like Pillow it is antialiased when downscaling: the
//! triangle filter is stretched by the scale factor, so every source pixel under an output pixel
//! contributes. It is separable, each pass rounding to 8 bits with Pillow's 22-bit fixed-point
//! coefficients, and the passes run in the order Pillow 13 picks; tests/pillow.rs compares
//! against Pillow's output: equal, bit for bit.
//!
//! `resample` computes only a window of the output (a crop after a resize) and reads only the
//! source rows that window needs; since every output pixel depends only on its own coefficients,
//! the window equals the same window of the full resize.
//!
//! `resample_rgb_f32_planar` is the same resize of an RGB image fused with the f32 NCHW output
//! (the tables of `emit`, a flip): the horizontal pass writes three u8 planes (already
//! mirrored), and whichever pass runs second ends in f32 through the tables. Its AVX2 kernels compute
//! the same integer sums as Pillow (the 22-bit weights split into two 16-bit halves for the
//! multiply-adds), and the portable code is the fallback; both are tested against the unfused
//! two steps, bit for bit.
//!
//! Files: this one holds the jobs (`Job`, `Rect`, `Frac`), the pass order and `resample`;
//! `coeffs` the filter taps; `rows` the portable one-row passes; `fused` the resize fused with
//! the f32 planes; `x86` the SSE4.1 and AVX2 kernels; `tests` the unit tests.

use std::ops::Range;

use crate::source::SampleView;

mod coeffs;
mod fused;
mod rows;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;

use coeffs::Coeffs;
use rows::{horizontal_row, vertical_row};

/// Buffers reused from sample to sample.
#[derive(Debug, Default)]
pub(crate) struct Resampler {
    horizontal: Coeffs,
    vertical: Coeffs,
    /// The first pass's output.
    tmp: Vec<u8>,
    /// The fused path's output row in u8 (three channel rows), before the tables.
    row: Vec<u8>,
    acc: Vec<i32>,
    /// The horizontal weights laid out for the fused path's AVX2 kernel (`pair_weights`).
    pairs: (Vec<i16>, Vec<i16>),
}

/// A rectangle of pixels: rows `top..top + height`, columns `left..left + width`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rect {
    pub top: usize,
    pub left: usize,
    pub height: usize,
    pub width: usize,
}

/// One resize: the box `bx` of the source becomes `out_h × out_w`, of which the output rows
/// `rows` and columns `cols` are computed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Job {
    pub bx: Rect,
    pub out_h: usize,
    pub out_w: usize,
    pub rows: Range<usize>,
    pub cols: Range<usize>,
    /// Instead of the whole `bx`, a fractional box of a larger image of which `bx` is a part.
    pub frac: Option<Frac>,
}

/// Pillow's `resize(size, box=(x0, y0, x1, y1))` on an image of `full_w × full_h`, of which the
/// source holds the part at (`off_x`, `off_y`) (the `bx` of the job): the filter's taps
/// may reach past the box into the image, and must fall inside the part.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Frac {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
    pub full_w: usize,
    pub full_h: usize,
    pub off_x: usize,
    pub off_y: usize,
}

/// Which passes a job needs and in which order.
struct Passes {
    /// Pillow's view of the input: the whole (cropped) box, or the fractional box of the
    /// larger image.
    f: Frac,
    need_h: bool,
    need_v: bool,
    horizontal_first: bool,
}

impl Passes {
    fn of(job: &Job) -> Passes {
        let (bx, out_h, out_w) = (job.bx, job.out_h, job.out_w);
        let f = job.frac.unwrap_or(Frac {
            x0: 0.0,
            y0: 0.0,
            x1: bx.width as f32,
            y1: bx.height as f32,
            full_w: bx.width,
            full_h: bx.height,
            off_x: 0,
            off_y: 0,
        });
        let need_h = out_w != f.full_w || f.x0 != 0.0 || f.x1 != out_w as f32;
        let need_v = out_h != f.full_h || f.y0 != 0.0 || f.y1 != out_h as f32;
        // Pillow 13's order (ImagingResampleInner): "if height is being scaled down more than
        // twice the amount the width is, run the vertical pass first". Older Pillow always ran
        // the horizontal pass first; the order changes some values by one level.
        let (in_w, in_h) = (f.full_w as i64, f.full_h as i64);
        let shrink_h = in_h - out_h as i64;
        let horizontal_first = !(shrink_h > 0 && shrink_h > (in_w - out_w as i64) * 2);
        Passes {
            f,
            need_h,
            need_v,
            horizontal_first,
        }
    }
}

impl Resampler {
    /// Runs `job` on `src` into `dst`: HWC, `rows.len() × cols.len()` pixels of `src`'s
    /// channel count.
    pub(crate) fn resample(&mut self, src: &SampleView<'_>, job: &Job, dst: &mut Vec<u8>) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { self.resample_avx2(src, job, dst) };
            return;
        }
        self.resample_any::<false>(src, job, dst);
    }

    /// The same code compiled for AVX2, so that the loops vectorise 8 lanes wide (the
    /// baseline x86-64 target has no 32-bit vector multiply).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn resample_avx2(&mut self, src: &SampleView<'_>, job: &Job, dst: &mut Vec<u8>) {
        self.resample_any::<true>(src, job, dst);
    }

    /// `SIMD`: the CPU has AVX2 (so the x86 kernels may run).
    #[inline(always)]
    fn resample_any<const SIMD: bool>(
        &mut self,
        src: &SampleView<'_>,
        job: &Job,
        dst: &mut Vec<u8>,
    ) {
        let Job {
            bx,
            out_h,
            out_w,
            rows,
            cols,
            ..
        } = job.clone();
        let c = src.channels;
        let stride = src.width * c;
        let (oh, ow) = (rows.len(), cols.len());
        dst.clear();
        dst.resize(oh * ow * c, 0);
        if oh == 0 || ow == 0 {
            return;
        }
        let Passes {
            f,
            need_h,
            need_v,
            horizontal_first,
        } = Passes::of(job);
        let horizontal =
            |co: &mut Coeffs| co.compute_box(f.full_w, f.x0 as f64, f.x1 as f64, out_w, f.off_x);
        let vertical =
            |co: &mut Coeffs| co.compute_box(f.full_h, f.y0 as f64, f.y1 as f64, out_h, f.off_y);
        // The box's pixel (y, x) is src.pixels[at(y) + x * c].
        let at = |y: usize| (bx.top + y) * stride + bx.left * c;
        let row_len = ow * c;
        match (need_h, need_v) {
            (false, false) => {
                for (r, out) in dst.chunks_exact_mut(row_len).enumerate() {
                    let from = at(rows.start + r) + cols.start * c;
                    out.copy_from_slice(&src.pixels[from..from + row_len]);
                }
            }
            (true, false) => {
                horizontal(&mut self.horizontal);
                for (r, out) in dst.chunks_exact_mut(row_len).enumerate() {
                    let line = &src.pixels[at(rows.start + r)..];
                    horizontal_row::<SIMD>(line, c, 0, &self.horizontal, cols.clone(), out);
                }
            }
            (false, true) => {
                vertical(&mut self.vertical);
                let from = at(0) + cols.start * c;
                for (r, out) in dst.chunks_exact_mut(row_len).enumerate() {
                    let (start, k) = self.vertical.taps(rows.start + r);
                    vertical_row(&src.pixels[from..], stride, start, k, &mut self.acc, out);
                }
            }
            (true, true) if horizontal_first => {
                vertical(&mut self.vertical);
                horizontal(&mut self.horizontal);
                // Source rows (of the box) the window needs, through the horizontal pass.
                let (first, _) = self.vertical.taps(rows.start);
                let (s1, k1) = self.vertical.taps(rows.end - 1);
                let last = s1 + k1.len();
                self.tmp.clear();
                self.tmp.resize((last - first) * row_len, 0);
                for (r, out) in self.tmp.chunks_exact_mut(row_len).enumerate() {
                    let line = &src.pixels[at(first + r)..];
                    horizontal_row::<SIMD>(line, c, 0, &self.horizontal, cols.clone(), out);
                }
                for (r, out) in dst.chunks_exact_mut(row_len).enumerate() {
                    let (start, k) = self.vertical.taps(rows.start + r);
                    vertical_row(&self.tmp, row_len, start - first, k, &mut self.acc, out);
                }
            }
            (true, true) => {
                vertical(&mut self.vertical);
                horizontal(&mut self.horizontal);
                // Source columns (of the box) the window needs, through the vertical pass.
                let (c0, _) = self.horizontal.taps(cols.start);
                let (s1, k1) = self.horizontal.taps(cols.end - 1);
                let c1 = s1 + k1.len();
                let tmp_len = (c1 - c0) * c;
                self.tmp.clear();
                self.tmp.resize(oh * tmp_len, 0);
                let from = at(0) + c0 * c;
                for (r, out) in self.tmp.chunks_exact_mut(tmp_len).enumerate() {
                    let (start, k) = self.vertical.taps(rows.start + r);
                    vertical_row(&src.pixels[from..], stride, start, k, &mut self.acc, out);
                }
                for (r, out) in dst.chunks_exact_mut(row_len).enumerate() {
                    let line = &self.tmp[r * tmp_len..];
                    horizontal_row::<SIMD>(line, c, c0, &self.horizontal, cols.clone(), out);
                }
            }
        }
    }
}
