//! Transforms: turn a decoded HWC u8 sample into the batch layout, with torchvision's
//! semantics (v1 transforms on PIL images): an optional `resize`, at most one crop
//! (`center_crop`, `random_crop` with zero `padding`, `random_resized_crop`), an optional
//! horizontal flip, then u8 or f32 (÷255 and per-channel normalisation), NCHW or NHWC. The fixed
//! order is torchvision's usual recipe order: resize → crop → flip → ToTensor → Normalize.
//!
//! No I/O. Randomness comes from `Rng::new(seed, Stream::Augment, epoch, id)`, a generator per
//! sample, so a sample's augmentation does not depend on which worker made it or when. The f32
//! path is a per-channel lookup table of the 256 byte values, so normalising costs one load per
//! value. This module binds a config to a source (`Transform::new`); running it on a sample
//! (`Transform::apply`) is `apply`; the config types and their checks are `config`. Resizing is
//! Pillow's bilinear filter, bit for bit (`resample`); geometry is torchvision's (`geometry`);
//! the copy into the slot is `emit`; the unit tests are `tests`.
//! When a resize ends in f32 NCHW RGB (the ImageNet training recipe), the resampler writes the
//! normalised planes itself, the flip folded into its horizontal pass, the same values as
//! resampling to u8 and then `emit`, without the u8 image between.

mod apply;
mod config;
mod emit;
mod geometry;
mod lut;
mod resample;
#[cfg(test)]
mod tests;

pub use config::{
    Dtype, Layout, Normalize, Padding, RandomCropConfig, RandomResizedCropConfig, Size,
    TransformConfig,
};

use crate::error::{Error, Result};
use geometry::Pad;
use lut::Lut;
use resample::Resampler;

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
    /// For f32: the output for each byte value and channel.
    lut: Option<Lut>,
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
        let lut = match config.dtype {
            Dtype::F32 => {
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
                Some(Lut::normalize(c, &mean, &std)?)
            }
            _ => None,
        };
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

    /// The f32 output's tables; only f32 output asks for them, and `new` builds them for it.
    fn lut(&self) -> &Lut {
        self.lut
            .as_ref()
            .expect("a transform with f32 output has its tables")
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
}

/// `RandomResizedCrop`'s default box (scale 0.08–1, ratio 3/4–4/3), for timing the decoder.
#[cfg(test)]
pub(crate) fn random_resized_crop_for_test(
    h: usize,
    w: usize,
    rng: &mut crate::rng::Rng,
) -> (usize, usize, usize, usize) {
    geometry::random_resized_crop(h, w, [0.08, 1.0], [0.75, 4.0 / 3.0], rng)
}

/// Where one transformed sample goes.
pub enum Out<'a> {
    U8(&'a mut [u8]),
    F32(&'a mut [f32]),
}
