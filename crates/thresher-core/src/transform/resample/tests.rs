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
    let lut = crate::transform::lut::Lut::normalize(3, &[0.4, 0.41, 0.42], &[0.23]).unwrap();
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
                r.resample_rgb_f32_planar(&v, &job, &lut, flip, &mut got)
            } else {
                r.fused_any::<false>(&v, &job, &lut, flip, &mut got)
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

/// The AVX2 vertical pass of one plane equals Pillow's sum, rounding and clamping, through
/// the table, for every tap count up to its weight table's limit (odd counts included) and
/// past it (where it splits the weights per step), at widths with and without a tail.
#[cfg(target_arch = "x86_64")]
#[test]
fn vertical_f32_kernel_equals_the_scalar_sum() {
    use super::coeffs::{clip8, HALF, PRECISION_BITS};
    if !std::arch::is_x86_feature_detected!("avx2") {
        return;
    }
    // Entries that differ in every bit, so a wrong index cannot give the right value.
    let table: [f32; 256] =
        std::array::from_fn(|v| f32::from_bits((v as u32).wrapping_mul(0x9E37_79B9)));
    let mut rng = crate::rng::Rng::new(5, crate::rng::Stream::Augment, 0, 0);
    for taps in 1..=70usize {
        for width in [0usize, 1, 15, 16, 17, 40, 224] {
            let stride = width + rng.below(5) as usize;
            let rows = taps + 3;
            // Bright planes (255 is common) and weights summing to up to 2^23, so that the
            // clamp at 255 is reached; every weight within Pillow's 0..=2^22.
            let plane: Vec<u8> = (0..rows * stride)
                .map(|_| {
                    if rng.below(3) == 0 {
                        255
                    } else {
                        rng.below(256) as u8
                    }
                })
                .collect();
            let budget = (1u64 << (PRECISION_BITS + 1)) / taps as u64;
            let k: Vec<i32> = (0..taps)
                .map(|_| rng.below(budget + 1).min(1 << PRECISION_BITS) as i32)
                .collect();
            let start = rng.below(4) as usize;
            let want: Vec<u32> = (0..width)
                .map(|x| {
                    let acc = k.iter().enumerate().fold(HALF, |acc, (t, &w)| {
                        acc + plane[(start + t) * stride + x] as i32 * w
                    });
                    table[clip8(acc) as usize].to_bits()
                })
                .collect();
            // Streaming stores (even tap counts) at a 32-byte aligned row, plain stores at a
            // misaligned one.
            let stream = taps.is_multiple_of(2);
            let mut buf = vec![f32::NAN; width + 9];
            let aligned = (32 - buf.as_ptr() as usize % 32) % 32 / 4;
            let at = if stream { aligned } else { aligned + 1 };
            let got = &mut buf[at..at + width];
            // SAFETY: AVX2 checked above; rows start..start + taps are inside the plane.
            let done =
                unsafe { super::x86::vertical_f32(&plane, stride, start, &k, &table, got, stream) };
            assert_eq!(done, width / 16 * 16, "taps {taps} width {width}");
            let got: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
            assert_eq!(got[..done], want[..done], "taps {taps} width {width}");
            assert!(
                got[done..].iter().all(|&b| b == f32::NAN.to_bits()),
                "wrote past what it reports"
            );
        }
    }
}
