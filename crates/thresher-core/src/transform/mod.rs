//! Transforms: turn a decoded HWC u8 sample into the batch layout, with torchvision's
//! semantics (v1 transforms on PIL images): an optional `resize`, at most one crop
//! (`center_crop`, `random_crop` with zero `padding`, `random_resized_crop`), an optional
//! horizontal flip, then u8 or f32 (÷255 and per-channel normalisation), NCHW or NHWC. The fixed
//! order is torchvision's usual recipe order: resize → crop → flip → ToTensor → Normalize.
//!
//! No I/O. Randomness comes from `Rng::new(seed, Stream::Augment, epoch, id)`, a generator per
//! sample, so a sample's augmentation does not depend on which worker made it or when. The f32
//! path is a per-channel lookup table of the 256 byte values, so normalising costs one load per
//! value. This module binds a config to a source (`Transform::new`) and runs it (`apply`); the
//! config types and their checks are `config`. Resizing is Pillow's bilinear filter, bit for
//! bit (`resample`); geometry is torchvision's (`geometry`); the copy into the slot is `emit`.
//! When a resize ends in f32 NCHW RGB (the ImageNet training recipe), the resampler writes the
//! normalised planes itself, the flip folded into its horizontal pass, the same values as
//! resampling to u8 and then `emit`, without the u8 image between.

mod config;
mod emit;
mod geometry;
mod resample;

pub use config::{
    Dtype, Layout, Normalize, Padding, RandomCropConfig, RandomResizedCropConfig, Size,
    TransformConfig,
};

use crate::error::{Error, Result};
use crate::rng::{Rng, Stream};
use crate::source::{scaled_box, Placed, SampleView, Want};
use emit::Emit;
use geometry::{Pad, Window};
use resample::{Frac, Job, Rect, Resampler};

/// The crop step, bound.
#[derive(Clone, Debug, PartialEq)]
enum Crop {
    None,
    Center(usize, usize),
    Random(usize, usize, Pad),
    RandomResized {
        size: (usize, usize),
        scale: [f64; 2],
        ratio: [f64; 2],
    },
}

/// Buffers a worker reuses from sample to sample (no allocation in steady state).
#[derive(Debug, Default)]
pub struct Workspace {
    resampler: Resampler,
    /// The resampled pixels of the output window.
    region: Vec<u8>,
    /// A whole resized image, when `random_resized_crop` follows `resize`.
    resized: Vec<u8>,
}

/// A transform bound to the source's channels (and shape, when fixed).
#[derive(Clone, Debug)]
pub struct Transform {
    dtype: Dtype,
    layout: Layout,
    /// Channels of input and output.
    channels: usize,
    /// (height, width) of every output sample.
    out: (usize, usize),
    resize: Option<Size>,
    crop: Crop,
    hflip: f64,
    seed: u64,
    /// For f32: `lut[c * 256 + v]` is the output for byte v in channel c.
    lut: Vec<f32>,
}

/// The longest side a sample may have once resized (before any crop): far above any image a
/// crop then takes a window of, and small enough for the resampler's tables (a few f64 per
/// output pixel of one side).
const MAX_RESIZED_SIDE: usize = 1 << 20;

