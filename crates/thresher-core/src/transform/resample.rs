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

use std::ops::Range;

use crate::source::SampleView;

/// Pillow's PRECISION_BITS for 8-bit images: 32 − 8 − 2.
const PRECISION_BITS: u32 = 22;
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// The filter taps of one axis: for output position i, `count[i]` input positions from
/// `start[i]`, with weights `k[i * ksize..][..count[i]]` followed by zeros up to `ksize` (as in
/// Pillow's buffer), so every position can also be run with `max_count` taps.
#[derive(Debug, Default)]
pub(crate) struct Coeffs {
    ksize: usize,
    max_count: usize,
    start: Vec<usize>,
    count: Vec<usize>,
    k: Vec<i32>,
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

    fn taps(&self, i: usize) -> (usize, &[i32]) {
        (
            self.start[i],
            &self.k[i * self.ksize..i * self.ksize + self.count[i]],
        )
    }
}

#[inline(always)]
fn clip8(v: i32) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Buffers reused from sample to sample.
#[derive(Debug, Default)]
pub(crate) struct Resampler {
    horizontal: Coeffs,
    vertical: Coeffs,
    /// The first pass's output.
    tmp: Vec<u8>,
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

/// The per-channel tables of the f32 output (`lut[c * 256 + v]` of the transform, for RGB).
pub(crate) type Tables<'a> = [&'a [f32; 256]; 3];

impl Resampler {
    /// `resample` of a whole output (`rows` and `cols` covering it) of an RGB source followed
    /// by `Emit::to_f32` into NCHW planes, optionally flipped, in one go: the pass that runs
    /// second writes the normalised f32 planes directly, the flip is folded into where the
    /// horizontal pass writes, and no u8 image is made in between. Bit for bit the same values
    /// as the two steps (the same integer arithmetic, then the same tables). `false`, with
    /// nothing written, when the job is not of that kind (the caller takes the two steps).
    pub(crate) fn resample_rgb_f32_planar(
        &mut self,
        src: &SampleView<'_>,
        job: &Job,
        tables: Tables<'_>,
        flip: bool,
        dst: &mut [f32],
    ) -> bool {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { self.fused_avx2(src, job, tables, flip, dst) };
        }
        self.fused_any::<false>(src, job, tables, flip, dst)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn fused_avx2(
        &mut self,
        src: &SampleView<'_>,
        job: &Job,
        tables: Tables<'_>,
        flip: bool,
        dst: &mut [f32],
    ) -> bool {
        self.fused_any::<true>(src, job, tables, flip, dst)
    }

