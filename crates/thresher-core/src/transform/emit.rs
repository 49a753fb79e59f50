//! The last step of every transform: copy a window of an 8-bit HWC image into the batch slot,
//! with zero padding where the window leaves the image, an optional horizontal flip, and the
//! conversion to the batch's dtype (u8, or f32 through a per-channel lookup table that folds in
//! the /255 and the normalisation) and layout (NCHW planes or NHWC).

use super::lut::Lut;
use crate::source::SampleView;

/// Where and how to write.
pub(crate) struct Emit {
    /// Output pixel (y, x) of the window is image pixel (y + top, x + left) (before the flip).
    pub top: isize,
    pub left: isize,
    pub height: usize,
    pub width: usize,
    pub flip: bool,
    /// NCHW (planes) rather than NHWC.
    pub planar: bool,
}

/// The identity table: u8 output goes through the same code as f32.
static IDENTITY: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i as u8;
        i += 1;
    }
    t
};

impl Emit {
    /// Writes `src`'s window as bytes.
    pub(crate) fn to_u8(&self, src: &SampleView<'_>, dst: &mut [u8]) {
        if self.is_identity(src) {
            dst.copy_from_slice(src.pixels);
            return;
        }
        match src.channels {
            1 => self.write::<u8, 1>(src, dst, [&IDENTITY]),
            3 => self.write::<u8, 3>(src, dst, [&IDENTITY; 3]),
            _ => self.write_any(src, dst, |_, v| v),
        }
    }

    /// Whether the window is the whole image, unflipped, in the image's own layout: then the
    /// output is the input, value by value.
    fn is_identity(&self, src: &SampleView<'_>) -> bool {
        !self.flip
            && (!self.planar || src.channels == 1)
            && self.top == 0
            && self.left == 0
            && (src.height, src.width) == (self.height, self.width)
    }

    /// Writes `src`'s window as f32 through `lut`.
    pub(crate) fn to_f32(&self, src: &SampleView<'_>, lut: &Lut, dst: &mut [f32]) {
        if src.channels == 1 && self.is_identity(src) {
            lut.lookup(0, src.pixels, dst);
            return;
        }
        match src.channels {
            1 => self.write::<f32, 1>(src, dst, [lut.table(0)]),
            3 => self.write::<f32, 3>(src, dst, [lut.table(0), lut.table(1), lut.table(2)]),
            _ => self.write_any(src, dst, |ch, v| lut.values()[ch * 256 + v as usize]),
        }
    }

    /// Window columns [a, b) fall inside the image; the output columns they land on, [xa, xb)
    /// (mirrored by the flip: output column x shows window column ow − 1 − x).
    fn spans(&self, src_width: usize) -> (usize, usize, usize, usize) {
        let ow = self.width;
        let a = (-self.left).clamp(0, ow as isize) as usize;
        let b = (src_width as isize - self.left).clamp(a as isize, ow as isize) as usize;
        let (xa, xb) = if self.flip { (ow - b, ow - a) } else { (a, b) };
        (a, b, xa, xb)
    }

