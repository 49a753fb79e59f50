//! The resize of an RGB image fused with the f32 NCHW output (`resample_rgb_f32_planar`): the
//! horizontal pass writes three u8 planes (mirrored when flipped), and whichever pass runs
//! second ends in f32 through the channel tables of `emit`. The AVX2 kernels it calls are in
//! `x86`; the portable code here is the fallback.

use super::coeffs::{clip8, pixel3, Coeffs, HALF, PRECISION_BITS};
use super::rows::vertical_row;
#[cfg(target_arch = "x86_64")]
use super::x86;
use super::{Job, Passes, Resampler};
use crate::source::SampleView;
use crate::transform::lut::Lut;

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
        lut: &Lut,
        flip: bool,
        dst: &mut [f32],
    ) -> bool {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { self.fused_avx2(src, job, lut, flip, dst) };
        }
        self.fused_any::<false>(src, job, lut, flip, dst)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn fused_avx2(
        &mut self,
        src: &SampleView<'_>,
        job: &Job,
        lut: &Lut,
        flip: bool,
        dst: &mut [f32],
    ) -> bool {
        self.fused_any::<true>(src, job, lut, flip, dst)
    }

    #[inline(always)]
    pub(super) fn fused_any<const SIMD: bool>(
        &mut self,
        src: &SampleView<'_>,
        job: &Job,
        lut: &Lut,
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
            // planes (already flipped), then the vertical pass of each plane.
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
            let tmp = &self.tmp[..C * n * ow];
            // A large output goes straight to memory: a batch of them cannot stay in cache (128
            // images of 224² are 77 MB), so the consumer reads it from memory anyway, and
            // streaming stores save reading each line in before it is overwritten.
            let stream = SIMD && C * plane * 4 >= STREAM_BYTES;
            for (ch, (out, tmp)) in dst
                .chunks_exact_mut(plane)
                .zip(tmp.chunks_exact(n * ow))
                .enumerate()
            {
                for (y, out) in out.chunks_exact_mut(ow).enumerate() {
                    let (start, k) = self.vertical.taps(y);
                    vertical_f32::<SIMD>(tmp, ow, start - first, k, lut.table(ch), out, stream);
                }
            }
            #[cfg(target_arch = "x86_64")]
            if stream {
                // SAFETY: SSE (every x86-64 CPU). Orders the streaming stores before whatever
                // hands the batch on.
                unsafe { std::arch::x86_64::_mm_sfence() };
            }
        } else {
            // The vertical pass over the source columns the output needs (interleaved, as
            // `resample`), then the horizontal pass of each row into three u8 rows (flipped).
            let (c0, _) = self.horizontal.taps(0);
            let (s1, k1) = self.horizontal.taps(ow - 1);
            let tmp_len = (s1 + k1.len() - c0) * C;
            grow(&mut self.tmp, oh * tmp_len);
            let tmp = &mut self.tmp[..oh * tmp_len];
            grow(&mut self.row, C * ow);
            let from = at(0) + c0 * C;
            for (r, out) in tmp.chunks_exact_mut(tmp_len).enumerate() {
                let (start, k) = self.vertical.taps(r);
                vertical_row(&src.pixels[from..], stride, start, k, &mut self.acc, out);
            }
            let (r0, rest) = self.row[..C * ow].split_at_mut(ow);
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
                    lut.lookup(
                        ch,
                        r,
                        &mut dst[ch * plane + y * ow..ch * plane + (y + 1) * ow],
                    );
                }
            }
        }
        true
    }
}

/// The size of one sample's f32 output from which the fused path writes it with streaming
/// stores.
const STREAM_BYTES: usize = 256 << 10;

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

/// One output row of the vertical pass of one u8 plane (rows of `stride` values), through the
/// channel's table: `out[x] = table[clip8(Σ_t k[t] · plane[(start + t) · stride + x])]`. With
/// `stream`, the x86 kernel's stores bypass the cache (the caller fences).
#[inline(always)]
fn vertical_f32<const SIMD: bool>(
    plane: &[u8],
    stride: usize,
    start: usize,
    k: &[i32],
    table: &[f32; 256],
    out: &mut [f32],
    stream: bool,
) {
    let n = out.len();
    assert!(n <= stride && (start + k.len()) * stride <= plane.len());
    #[allow(unused_mut)] // only the x86 kernel sets it
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if SIMD {
        // SAFETY: AVX2 (SIMD is only true there); the bounds are asserted above.
        done = unsafe { x86::vertical_f32(plane, stride, start, k, table, out, stream) };
    }
    for x in done..n {
        let mut acc = HALF;
        for (t, &w) in k.iter().enumerate() {
            acc += plane[(start + t) * stride + x] as i32 * w;
        }
        out[x] = table[clip8(acc) as usize];
    }
}