    #[inline(always)]
    fn fused_any<const SIMD: bool>(
        &mut self,
        src: &SampleView<'_>,
        job: &Job,
        tables: Tables<'_>,
        flip: bool,
        dst: &mut [f32],
    ) -> bool {
        const C: usize = 3;
        let Job {
            bx,
            out_h: oh,
            out_w: ow,
            ..
        } = *job;
        let p = Passes::of(job);
        if src.channels != C
            || job.rows != (0..oh)
            || job.cols != (0..ow)
            || oh == 0
            || ow == 0
            || !(p.need_h && p.need_v)
            || dst.len() != C * oh * ow
        {
            return false;
        }
        let f = p.f;
        self.vertical
            .compute_box(f.full_h, f.y0 as f64, f.y1 as f64, oh, f.off_y);
        self.horizontal
            .compute_box(f.full_w, f.x0 as f64, f.x1 as f64, ow, f.off_x);
        if SIMD {
            pair_weights(
                &self.horizontal,
                ow,
                self.horizontal.max_count,
                &mut self.pairs.0,
                &mut self.pairs.1,
            );
        }
        let stride = src.width * C;
        let at = |y: usize| (bx.top + y) * stride + bx.left * C;
        let plane = oh * ow;
        if p.horizontal_first {
            // The source rows the output needs, through the horizontal pass into three u8
            // planes (already flipped), then the vertical pass of each plane into its f32 plane.
            let (first, _) = self.vertical.taps(0);
            let (s1, k1) = self.vertical.taps(oh - 1);
            let n = s1 + k1.len() - first;
            grow(&mut self.tmp, C * n * ow);
            let (t0, rest) = self.tmp.split_at_mut(n * ow);
            let (t1, t2) = rest.split_at_mut(n * ow);
            for r in 0..n {
                let line = &src.pixels[at(first + r)..];
                let rows = [
                    &mut t0[r * ow..(r + 1) * ow],
                    &mut t1[r * ow..(r + 1) * ow],
                    &mut t2[r * ow..(r + 1) * ow],
                ];
                horizontal_planes::<SIMD>(
                    line,
                    0,
                    &self.horizontal,
                    (&self.pairs.0, &self.pairs.1),
                    flip,
                    rows,
                );
            }
            let planes = [
                &self.tmp[..n * ow],
                &self.tmp[n * ow..2 * n * ow],
                &self.tmp[2 * n * ow..3 * n * ow],
            ];
            for (ch, (out, tmp)) in dst.chunks_exact_mut(plane).zip(planes).enumerate() {
                for (y, out) in out.chunks_exact_mut(ow).enumerate() {
                    let (start, k) = self.vertical.taps(y);
                    vertical_f32::<SIMD>(tmp, ow, start - first, k, tables[ch], out);
                }
            }
        } else {
            // The vertical pass over the source columns the output needs (interleaved, as
            // `resample`), then the horizontal pass of each row into three u8 rows (flipped),
            // then the tables into the f32 planes.
            let (c0, _) = self.horizontal.taps(0);
            let (s1, k1) = self.horizontal.taps(ow - 1);
            let tmp_len = (s1 + k1.len() - c0) * C;
            grow(&mut self.tmp, oh * tmp_len + C * ow);
            let (tmp, row) = self.tmp.split_at_mut(oh * tmp_len);
            let from = at(0) + c0 * C;
            for (r, out) in tmp.chunks_exact_mut(tmp_len).take(oh).enumerate() {
                let (start, k) = self.vertical.taps(r);
                vertical_row(&src.pixels[from..], stride, start, k, &mut self.acc, out);
            }
            let (r0, rest) = row[..C * ow].split_at_mut(ow);
            let (r1, r2) = rest.split_at_mut(ow);
            for y in 0..oh {
                let line = &tmp[y * tmp_len..];
                horizontal_planes::<SIMD>(
                    line,
                    c0,
                    &self.horizontal,
                    (&self.pairs.0, &self.pairs.1),
                    flip,
                    [&mut *r0, &mut *r1, &mut *r2],
                );
                for (ch, r) in [&*r0, &*r1, &*r2].into_iter().enumerate() {
                    let out = &mut dst[ch * plane + y * ow..ch * plane + (y + 1) * ow];
                    for (o, &v) in out.iter_mut().zip(r) {
                        *o = tables[ch][v as usize];
                    }
                }
            }
        }
        true
    }
}

/// Makes `v` at least `n` long without clearing what it reuses (every byte is written before
/// it is read).
fn grow(v: &mut Vec<u8>, n: usize) {
    if v.len() < n {
        v.resize(n, 0);
    }
}

/// The horizontal pass of one RGB row (`line`, starting at column `origin` of the box) into
/// three u8 rows, one per channel, mirrored when `flip`: the values `horizontal_row` makes.
#[inline(always)]
fn horizontal_planes<const SIMD: bool>(
    line: &[u8],
    origin: usize,
    co: &Coeffs,
    pairs: (&[i16], &[i16]),
    flip: bool,
    rows: [&mut [u8]; 3],
) {
    #[cfg(target_arch = "x86_64")]
    if SIMD {
        macro_rules! go {
            ($($n:literal)*) => {
                match co.max_count {
                    // SAFETY: SIMD is only true on CPUs with AVX2.
                    $($n => return unsafe { x86::planes::<$n>(line, origin, co, pairs, flip, rows) },)*
                    _ => {}
                }
            };
        }
        go!(1 2 3 4 5 6 7 8);
    }
    // Only the x86 kernel reads the laid-out weights.
    let _ = pairs;
    let ow = rows[0].len();
    let [r0, r1, r2] = rows;
    for xx in 0..ow {
        let px = pixel3(line, origin, co, xx);
        let xo = if flip { ow - 1 - xx } else { xx };
        r0[xo] = px[0];
        r1[xo] = px[1];
        r2[xo] = px[2];
    }
}