impl Transform {
    /// Binds `config` to a source whose samples have `channels` channels and, when `shape` is
    /// `Some`, all that (height, width, channels). A variable-size source needs a transform that
    /// fixes the output size (a crop, or `resize` as [h, w]); the error says so.
    pub fn new(
        config: &TransformConfig,
        shape: Option<[usize; 3]>,
        channels: usize,
    ) -> Result<Self> {
        config.validate()?;
        let c = shape.map_or(channels, |s| s[2]);
        if c == 0 {
            return Err(Error::invalid("source: samples have no channels"));
        }
        let crop = if let Some(s) = config.center_crop {
            Crop::Center(s.square().0, s.square().1)
        } else if let Some(r) = &config.random_crop {
            let [left, top, right, bottom] = r.padding.0;
            let (h, w) = r.size.square();
            Crop::Random(
                h,
                w,
                Pad {
                    left,
                    top,
                    right,
                    bottom,
                },
            )
        } else if let Some(r) = &config.random_resized_crop {
            Crop::RandomResized {
                size: r.size.square(),
                scale: r.scale,
                ratio: r.ratio,
            }
        } else {
            Crop::None
        };
        let out = match (&crop, config.resize, shape) {
            (Crop::Center(h, w) | Crop::Random(h, w, _), _, _) => (*h, *w),
            (Crop::RandomResized { size, .. }, _, _) => *size,
            (Crop::None, Some(Size::Hw(h, w)), _) => (h, w),
            (Crop::None, Some(Size::One(n)), Some([h, w, _])) => geometry::resize_shorter(h, w, n),
            (Crop::None, None, Some([h, w, _])) => (h, w),
            (Crop::None, _, None) => {
                return Err(Error::invalid(
                    "config key `transform`: the source's images vary in size, so the transform \
                     must fix the output size: add `center_crop`, `random_crop` or \
                     `random_resized_crop`, or give `resize` as [height, width]",
                ))
            }
        };
        let mut lut = Vec::new();
        if config.dtype == Dtype::F32 {
            let (mean, std) = match &config.normalize {
                Some(n) => {
                    if n.mean.len() != 1 && n.mean.len() != c {
                        return Err(Error::invalid(format!(
                            "config key `transform.normalize`: {} values for {c} channels",
                            n.mean.len()
                        )));
                    }
                    (n.mean.clone(), n.std.clone())
                }
                None => (vec![0.0], vec![1.0]),
            };
            // One table entry per byte value and channel: a source claiming absurdly many
            // channels is refused here rather than aborting the allocation.
            if 256usize
                .checked_mul(c)
                .is_none_or(|len| lut.try_reserve_exact(len).is_err())
            {
                return Err(Error::invalid(format!(
                    "source: samples have {c} channels, too many for `transform.dtype` f32 here"
                )));
            }
            for ch in 0..c {
                let m = mean[ch.min(mean.len() - 1)];
                let s = std[ch.min(std.len() - 1)];
                lut.extend((0..256).map(|v| (v as f32 / 255.0 - m) / s));
            }
        }
        Ok(Transform {
            dtype: config.dtype,
            layout: config.layout,
            channels: c,
            out,
            resize: config.resize,
            crop,
            hflip: config.hflip,
            seed: 0,
            lut,
        })
    }

    /// Seeds the augmentation (the loader passes its config's `seed`).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// The per-sample output shape in the configured layout: [C, H, W] or [H, W, C].
    pub fn out_shape(&self) -> [usize; 3] {
        let ((h, w), c) = (self.out, self.channels);
        match self.layout {
            Layout::Nchw => [c, h, w],
            Layout::Nhwc => [h, w, c],
        }
    }

    /// Bytes one output sample takes.
    pub fn sample_bytes(&self) -> usize {
        self.out.0 * self.out.1 * self.channels * self.dtype.size()
    }

    /// `sample_bytes`, or `None` when it overflows (the loader checks it before the first).
    pub fn checked_sample_bytes(&self) -> Option<usize> {
        self.out
            .0
            .checked_mul(self.out.1)?
            .checked_mul(self.channels)?
            .checked_mul(self.dtype.size())
    }

    /// Whether any step draws random numbers.
    pub fn is_random(&self) -> bool {
        self.hflip > 0.0 || matches!(self.crop, Crop::Random(..) | Crop::RandomResized { .. })
    }

    /// Transforms sample `id` of epoch `epoch` into `out` (exactly one sample long). The
    /// random choices depend only on (seed, epoch, id).
    pub fn apply(
        &self,
        view: &SampleView<'_>,
        epoch: u64,
        id: u64,
        ws: &mut Workspace,
        out: Out<'_>,
    ) -> Result<()> {
        self.apply_placed(view, None, epoch, id, ws, out)
    }