    /// The source row of output row y, if the window's row y is inside the image.
    fn row<'a>(&self, src: &SampleView<'a>, y: usize) -> Option<&'a [u8]> {
        let sy = y as isize + self.top;
        let len = src.width * src.channels;
        (sy >= 0 && (sy as usize) < src.height)
            .then(|| &src.pixels[sy as usize * len..(sy as usize + 1) * len])
    }

    /// C channels through one table each: a pass over each row's pixels writes every plane
    /// (NCHW) or the interleaved pixels (NHWC).
    #[inline(always)]
    fn write<T: Copy, const C: usize>(
        &self,
        src: &SampleView<'_>,
        dst: &mut [T],
        tables: [&[T; 256]; C],
    ) {
        let (oh, ow) = (self.height, self.width);
        debug_assert_eq!(dst.len(), oh * ow * C);
        let (a, b, xa, xb) = self.spans(src.width);
        let zero: [T; C] = std::array::from_fn(|ch| tables[ch][0]);
        let plane = oh * ow;
        for y in 0..oh {
            // The source pixels of window columns [a, b); none when the window lies wholly
            // beside the image (a == b, where `a + left` may be past the row's end).
            let row = self.row(src, y).filter(|_| b > a);
            let span = row.map(|r| {
                let from = (a as isize + self.left) as usize * C;
                &r[from..from + (b - a) * C]
            });
            let (xa, xb) = if span.is_some() { (xa, xb) } else { (0, 0) };
            if self.planar && C > 1 {
                for (ch, &z) in zero.iter().enumerate() {
                    let line = &mut dst[ch * plane + y * ow..ch * plane + (y + 1) * ow];
                    line[..xa].fill(z);
                    line[xb..].fill(z);
                }
                let Some(span) = span else { continue };
                let at = y * ow + xa;
                let n = xb - xa;
                // C slices of the planes' rows, one per channel.
                let mut rest = &mut dst[at..];
                let mut lines: [&mut [T]; C] = std::array::from_fn(|_| &mut [][..]);
                for (ch, l) in lines.iter_mut().enumerate() {
                    let skip = if ch == 0 { 0 } else { plane - n };
                    let (line, tail) = std::mem::take(&mut rest)[skip..].split_at_mut(n);
                    *l = line;
                    rest = tail;
                }
                if self.flip {
                    for (i, p) in span.chunks_exact(C).rev().enumerate() {
                        for ch in 0..C {
                            lines[ch][i] = tables[ch][p[ch] as usize];
                        }
                    }
                } else {
                    for (i, p) in span.chunks_exact(C).enumerate() {
                        for ch in 0..C {
                            lines[ch][i] = tables[ch][p[ch] as usize];
                        }
                    }
                }
            } else {
                let line = &mut dst[y * ow * C..(y + 1) * ow * C];
                let (before, rest) = line.split_at_mut(xa * C);
                let (inside, after) = rest.split_at_mut((xb - xa) * C);
                for px in before.chunks_exact_mut(C).chain(after.chunks_exact_mut(C)) {
                    px.copy_from_slice(&zero);
                }
                let Some(span) = span else { continue };
                let out = inside.chunks_exact_mut(C);
                if self.flip {
                    for (d, p) in out.zip(span.chunks_exact(C).rev()) {
                        for ch in 0..C {
                            d[ch] = tables[ch][p[ch] as usize];
                        }
                    }
                } else {
                    for (d, p) in out.zip(span.chunks_exact(C)) {
                        for ch in 0..C {
                            d[ch] = tables[ch][p[ch] as usize];
                        }
                    }
                }
            }
        }
    }

    /// Any channel count, one value at a time.
    fn write_any<T: Copy>(
        &self,
        src: &SampleView<'_>,
        dst: &mut [T],
        conv: impl Fn(usize, u8) -> T,
    ) {
        let c = src.channels;
        let (oh, ow) = (self.height, self.width);
        debug_assert_eq!(dst.len(), oh * ow * c);
        let (_, _, xa, xb) = self.spans(src.width);
        for y in 0..oh {
            let row = self.row(src, y);
            for x in 0..ow {
                let wx = if self.flip { ow - 1 - x } else { x };
                let sx = (wx as isize + self.left) as usize;
                let inside = row.is_some() && (xa..xb).contains(&x);
                for ch in 0..c {
                    let v = if inside {
                        row.map_or(0, |r| r[sx * c + ch])
                    } else {
                        0
                    };
                    let at = if self.planar {
                        ch * oh * ow + y * ow + x
                    } else {
                        (y * ow + x) * c + ch
                    };
                    dst[at] = conv(ch, v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2×3 RGB image whose pixel (y, x) is (10y + x, 100 + 10y + x, 200 + y).
    fn img() -> Vec<u8> {
        let mut v = Vec::new();
        for y in 0..2u8 {
            for x in 0..3u8 {
                v.extend([10 * y + x, 100 + 10 * y + x, 200 + y]);
            }
        }
        v
    }

    fn run(e: &Emit, px: &[u8]) -> Vec<u8> {
        let src = SampleView {
            pixels: px,
            height: 2,
            width: 3,
            channels: 3,
        };
        let mut out = vec![9; e.height * e.width * 3];
        e.to_u8(&src, &mut out);
        out
    }

    #[test]
    fn padding_flip_and_planes() {
        let px = img();
        // A 3×4 window starting one pixel up and left: row 0 and column 0 are padding.
        let e = Emit {
            top: -1,
            left: -1,
            height: 3,
            width: 4,
            flip: false,
            planar: true,
        };
        let out = run(&e, &px);
        let r = &out[..12];
        assert_eq!(r, [0, 0, 0, 0, 0, 0, 1, 2, 0, 10, 11, 12]);
        // Flipped, the padding column moves to the right.
        let e = Emit { flip: true, ..e };
        let out = run(&e, &px);
        assert_eq!(&out[..12], [0, 0, 0, 0, 2, 1, 0, 0, 12, 11, 10, 0]);
        // NHWC, flip, no padding: pixels in reversed column order.
        let e = Emit {
            top: 0,
            left: 0,
            height: 2,
            width: 3,
            flip: true,
            planar: false,
        };
        let out = run(&e, &px);
        assert_eq!(&out[..9], [2, 102, 200, 1, 101, 200, 0, 100, 200]);
        // The window entirely outside: all padding.
        let e = Emit {
            top: 5,
            left: 0,
            height: 1,
            width: 2,
            flip: false,
            planar: false,
        };
        assert_eq!(run(&e, &px), [0; 6]);
        // Wholly left or right of the image (a random crop whose padding exceeds the image),
        // in every layout, flipped or not: all padding, with no read past a row.
        for left in [-9, -3, 3, 4, 9] {
            for flip in [false, true] {
                for planar in [false, true] {
                    let e = Emit {
                        top: 0,
                        left,
                        height: 2,
                        width: 3,
                        flip,
                        planar,
                    };
                    assert_eq!(run(&e, &px), [0; 18], "left {left} flip {flip}");
                    let src = SampleView {
                        pixels: &px,
                        height: 2,
                        width: 3,
                        channels: 3,
                    };
                    let mut out = vec![9.0; 18];
                    e.to_f32(
                        &src,
                        &Lut::normalize(3, &[0.0; 3], &[1.0; 3]).unwrap(),
                        &mut out,
                    );
                    assert_eq!(out, [0.0; 18]);
                }
            }
        }
    }

    #[test]
    fn fast_paths_equal_the_general_one() {
        let px: Vec<u8> = (0..5 * 7 * 3).map(|i| (i * 37 % 251) as u8).collect();
        let lut = Lut::normalize(3, &[0.5, 0.25, 0.75], &[0.5, 2.0, 0.25]).unwrap();
        let src = SampleView {
            pixels: &px,
            height: 5,
            width: 7,
            channels: 3,
        };
        for (top, left, h, w) in [
            (0, 0, 5, 7),
            (-2, -3, 9, 12),
            (1, 2, 3, 3),
            (3, 6, 4, 4),
            (-9, 0, 2, 2),
        ] {
            for flip in [false, true] {
                for planar in [false, true] {
                    let e = Emit {
                        top,
                        left,
                        height: h,
                        width: w,
                        flip,
                        planar,
                    };
                    let (mut fast, mut slow) = (vec![0u8; h * w * 3], vec![1u8; h * w * 3]);
                    e.to_u8(&src, &mut fast);
                    e.write_any(&src, &mut slow, |_, v| v);
                    assert_eq!(fast, slow, "{top} {left} {h} {w} {flip} {planar}");
                    let (mut fast, mut slow) = (vec![0f32; h * w * 3], vec![1f32; h * w * 3]);
                    e.to_f32(&src, &lut, &mut fast);
                    e.write_any(&src, &mut slow, |ch, v| lut.values()[ch * 256 + v as usize]);
                    assert_eq!(fast, slow, "{top} {left} {h} {w} {flip} {planar}");
                }
            }
        }
    }
}