/// The horizontal weights of output pixels 2p and 2p + 1 for the AVX2 kernel, split as
/// k = 2048·hi + lo: for each pair p and tap pair j < ⌈`n`/2⌉, sixteen 16-bit lanes, the first
/// eight (hi or lo of taps 2j and 2j + 1, four times) pixel 2p's, the next eight 2p + 1's (zero
/// past a pixel's real taps).
fn pair_weights(co: &Coeffs, ow: usize, n: usize, hi: &mut Vec<i16>, lo: &mut Vec<i16>) {
    hi.clear();
    lo.clear();
    for p in 0..ow / 2 {
        for j in 0..n.div_ceil(2) {
            for xx in [2 * p, 2 * p + 1] {
                let w = |t: usize| {
                    if t < co.count[xx] {
                        co.k[xx * co.ksize + t]
                    } else {
                        0
                    }
                };
                let (a, b) = (w(2 * j), w(2 * j + 1));
                // The weights are in 0..=2^22 (Pillow's triangle filter): both parts fit.
                debug_assert!((0..=1 << PRECISION_BITS).contains(&a));
                debug_assert!((0..=1 << PRECISION_BITS).contains(&b));
                for _ in 0..4 {
                    hi.extend([(a >> 11) as i16, (b >> 11) as i16]);
                    lo.extend([(a & 2047) as i16, (b & 2047) as i16]);
                }
            }
        }
    }
}