    /// The box this transform takes from an image of `height × width` (before any pixel is
    /// decoded), for sources that can decode only that part (`Source::read_hinted`):
    /// `random_resized_crop` without `resize`. The same draws as `apply_placed` makes, so the
    /// box is the one it then uses.
    pub fn want(&self, height: usize, width: usize, epoch: u64, id: u64) -> Option<Want> {
        let Crop::RandomResized { size, scale, ratio } = &self.crop else {
            return None;
        };
        if self.resize.is_some() || height == 0 || width == 0 {
            return None;
        }
        let mut rng = Rng::new(self.seed, Stream::Augment, epoch, id);
        let (top, left, bh, bw) =
            geometry::random_resized_crop(height, width, *scale, *ratio, &mut rng);
        Some(Want {
            top,
            left,
            height: bh,
            width: bw,
            out_h: size.0,
            out_w: size.1,
        })
    }

    /// As `apply`, for pixels a source decoded for `want`: `placed` says where `view` sits in
    /// the (possibly reduced) image; `None` means `view` is the whole image.
    pub fn apply_placed(
        &self,
        view: &SampleView<'_>,
        placed: Option<Placed>,
        epoch: u64,
        id: u64,
        ws: &mut Workspace,
        out: Out<'_>,
    ) -> Result<()> {
        let c = view.channels;
        if c != self.channels || view.pixels.len() != view.height * view.width * c {
            return Err(Error::format(format!(
                "sample is {}×{}×{c} but the batch expects {} channels",
                view.height, view.width, self.channels
            )));
        }
        // The geometry is drawn on the whole image's size, wherever its pixels come from.
        let (h, w) = placed.map_or((view.height, view.width), |p| (p.full_h, p.full_w));
        if placed.is_some()
            && (self.resize.is_some() || !matches!(self.crop, Crop::RandomResized { .. }))
        {
            return Err(Error::format(
                "internal: a partly decoded image for a transform that takes no box",
            ));
        }
        let mut rng = self
            .is_random()
            .then(|| Rng::new(self.seed, Stream::Augment, epoch, id));
        let (rh, rw) = match self.resize {
            None => (h, w),
            Some(Size::One(n)) => geometry::resize_shorter(h, w, n),
            Some(Size::Hw(a, b)) => (a, b),
        };
        // Resize(N) keeps the aspect ratio, so a thin image's long side grows without bound
        // (1 × 60000 at N = 65536 is 65536 × 3932160000): the resampler's per-side tables would
        // not fit. Refused as this sample's error, like any sample that cannot be transformed.
        if rh.max(rw) > MAX_RESIZED_SIDE {
            return Err(Error::format(format!(
                "sample is {h}×{w}: `transform.resize` would make it {rh}×{rw}, a side above \
                 {MAX_RESIZED_SIDE}"
            )));
        }
        if rh == 0 || rw == 0 || h == 0 || w == 0 {
            return Err(Error::format(format!(
                "sample is {h}×{w}: too small to resize"
            )));
        }
        // The output window in the (resized) image, or the box a random_resized_crop takes.
        let (window, resized_crop) = match &self.crop {
            Crop::None => {
                if (rh, rw) != self.out {
                    return Err(Error::format(format!(
                        "sample is {h}×{w}×{c}{} but the batch expects {}×{}×{c}",
                        if self.resize.is_some() {
                            format!(" (resized to {rh}×{rw})")
                        } else {
                            String::new()
                        },
                        self.out.0,
                        self.out.1
                    )));
                }
                (
                    Window {
                        top: 0,
                        left: 0,
                        height: rh,
                        width: rw,
                    },
                    None,
                )
            }
            Crop::Center(ch, cw) => (geometry::center_crop(rh, rw, *ch, *cw), None),
            Crop::Random(th, tw, pad) => {
                let rng = rng.as_mut().expect("a random crop is random");
                let win = geometry::random_crop(rh, rw, *th, *tw, *pad, rng).ok_or_else(|| {
                    Error::format(format!(
                        "sample is {rh}×{rw} after padding {:?}, smaller than the random_crop \
                         size {th}×{tw}",
                        [pad.left, pad.top, pad.right, pad.bottom]
                    ))
                })?;
                (win, None)
            }
            Crop::RandomResized { size, scale, ratio } => {
                let rng = rng.as_mut().expect("a random crop is random");
                let b = geometry::random_resized_crop(rh, rw, *scale, *ratio, rng);
                let win = Window {
                    top: 0,
                    left: 0,
                    height: size.0,
                    width: size.1,
                };
                (win, Some(b))
            }
        };
        let flip = match rng.as_mut() {
            Some(rng) if self.hflip > 0.0 => rng.unit_f64() < self.hflip,
            _ => false,
        };
        let emit = |src: &SampleView<'_>, top: isize, left: isize, out: Out<'_>| {
            let e = Emit {
                top,
                left,
                height: self.out.0,
                width: self.out.1,
                flip,
                planar: self.layout == Layout::Nchw && c > 1,
            };
            match out {
                Out::U8(dst) => e.to_u8(src, dst),
                Out::F32(dst) => e.to_f32(src, &self.lut, dst),
            }
        };
        let full = |h, w| Rect {
            top: 0,
            left: 0,
            height: h,
            width: w,
        };
        let Workspace {
            resampler,
            region,
            resized,
        } = ws;
        match resized_crop {
            None if (rh, rw) == (h, w) => emit(view, window.top, window.left, out),
            None => {
                // Resize then crop: resample only the part of the resized image the window
                // covers (the rest of the window is padding).
                let clip = |start: isize, len: usize, size: usize| {
                    let a = start.clamp(0, size as isize) as usize;
                    let b = (start + len as isize).clamp(a as isize, size as isize) as usize;
                    a..b
                };
                let rows = clip(window.top, window.height, rh);
                let cols = clip(window.left, window.width, rw);
                let (top, left) = (
                    window.top - rows.start as isize,
                    window.left - cols.start as isize,
                );
                let (vh, vw) = (rows.len(), cols.len());
                let job = Job {
                    bx: full(h, w),
                    out_h: rh,
                    out_w: rw,
                    rows,
                    cols,
                    frac: None,
                };
                resampler.resample(view, &job, region);
                let src = SampleView {
                    pixels: region,
                    height: vh,
                    width: vw,
                    channels: c,
                };
                emit(&src, top, left, out);
            }
            Some((i, j, bh, bw)) => {
                let src = if (rh, rw) == (h, w) {
                    *view
                } else {
                    let job = Job {
                        bx: full(h, w),
                        out_h: rh,
                        out_w: rw,
                        rows: 0..rh,
                        cols: 0..rw,
                        frac: None,
                    };
                    resampler.resample(view, &job, resized);
                    SampleView {
                        pixels: resized,
                        height: rh,
                        width: rw,
                        channels: c,
                    }
                };
                let (oh, ow) = self.out;
                // Reduced decodes are resampled from the fractional box at their scale, as
                // Pillow's `resize(box=...)` after `draft`: rounding the box to whole pixels
                // there would move its edges by up to half a reduced pixel.
                let (bx, frac) = match placed {
                    None => (
                        Rect {
                            top: i,
                            left: j,
                            height: bh,
                            width: bw,
                        },
                        None,
                    ),
                    Some(p) => {
                        let s = p.scale;
                        let region = |top: usize, left: usize, height: usize, width: usize| Rect {
                            top,
                            left,
                            height,
                            width,
                        };
                        let want = Want {
                            top: i,
                            left: j,
                            height: bh,
                            width: bw,
                            out_h: oh,
                            out_w: ow,
                        };
                        let (t, l, sh, sw) = scaled_box(&want, s, h, w);
                        let (full_h, full_w) = (h.div_ceil(s), w.div_ceil(s));
                        // The box and, reduced, the filter's reach past it (under 2.5 pixels:
                        // the box is less than twice the output there).
                        let reach = if s == 1 { 0 } else { 3 };
                        let inside =
                            |a: usize, len: usize, off: usize, have: usize, full: usize| {
                                a.saturating_sub(reach) >= off
                                    && (a + len + reach).min(full) <= off + have
                            };
                        if !inside(t, sh, p.top, src.height, full_h)
                            || !inside(l, sw, p.left, src.width, full_w)
                        {
                            return Err(Error::format(format!(
                                "internal: the decoded region misses the crop box {want:?}"
                            )));
                        }
                        if s == 1 {
                            (region(t - p.top, l - p.left, sh, sw), None)
                        } else {
                            let f = |v: usize| (v as f64 / s as f64) as f32;
                            let frac = Frac {
                                x0: f(j),
                                y0: f(i),
                                x1: f(j + bw),
                                y1: f(i + bh),
                                full_w,
                                full_h,
                                off_x: p.left,
                                off_y: p.top,
                            };
                            (region(0, 0, src.height, src.width), Some(frac))
                        }
                    }
                };
                let job = Job {
                    bx,
                    out_h: oh,
                    out_w: ow,
                    rows: 0..oh,
                    cols: 0..ow,
                    frac,
                };
                // f32 RGB planes: the resampler writes them itself (no u8 image between).
                let out = match out {
                    Out::F32(dst) if self.layout == Layout::Nchw && c == 3 => {
                        let t = |ch: usize| -> &[f32; 256] {
                            self.lut[ch * 256..(ch + 1) * 256]
                                .try_into()
                                .expect("256 entries a channel")
                        };
                        if resampler.resample_rgb_f32_planar(
                            &src,
                            &job,
                            [t(0), t(1), t(2)],
                            flip,
                            dst,
                        ) {
                            return Ok(());
                        }
                        Out::F32(dst)
                    }
                    out => out,
                };
                resampler.resample(&src, &job, region);
                let src = SampleView {
                    pixels: region,
                    height: oh,
                    width: ow,
                    channels: c,
                };
                emit(&src, 0, 0, out);
            }
        }
        Ok(())
    }
}

