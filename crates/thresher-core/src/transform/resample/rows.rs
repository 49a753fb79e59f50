//! The portable one-row passes of `resample`: a vertical row over any channel count, and a
//! horizontal row with a fixed tap count (the SSE4.1 kernel of `x86` for RGB and RGBA when the
//! CPU has AVX2) or any tap count.

use std::ops::Range;

use super::coeffs::{clip8, Coeffs, HALF};
#[cfg(target_arch = "x86_64")]
use super::x86;

/// One output row of the vertical pass: `out[i] = Σ_t k[t] · src[(start + t) · stride + i]`,
/// over `out.len()` values (pixels × channels).
#[inline(always)]
pub(super) fn vertical_row(
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
pub(super) fn horizontal_row<const SIMD: bool>(
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