/// Output pixel `xx` of the horizontal pass of an RGB row, from its real taps.
#[inline(always)]
fn pixel3(line: &[u8], origin: usize, co: &Coeffs, xx: usize) -> [u8; 3] {
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

/// One output row of the vertical pass of one u8 plane (rows of `stride` values), through the
/// channel's table: `out[x] = table[clip8(Σ_t k[t] · plane[(start + t) · stride + x])]`.
#[inline(always)]
fn vertical_f32<const SIMD: bool>(
    plane: &[u8],
    stride: usize,
    start: usize,
    k: &[i32],
    table: &[f32; 256],
    out: &mut [f32],
) {
    let n = out.len();
    assert!(n <= stride && (start + k.len()) * stride <= plane.len());
    #[allow(unused_mut)] // only the x86 kernel sets it
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if SIMD {
        // SAFETY: AVX2 (SIMD is only true there); the bounds are asserted above.
        done = unsafe { x86::vertical_f32(plane, stride, start, k, table, out) };
    }
    for x in done..n {
        let mut acc = HALF;
        for (t, &w) in k.iter().enumerate() {
            acc += plane[(start + t) * stride + x] as i32 * w;
        }
        out[x] = table[clip8(acc) as usize];
    }
}

/// One output row of the vertical pass: `out[i] = Σ_t k[t] · src[(start + t) · stride + i]`,
/// over `out.len()` values (pixels × channels).
#[inline(always)]
fn vertical_row(
    src: &[u8],
    stride: usize,
    start: usize,
    k: &[i32],
    acc: &mut Vec<i32>,
    out: &mut [u8],
) {
    let n = out.len();
    acc.clear();
    acc.resize(n, HALF);
    for (t, &w) in k.iter().enumerate() {
        let from = (start + t) * stride;
        for (a, &v) in acc.iter_mut().zip(&src[from..from + n]) {
            *a += v as i32 * w;
        }
    }
    for (o, &a) in out.iter_mut().zip(acc.iter()) {
        *o = clip8(a);
    }
}

/// One row of the horizontal pass: output columns `cols`, from `line`, which starts at column
/// `origin` of the box and may run on past the row (the fast kernels read a little beyond the
/// taps, with zero weights, where the buffer allows).
#[inline(always)]
fn horizontal_row<const SIMD: bool>(
    line: &[u8],
    c: usize,
    origin: usize,
    co: &Coeffs,
    cols: Range<usize>,
    out: &mut [u8],
) {
    #[cfg(target_arch = "x86_64")]
    if SIMD && (c == 3 || c == 4) {
        macro_rules! simd {
            ($c:literal) => {
                match co.max_count {
                    // SAFETY: SIMD is only true on CPUs with AVX2 (which includes SSE4.1).
                    1 => unsafe { x86::fixed::<$c, 1>(line, origin, co, cols, out) },
                    2 => unsafe { x86::fixed::<$c, 2>(line, origin, co, cols, out) },
                    3 => unsafe { x86::fixed::<$c, 3>(line, origin, co, cols, out) },
                    4 => unsafe { x86::fixed::<$c, 4>(line, origin, co, cols, out) },
                    5 => unsafe { x86::fixed::<$c, 5>(line, origin, co, cols, out) },
                    6 => unsafe { x86::fixed::<$c, 6>(line, origin, co, cols, out) },
                    7 => unsafe { x86::fixed::<$c, 7>(line, origin, co, cols, out) },
                    8 => unsafe { x86::fixed::<$c, 8>(line, origin, co, cols, out) },
                    _ => horizontal_any(line, c, origin, co, cols, out),
                }
            };
        }
        if c == 3 {
            simd!(3)
        } else {
            simd!(4)
        }
        return;
    }
    macro_rules! taps {
        ($c:literal, $lanes:literal) => {
            match co.max_count {
                1 => fixed::<$c, $lanes, 1>(line, origin, co, cols, out),
                2 => fixed::<$c, $lanes, 2>(line, origin, co, cols, out),
                3 => fixed::<$c, $lanes, 3>(line, origin, co, cols, out),
                4 => fixed::<$c, $lanes, 4>(line, origin, co, cols, out),
                5 => fixed::<$c, $lanes, 5>(line, origin, co, cols, out),
                6 => fixed::<$c, $lanes, 6>(line, origin, co, cols, out),
                7 => fixed::<$c, $lanes, 7>(line, origin, co, cols, out),
                8 => fixed::<$c, $lanes, 8>(line, origin, co, cols, out),
                _ => horizontal_any(line, c, origin, co, cols, out),
            }
        };
    }
    match c {
        1 => taps!(1, 1),
        // RGB is computed as four lanes (the fourth reads the next pixel's red with the same
        // weight and is thrown away): one vector operation per tap instead of three.
        3 => taps!(3, 4),
        4 => taps!(4, 4),
        _ => horizontal_any(line, c, origin, co, cols, out),
    }
}

/// The horizontal pass with `N` taps for every output pixel (the real ones, then zero
/// weights), `C` channels computed in `L ≥ C` lanes.
#[inline(always)]
fn fixed<const C: usize, const L: usize, const N: usize>(
    line: &[u8],
    origin: usize,
    co: &Coeffs,
    cols: Range<usize>,
    out: &mut [u8],
) {
    for (xx, px) in cols.zip(out.chunks_exact_mut(C)) {
        let base = (co.start[xx] - origin) * C;
        let k = &co.k[xx * co.ksize..xx * co.ksize + N];
        let mut acc = [HALF; L];
        if let Some(p) = line.get(base..base + C * (N - 1) + L) {
            for t in 0..N {
                for l in 0..L {
                    acc[l] += p[C * t + l] as i32 * k[t];
                }
            }
        } else {
            // At the end of the buffer: only the real taps, only the real channels.
            for t in 0..co.count[xx] {
                for ch in 0..C {
                    acc[ch] += line[base + C * t + ch] as i32 * k[t];
                }
            }
        }
        for ch in 0..C {
            px[ch] = clip8(acc[ch]);
        }
    }
}

/// The horizontal pass for RGB and RGBA with SSE4.1: a pixel's channels are the lanes of one
/// vector, so a tap is one load, one widening, one multiply and one add; the rounding and
/// clamping are Pillow's (`>> 22`, then saturation to 0..=255).
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{Coeffs, HALF, PRECISION_BITS};

    #[target_feature(enable = "sse4.1")]
    pub(super) unsafe fn fixed<const C: usize, const N: usize>(
        line: &[u8],
        origin: usize,
        co: &Coeffs,
        cols: Range<usize>,
        out: &mut [u8],
    ) {
        let half = _mm_set1_epi32(HALF);
        for (xx, px) in cols.zip(out.chunks_exact_mut(C)) {
            let base = (co.start[xx] - origin) * C;
            let k = &co.k[xx * co.ksize..xx * co.ksize + N];
            let mut acc = half;
            if base + C * (N - 1) + 4 <= line.len() {
                let p = line.as_ptr().add(base);
                for (t, &w) in k.iter().enumerate() {
                    // SAFETY: the four bytes at p + C·t are inside `line` (checked above).
                    let v = std::ptr::read_unaligned(p.add(C * t) as *const i32);
                    let v = _mm_cvtepu8_epi32(_mm_cvtsi32_si128(v));
                    acc = _mm_add_epi32(acc, _mm_mullo_epi32(v, _mm_set1_epi32(w)));
                }
            } else {
                // At the end of the buffer: the real taps, gathered by hand.
                for (t, &w) in k.iter().enumerate().take(co.count[xx]) {
                    let mut v = [0i32; 4];
                    for (ch, v) in v.iter_mut().enumerate().take(C) {
                        *v = line[base + C * t + ch] as i32;
                    }
                    let v = _mm_loadu_si128(v.as_ptr() as *const __m128i);
                    acc = _mm_add_epi32(acc, _mm_mullo_epi32(v, _mm_set1_epi32(w)));
                }
            }
            let r = _mm_srai_epi32::<{ PRECISION_BITS as i32 }>(acc);
            let r = _mm_packs_epi32(r, r);
            let r = _mm_packus_epi16(r, r);
            let bytes = (_mm_cvtsi128_si32(r) as u32).to_le_bytes();
            px.copy_from_slice(&bytes[..C]);
        }
    }
    /// `horizontal_planes` with AVX2, two output pixels a vector (each pixel's channels in
    /// four lanes of its half), `N` taps each (the real ones, then zero weights), two taps at a
    /// time by 16-bit multiply-adds: a weight k is split as k = 2048·hi + lo (both under
    /// 2^15), and Σ v·k = 2048·Σ v·hi + Σ v·lo exactly, so the sums are Pillow's. `hi` and
    /// `lo` hold each pair's weights as `pair_weights` lays them out. The pixels whose taps
    /// end too near the end of `line` for the 16-byte loads are done from their real taps.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn planes<const N: usize>(
        line: &[u8],
        origin: usize,
        co: &Coeffs,
        (hi, lo): (&[i16], &[i16]),
        flip: bool,
        rows: [&mut [u8]; 3],
    ) {
        // Tap pairs, and 16-byte loads (each covers four taps: 12 bytes and a few more).
        let (np, nl) = (N.div_ceil(2), N.div_ceil(4));
        let ow = rows[0].len();
        assert!(rows[1].len() == ow && rows[2].len() == ow && co.start.len() >= ow);
        assert!(hi.len() >= ow / 2 * np * 16 && lo.len() >= ow / 2 * np * 16);
        let [r0, r1, r2] = rows;
        let (p0, p1, p2) = (r0.as_mut_ptr(), r1.as_mut_ptr(), r2.as_mut_ptr());
        let put = |xx: usize, px: u32| {
            let xo = if flip { ow - 1 - xx } else { xx };
            let b = px.to_le_bytes();
            // SAFETY: xo < ow, the length of each row (asserted above).
            *p0.add(xo) = b[0];
            *p1.add(xo) = b[1];
            *p2.add(xo) = b[2];
        };
        // The taps' starts never decrease: the pixels whose loads stay inside `line` are a
        // prefix.
        let fits = |xx: usize| (co.start[xx] - origin) * 3 + 12 * (nl - 1) + 16 <= line.len();
        let mut lim = ow;
        while lim > 0 && !fits(lim - 1) {
            lim -= 1;
        }
        // Taps (0, 1) and (2, 3) of a load as 16-bit (R, R', G, G', B, B', 0, 0).
        let z = -128i8;
        #[rustfmt::skip]
        let pair = |o: i8| _mm256_setr_epi8(
            o, z, o + 3, z, o + 1, z, o + 4, z, o + 2, z, o + 5, z, z, z, z, z,
            o, z, o + 3, z, o + 1, z, o + 4, z, o + 2, z, o + 5, z, z, z, z, z,
        );
        let masks = [pair(0), pair(6)];
        let half = _mm256_set1_epi32(HALF);
        let p = line.as_ptr();
        // Pixels xx and xx + 1 (xx even, both loads inside `line`): the sums shifted down, as
        // 32-bit (R, G, B, junk) in each half.
        let two = |xx: usize| {
            let b0 = (co.start[xx] - origin) * 3;
            let b1 = (co.start[xx + 1] - origin) * 3;
            let at = xx / 2 * np * 16;
            let (mut ah, mut al) = (_mm256_setzero_si256(), _mm256_setzero_si256());
            for m in 0..nl {
                // SAFETY: the 16 bytes at b + 12m are inside `line` (`fits`).
                let v = _mm256_loadu2_m128i(
                    p.add(b1 + 12 * m) as *const __m128i,
                    p.add(b0 + 12 * m) as *const __m128i,
                );
                for (h, &mask) in masks.iter().enumerate() {
                    let j = 2 * m + h;
                    if j < np {
                        let x = _mm256_shuffle_epi8(v, mask);
                        // SAFETY: inside `hi` and `lo` (asserted above).
                        let kh = _mm256_loadu_si256(hi.as_ptr().add(at + j * 16) as *const __m256i);
                        let kl = _mm256_loadu_si256(lo.as_ptr().add(at + j * 16) as *const __m256i);
                        ah = _mm256_add_epi32(ah, _mm256_madd_epi16(x, kh));
                        al = _mm256_add_epi32(al, _mm256_madd_epi16(x, kl));
                    }
                }
            }
            let acc = _mm256_add_epi32(_mm256_add_epi32(half, _mm256_slli_epi32::<11>(ah)), al);
            _mm256_srai_epi32::<{ PRECISION_BITS as i32 }>(acc)
        };
        // Eight pixels at a time, gathered into eight-byte runs of each plane.
        #[rustfmt::skip]
        let group = _mm256_setr_epi8(
            0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
            0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
        );
        let reverse = _mm_setr_epi8(7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8);
        let mut xx = 0;
        while xx + 8 <= lim {
            // Halves: (xx, xx+2 | xx+1, xx+3) and (xx+4, xx+6 | xx+5, xx+7), saturated to
            // bytes, then each channel's four bytes of a half together.
            let a = _mm256_packs_epi32(two(xx), two(xx + 2));
            let b = _mm256_packs_epi32(two(xx + 4), two(xx + 6));
            let g = _mm256_shuffle_epi8(_mm256_packus_epi16(a, b), group);
            let (e, o) = (_mm256_castsi256_si128(g), _mm256_extracti128_si256::<1>(g));
            let (mut rg, mut bb) = (_mm_unpacklo_epi8(e, o), _mm_unpackhi_epi8(e, o));
            let xo = if flip {
                rg = _mm_shuffle_epi8(rg, reverse);
                bb = _mm_shuffle_epi8(bb, reverse);
                ow - 8 - xx
            } else {
                xx
            };
            // SAFETY: xo + 8 ≤ ow, the length of each row.
            _mm_storel_epi64(p0.add(xo) as *mut __m128i, rg);
            _mm_storel_epi64(p1.add(xo) as *mut __m128i, _mm_unpackhi_epi64(rg, rg));
            _mm_storel_epi64(p2.add(xo) as *mut __m128i, bb);
            xx += 8;
        }
        while xx + 1 < lim {
            let r = two(xx);
            let r = _mm256_packs_epi32(r, r);
            let r = _mm256_packus_epi16(r, r);
            put(xx, _mm_cvtsi128_si32(_mm256_castsi256_si128(r)) as u32);
            put(
                xx + 1,
                _mm_cvtsi128_si32(_mm256_extracti128_si256::<1>(r)) as u32,
            );
            xx += 2;
        }
        for xx in xx..ow {
            let [r, g, b] = super::pixel3(line, origin, co, xx);
            put(xx, u32::from_le_bytes([r, g, b, 0]));
        }
    }

    /// `vertical_f32` with AVX2, eight values a vector, the table read by a gather; returns
    /// how many leading values it wrote (the rest, under eight, are the caller's).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn vertical_f32(
        plane: &[u8],
        stride: usize,
        start: usize,
        k: &[i32],
        table: &[f32; 256],
        out: &mut [f32],
    ) -> usize {
        let n = out.len() / 8 * 8;
        let (zero, top) = (_mm256_setzero_si256(), _mm256_set1_epi32(255));
        for x in (0..n).step_by(8) {
            let mut acc = _mm256_set1_epi32(HALF);
            for (t, &w) in k.iter().enumerate() {
                // SAFETY: x + 8 ≤ stride and row start + t is inside the plane (the caller's
                // assertion).
                let v =
                    _mm_loadl_epi64(plane.as_ptr().add((start + t) * stride + x) as *const __m128i);
                let v = _mm256_cvtepu8_epi32(v);
                acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(v, _mm256_set1_epi32(w)));
            }
            let r = _mm256_srai_epi32::<{ PRECISION_BITS as i32 }>(acc);
            let idx = _mm256_min_epi32(_mm256_max_epi32(r, zero), top);
            let f = _mm256_i32gather_ps::<4>(table.as_ptr(), idx);
            _mm256_storeu_ps(out.as_mut_ptr().add(x), f);
        }
        n
    }
}