/// `RandomResizedCrop`'s default box (scale 0.08–1, ratio 3/4–4/3), for timing the decoder.
#[cfg(test)]
pub(crate) fn random_resized_crop_for_test(
    h: usize,
    w: usize,
    rng: &mut Rng,
) -> (usize, usize, usize, usize) {
    geometry::random_resized_crop(h, w, [0.08, 1.0], [0.75, 4.0 / 3.0], rng)
}

/// Where one transformed sample goes.
pub enum Out<'a> {
    U8(&'a mut [u8]),
    F32(&'a mut [f32]),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dtype: Dtype, layout: Layout, norm: Option<(Vec<f32>, Vec<f32>)>) -> TransformConfig {
        TransformConfig {
            dtype,
            layout,
            normalize: norm.map(|(mean, std)| Normalize { mean, std }),
            ..Default::default()
        }
    }

    // A 1×2 image with 3 channels: pixel 0 = (10, 20, 30), pixel 1 = (40, 50, 60).
    const PX: [u8; 6] = [10, 20, 30, 40, 50, 60];
    fn view() -> SampleView<'static> {
        SampleView {
            pixels: &PX,
            height: 1,
            width: 2,
            channels: 3,
        }
    }

    #[test]
    fn u8_layouts() {
        let t = Transform::new(&cfg(Dtype::U8, Layout::Nchw, None), Some([1, 2, 3]), 3).unwrap();
        let mut out = [0u8; 6];
        t.apply(&view(), 0, 0, &mut Workspace::default(), Out::U8(&mut out))
            .unwrap();
        assert_eq!(out, [10, 40, 20, 50, 30, 60]);
        assert_eq!(t.out_shape(), [3, 1, 2]);
        let t = Transform::new(&cfg(Dtype::U8, Layout::Nhwc, None), Some([1, 2, 3]), 3).unwrap();
        t.apply(&view(), 0, 0, &mut Workspace::default(), Out::U8(&mut out))
            .unwrap();
        assert_eq!(out, PX);
        assert_eq!(t.out_shape(), [1, 2, 3]);
    }

    #[test]
    fn a_thin_image_resized_past_the_side_limit_is_this_samples_error() {
        // A variable-size source, Resize(65536) then a 4×4 crop: a 1×2 image would be resized
        // to 65536×131072 — fine — but a 1×20 one to 65536×1310720, a side above 2^20.
        let config = TransformConfig {
            dtype: Dtype::U8,
            resize: Some(Size::One(65536)),
            center_crop: Some(Size::One(4)),
            ..Default::default()
        };
        let t = Transform::new(&config, None, 3).unwrap();
        let mut out = [0u8; 48];
        let wide = [7u8; 60];
        let thin = SampleView {
            pixels: &wide,
            height: 1,
            width: 20,
            channels: 3,
        };
        let e = t
            .apply(&thin, 0, 0, &mut Workspace::default(), Out::U8(&mut out))
            .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Format);
        assert!(e.message().contains("transform.resize"), "{e}");
        t.apply(&view(), 0, 0, &mut Workspace::default(), Out::U8(&mut out))
            .unwrap();
    }

    #[test]
    fn f32_normalize_per_channel() {
        let norm = Some((vec![0.1, 0.2, 0.3], vec![0.5, 0.25, 2.0]));
        let t = Transform::new(&cfg(Dtype::F32, Layout::Nchw, norm), Some([1, 2, 3]), 3).unwrap();
        let mut out = [0f32; 6];
        t.apply(&view(), 0, 0, &mut Workspace::default(), Out::F32(&mut out))
            .unwrap();
        let want = |v: u8, m: f32, s: f32| (v as f32 / 255.0 - m) / s;
        let expect = [
            want(10, 0.1, 0.5),
            want(40, 0.1, 0.5),
            want(20, 0.2, 0.25),
            want(50, 0.2, 0.25),
            want(30, 0.3, 2.0),
            want(60, 0.3, 2.0),
        ];
        assert_eq!(out, expect);
        let t = Transform::new(&cfg(Dtype::F32, Layout::Nhwc, None), Some([1, 2, 3]), 3).unwrap();
        t.apply(&view(), 0, 0, &mut Workspace::default(), Out::F32(&mut out))
            .unwrap();
        assert_eq!(out, PX.map(|v| v as f32 / 255.0));
    }

    #[test]
    fn bad_configs() {
        let e = cfg(Dtype::U8, Layout::Nchw, Some((vec![0.5], vec![0.5])));
        assert!(e.validate().unwrap_err().message().contains("dtype"));
        let e = cfg(Dtype::F32, Layout::Nchw, Some((vec![0.5], vec![0.0])));
        assert!(e.validate().unwrap_err().message().contains("std"));
        let e = cfg(Dtype::F32, Layout::Nchw, Some((vec![0.5, 0.5], vec![1.0])));
        assert!(e.validate().is_err());
        let two = cfg(
            Dtype::F32,
            Layout::Nchw,
            Some((vec![0.5, 0.5], vec![1.0, 1.0])),
        );
        assert!(Transform::new(&two, Some([1, 2, 3]), 3).is_err());
        let t = Transform::new(&cfg(Dtype::U8, Layout::Nchw, None), Some([2, 2, 3]), 3).unwrap();
        assert!(t
            .apply(
                &view(),
                0,
                0,
                &mut Workspace::default(),
                Out::U8(&mut [0; 12])
            )
            .is_err());
    }
}
