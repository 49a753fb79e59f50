//! Where crops fall and what size resizes make: torchvision's (v1, PIL) parameter logic,
//! transcribed. The randomness comes from the caller's per-sample generator, so the numbers
//! differ from torchvision's (it draws from torch's global generator) while the distributions
//! and the rules (rounding, fallbacks) are the same.

use crate::rng::Rng;

/// Python's `round()`: halves go to the even neighbour.
pub(crate) fn round_half_even(x: f64) -> i64 {
    x.round_ties_even() as i64
}

/// `Resize(n)` with an int: the shorter side becomes `n` and the longer
/// `int(n * long / short)` (torchvision's `_compute_resized_output_size`). Returns (h, w).
pub(crate) fn resize_shorter(h: usize, w: usize, n: usize) -> (usize, usize) {
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = ((n * long) as f64 / short as f64) as usize;
    if w <= h {
        (new_long, n)
    } else {
        (n, new_long)
    }
}

/// A crop window in image coordinates; it may reach outside the image, where the pixels are
/// zero (padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub top: isize,
    pub left: isize,
    pub height: usize,
    pub width: usize,
}

/// `CenterCrop`: an image smaller than the crop is first padded with zeros, `(crop − size) // 2`
/// before; otherwise the offset is `round((size − crop) / 2)` (Python's round).
pub(crate) fn center_crop(h: usize, w: usize, ch: usize, cw: usize) -> Window {
    let offset = |size: usize, crop: usize| -> isize {
        if crop > size {
            -(((crop - size) / 2) as isize)
        } else {
            round_half_even((size - crop) as f64 / 2.0) as isize
        }
    };
    Window {
        top: offset(h, ch),
        left: offset(w, cw),
        height: ch,
        width: cw,
    }
}

/// Zero padding on each side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pad {
    pub left: usize,
    pub top: usize,
    pub right: usize,
    pub bottom: usize,
}

/// `RandomCrop(size, padding)`: pads, then draws the top-left corner uniformly; `None` when the
/// padded image is smaller than the crop (torchvision raises there too).
pub(crate) fn random_crop(
    h: usize,
    w: usize,
    th: usize,
    tw: usize,
    pad: Pad,
    rng: &mut Rng,
) -> Option<Window> {
    let (ph, pw) = (h + pad.top + pad.bottom, w + pad.left + pad.right);
    if ph < th || pw < tw {
        return None;
    }
    let (i, j) = if ph == th && pw == tw {
        (0, 0)
    } else {
        let i = rng.below((ph - th + 1) as u64) as usize;
        let j = rng.below((pw - tw + 1) as u64) as usize;
        (i, j)
    };
    Some(Window {
        top: i as isize - pad.top as isize,
        left: j as isize - pad.left as isize,
        height: th,
        width: tw,
    })
}

/// `RandomResizedCrop.get_params`: up to ten tries at a box of area `scale` × the image's and
/// aspect ratio log-uniform in `ratio`, placed uniformly; then the central fallback (the whole
/// image, or its largest central box within the ratio range). Returns (top, left, h, w).
pub(crate) fn random_resized_crop(
    h: usize,
    w: usize,
    scale: [f64; 2],
    ratio: [f64; 2],
    rng: &mut Rng,
) -> (usize, usize, usize, usize) {
    let area = (h * w) as f64;
    let (log_r0, log_r1) = (ratio[0].ln(), ratio[1].ln());
    for _ in 0..10 {
        let target_area = area * (scale[0] + (scale[1] - scale[0]) * rng.unit_f64());
        let aspect = (log_r0 + (log_r1 - log_r0) * rng.unit_f64()).exp();
        let cw = round_half_even((target_area * aspect).sqrt());
        let ch = round_half_even((target_area / aspect).sqrt());
        if 0 < cw && cw as usize <= w && 0 < ch && ch as usize <= h {
            let (cw, ch) = (cw as usize, ch as usize);
            let i = rng.below((h - ch + 1) as u64) as usize;
            let j = rng.below((w - cw + 1) as u64) as usize;
            return (i, j, ch, cw);
        }
    }
    let in_ratio = w as f64 / h as f64;
    let (rmin, rmax) = (ratio[0].min(ratio[1]), ratio[0].max(ratio[1]));
    let (ch, cw) = if in_ratio < rmin {
        ((round_half_even(w as f64 / rmin) as usize).clamp(1, h), w)
    } else if in_ratio > rmax {
        (h, (round_half_even(h as f64 * rmax) as usize).clamp(1, w))
    } else {
        (h, w)
    };
    ((h - ch) / 2, (w - cw) / 2, ch, cw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Stream;

    #[test]
    fn resize_and_center_crop_as_torchvision() {
        // torchvision: Resize(256) of 500×375 (w×h) → 341×256; of 375×500 → 256×341.
        assert_eq!(resize_shorter(375, 500, 256), (256, 341));
        assert_eq!(resize_shorter(500, 375, 256), (341, 256));
        assert_eq!(resize_shorter(32, 32, 24), (24, 24));
        // CenterCrop: (5 − 2) / 2 = 1.5 rounds to 2; (4 − 1) / 2 = 1.5 → 2; 2.5 → 2.
        assert_eq!(center_crop(5, 4, 2, 1).top, 2);
        assert_eq!(center_crop(5, 4, 2, 1).left, 2);
        assert_eq!(center_crop(7, 7, 2, 2).top, 2);
        // Crop larger than the image: pad (3 − 1) // 2 = 1 before.
        let w = center_crop(1, 10, 3, 4);
        assert_eq!((w.top, w.left), (-1, 3));
    }

    #[test]
    fn random_crop_covers_every_offset() {
        let pad = Pad {
            left: 4,
            top: 4,
            right: 4,
            bottom: 4,
        };
        let mut seen = std::collections::HashSet::new();
        for id in 0..2000 {
            let mut rng = Rng::new(1, Stream::Augment, 0, id);
            let w = random_crop(32, 32, 32, 32, pad, &mut rng).unwrap();
            assert!((-4..=4).contains(&w.top) && (-4..=4).contains(&w.left));
            seen.insert((w.top, w.left));
        }
        assert_eq!(seen.len(), 81);
        let mut rng = Rng::new(1, Stream::Augment, 0, 0);
        assert!(random_crop(3, 3, 8, 8, Pad::default(), &mut rng).is_none());
    }

    #[test]
    fn random_resized_crop_stays_inside_and_respects_ranges() {
        for id in 0..2000 {
            let mut rng = Rng::new(2, Stream::Augment, 0, id);
            let (i, j, h, w) =
                random_resized_crop(375, 500, [0.08, 1.0], [0.75, 4.0 / 3.0], &mut rng);
            assert!(h >= 1 && w >= 1 && i + h <= 375 && j + w <= 500);
            let area = (h * w) as f64 / (375.0 * 500.0);
            assert!((0.07..=1.01).contains(&area), "{area}");
        }
        // Impossible scale: falls back to the central box within the ratio range.
        let mut rng = Rng::new(2, Stream::Augment, 0, 0);
        assert_eq!(
            random_resized_crop(100, 400, [5.0, 6.0], [0.75, 4.0 / 3.0], &mut rng),
            (0, 133, 100, 133)
        );
        assert_eq!(
            random_resized_crop(400, 100, [5.0, 6.0], [0.75, 4.0 / 3.0], &mut rng),
            (133, 0, 133, 100)
        );
        assert_eq!(
            random_resized_crop(100, 110, [5.0, 6.0], [0.75, 4.0 / 3.0], &mut rng),
            (0, 0, 100, 110)
        );
    }
}