fn horizontal_any(
    row: &[u8],
    c: usize,
    origin: usize,
    co: &Coeffs,
    cols: Range<usize>,
    out: &mut [u8],
) {
    for (xx, px) in cols.zip(out.chunks_exact_mut(c)) {
        let (start, k) = co.taps(xx);
        let start = start - origin;
        for (ch, o) in px.iter_mut().enumerate() {
            let mut acc = HALF;
            for (t, &w) in k.iter().enumerate() {
                acc += row[(start + t) * c + ch] as i32 * w;
            }
            *o = clip8(acc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(bx: Rect, out_h: usize, out_w: usize, rows: Range<usize>, cols: Range<usize>) -> Job {
        Job {
            bx,
            out_h,
            out_w,
            rows,
            cols,
            frac: None,
        }
    }

    fn view(px: &[u8], h: usize, w: usize, c: usize) -> SampleView<'_> {
        SampleView {
            pixels: px,
            height: h,
            width: w,
            channels: c,
        }
    }

    #[test]
    fn identity_and_constant() {
        let px: Vec<u8> = (0..5 * 7 * 3).map(|i| (i * 11) as u8).collect();
        let v = view(&px, 5, 7, 3);
        let mut r = Resampler::default();
        let mut out = Vec::new();
        let full = Rect {
            top: 0,
            left: 0,
            height: 5,
            width: 7,
        };
        r.resample(&v, &job(full, 5, 7, 0..5, 0..7), &mut out);
        assert_eq!(out, px);
        // A constant image stays constant at any scale (the weights sum to 1 in fixed point).
        let flat = vec![200u8; 9 * 13];
        let v = view(&flat, 9, 13, 1);
        for (h, w) in [(4, 5), (20, 3), (1, 1), (9, 26)] {
            let bx = Rect {
                top: 0,
                left: 0,
                height: 9,
                width: 13,
            };
            r.resample(&v, &job(bx, h, w, 0..h, 0..w), &mut out);
            assert!(out.iter().all(|&p| p == 200), "{h}×{w}: {out:?}");
        }
    }

    #[test]
    fn window_equals_crop_of_full() {
        let px: Vec<u8> = (0..37 * 29 * 3).map(|i| ((i * 7919) % 251) as u8).collect();
        let v = view(&px, 37, 29, 3);
        let bx = Rect {
            top: 3,
            left: 2,
            height: 30,
            width: 25,
        };
        let mut r = Resampler::default();
        let (mut full, mut part) = (Vec::new(), Vec::new());
        // Horizontal first, vertical first (height shrinks > 2× more), one pass each.
        for (oh, ow) in [(17, 11), (5, 24), (40, 3), (3, 40), (30, 9), (12, 25)] {
            r.resample(&v, &job(bx, oh, ow, 0..oh, 0..ow), &mut full);
            let (rows, cols) = (oh / 4..oh - oh / 3, ow / 5..ow - ow / 4);
            r.resample(&v, &job(bx, oh, ow, rows.clone(), cols.clone()), &mut part);
            let n = cols.len() * 3;
            for (y, row) in part.chunks_exact(n).enumerate() {
                let at = ((y + rows.start) * ow + cols.start) * 3;
                assert_eq!(row, &full[at..at + n], "{oh}×{ow}");
            }
        }
    }

    #[test]
    fn coefficients_as_pillow_computes_them() {
        // 4 → 2 by hand through Resample.c: scale 2, support 2, center 1.0, taps 0..3 with
        // triangle weights 0.75, 0.75, 0.25, normalised by 1.75 and scaled by 2^22.
        let mut c = Coeffs::default();
        c.compute(4, 2);
        assert_eq!(c.taps(0), (0, &[1797559, 1797559, 599186][..]));
        assert_eq!(c.taps(1), (1, &[599186, 1797559, 1797559][..]));
        // Upscaling keeps support 1: 2 → 4, output 0 has center 0.25, so xmax = (int)1.75 = 1
        // and its one tap gets all the weight; output 1 (center 0.75) blends 0.75 and 0.25.
        c.compute(2, 4);
        assert_eq!(c.taps(0), (0, &[1 << 22][..]));
        assert_eq!(c.taps(1), (0, &[3145728, 1048576][..]));
    }
    /// The fused resample + f32 planes equals `resample` then `Emit::to_f32`, bit for bit, in
    /// both pass orders, flipped or not, whole and fractional boxes, with and without AVX2.
    #[test]
    fn fused_f32_planes_equal_resample_then_emit() {
        use crate::transform::emit::Emit;
        let (h, w) = (61, 53);
        let px: Vec<u8> = (0..h * w * 3)
            .map(|i| ((i * 7919 + i / 97) % 256) as u8)
            .collect();
        let v = view(&px, h, w, 3);
        let lut: Vec<f32> = (0..3 * 256)
            .map(|i| ((i % 256) as f32 / 255.0 - 0.4 - 0.01 * (i / 256) as f32) / 0.23)
            .collect();
        let t = |ch: usize| -> &[f32; 256] { lut[ch * 256..][..256].try_into().unwrap() };
        let tables = [t(0), t(1), t(2)];
        let mut rng = crate::rng::Rng::new(3, crate::rng::Stream::Augment, 0, 0);
        let mut r = Resampler::default();
        let mut u8s = Vec::new();
        let (mut orders, mut fracs) = ([0usize; 2], 0);
        for case in 0..400 {
            let bh = 1 + rng.below(h as u64) as usize;
            let bw = 1 + rng.below(w as u64) as usize;
            let bx = Rect {
                top: rng.below((h - bh + 1) as u64) as usize,
                left: rng.below((w - bw + 1) as u64) as usize,
                height: bh,
                width: bw,
            };
            let oh = 1 + rng.below(40) as usize;
            let ow = 1 + rng.below(40) as usize;
            let mut job = job(bx, oh, ow, 0..oh, 0..ow);
            if case % 3 == 0 {
                // A fractional box of the whole image, the source being all of it.
                let f = |a: usize| a as f32 + 0.37;
                job.frac = Some(Frac {
                    x0: f(bx.left).min(w as f32 - 1.0),
                    y0: f(bx.top).min(h as f32 - 1.0),
                    x1: (bx.left + bx.width) as f32,
                    y1: (bx.top + bx.height) as f32,
                    full_w: w,
                    full_h: h,
                    off_x: 0,
                    off_y: 0,
                });
                job.bx = Rect {
                    top: 0,
                    left: 0,
                    height: h,
                    width: w,
                };
                fracs += 1;
            }
            let flip = case % 2 == 1;
            r.resample(&v, &job, &mut u8s);
            let src = view(&u8s, oh, ow, 3);
            let e = Emit {
                top: 0,
                left: 0,
                height: oh,
                width: ow,
                flip,
                planar: true,
            };
            let mut want = vec![0f32; 3 * oh * ow];
            e.to_f32(&src, &lut, &mut want);
            let p = Passes::of(&job);
            for simd in [true, false] {
                let mut got = vec![f32::NAN; 3 * oh * ow];
                let fused = if simd {
                    r.resample_rgb_f32_planar(&v, &job, tables, flip, &mut got)
                } else {
                    r.fused_any::<false>(&v, &job, tables, flip, &mut got)
                };
                assert_eq!(fused, p.need_h && p.need_v, "{job:?}");
                if fused {
                    let same = got
                        .iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "simd {simd} flip {flip} {job:?}");
                    orders[p.horizontal_first as usize] += 1;
                }
            }
        }
        // Both pass orders and fractional boxes were exercised.
        assert!(
            orders[0] > 20 && orders[1] > 20 && fracs > 100,
            "{orders:?} {fracs}"
        );
    }
}
