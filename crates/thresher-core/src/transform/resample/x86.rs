//! The horizontal pass for RGB and RGBA with SSE4.1: a pixel's channels are the lanes of one
//! vector, so a tap is one load, one widening, one multiply and one add; the rounding and
//! clamping are Pillow's (`>> 22`, then saturation to 0..=255). Also the AVX2 kernels of the
//! fused f32 path (`fused`): the horizontal pass into three planes, and the vertical pass
//! through a channel's table.

use std::arch::x86_64::*;
use std::ops::Range;

use super::coeffs::{Coeffs, HALF, PRECISION_BITS};

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
        let [r, g, b] = super::coeffs::pixel3(line, origin, co, xx);
        put(xx, u32::from_le_bytes([r, g, b, 0]));
    }
}

/// `vertical_f32` with AVX2, sixteen values a step, two taps at a time by 16-bit
/// multiply-adds: the two rows' bytes interleaved and widened make the (row t, row t + 1)
/// pairs, and each weight is split as k = 2048·hi + lo, as in `planes`, so the sums are
/// Pillow's; the rounded, clamped sums then index the table by two gathers. Returns how many
/// leading values it wrote (the rest, under sixteen, are the caller's). With `stream`, and
/// `out` 32-byte aligned, the stores are non-temporal (the caller fences).
#[target_feature(enable = "avx2")]
pub(super) unsafe fn vertical_f32(
    plane: &[u8],
    stride: usize,
    start: usize,
    k: &[i32],
    table: &[f32; 256],
    out: &mut [f32],
    stream: bool,
) -> usize {
    // Per tap pair, the 16-bit (hi, lo) parts of taps 2p (low half) and 2p + 1 (high half);
    // an odd last tap is paired with a zero weight (and a zero row).
    let split = |p: usize| {
        let a = k[2 * p];
        let b = k.get(2 * p + 1).copied().unwrap_or(0);
        // The weights are in 0..=2^22 (Pillow's triangle filter): both parts fit.
        debug_assert!((0..=1 << PRECISION_BITS).contains(&a));
        debug_assert!((0..=1 << PRECISION_BITS).contains(&b));
        (
            ((b >> 11) << 16) | (a >> 11),
            ((b & 2047) << 16) | (a & 2047),
        )
    };
    // Split once per row into a table when the taps fit it (up to 64: a 32× shrink), else
    // per step.
    const MAX_PAIRS: usize = 32;
    let pairs = k.len().div_ceil(2);
    let tabled = pairs <= MAX_PAIRS;
    let (mut wh, mut wl) = ([0i32; MAX_PAIRS], [0i32; MAX_PAIRS]);
    if tabled {
        for p in 0..pairs {
            (wh[p], wl[p]) = split(p);
        }
    }
    let whole = k.len() / 2;
    let n = out.len() / 16 * 16;
    let (half, zero, top) = (
        _mm256_set1_epi32(HALF),
        _mm256_setzero_si256(),
        _mm256_set1_epi32(255),
    );
    let p = plane.as_ptr();
    let stream = stream && (out.as_ptr() as usize).is_multiple_of(32);
    for x in (0..n).step_by(16) {
        let (mut h0, mut h1, mut l0, mut l1) = (zero, zero, zero, zero);
        for q in 0..pairs {
            let row = p.add((start + 2 * q) * stride + x);
            // SAFETY: x + 16 ≤ n ≤ stride and rows start..start + k.len() are inside the
            // plane (the caller's assertion); an odd last tap's partner row is not read.
            let a = _mm_loadu_si128(row as *const __m128i);
            let b = if q < whole {
                _mm_loadu_si128(row.add(stride) as *const __m128i)
            } else {
                _mm_setzero_si128()
            };
            let x0 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(a, b));
            let x1 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(a, b));
            let (h, l) = if tabled { (wh[q], wl[q]) } else { split(q) };
            let (kh, kl) = (_mm256_set1_epi32(h), _mm256_set1_epi32(l));
            h0 = _mm256_add_epi32(h0, _mm256_madd_epi16(x0, kh));
            l0 = _mm256_add_epi32(l0, _mm256_madd_epi16(x0, kl));
            h1 = _mm256_add_epi32(h1, _mm256_madd_epi16(x1, kh));
            l1 = _mm256_add_epi32(l1, _mm256_madd_epi16(x1, kl));
        }
        // Pillow's clip8 of each sum, then its table entry.
        let value = |h, l| {
            let acc = _mm256_add_epi32(_mm256_add_epi32(half, _mm256_slli_epi32::<11>(h)), l);
            let r = _mm256_srai_epi32::<{ PRECISION_BITS as i32 }>(acc);
            let idx = _mm256_min_epi32(_mm256_max_epi32(r, zero), top);
            _mm256_i32gather_ps::<4>(table.as_ptr(), idx)
        };
        // SAFETY: x + 16 ≤ out.len().
        let o = out.as_mut_ptr().add(x);
        if stream {
            _mm256_stream_ps(o, value(h0, l0));
            _mm256_stream_ps(o.add(8), value(h1, l1));
        } else {
            _mm256_storeu_ps(o, value(h0, l0));
            _mm256_storeu_ps(o.add(8), value(h1, l1));
        }
    }
    n
}
