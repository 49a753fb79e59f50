//! Transforms: turn a decoded HWC u8 sample into the batch layout — u8 or f32, NCHW or NHWC,
//! with per-channel normalisation for f32. No I/O. The f32 path is a per-channel lookup table
//! of the 256 possible byte values, so normalising costs one load per pixel.

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::source::SampleView;

/// Element type of a batch's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    U8,
    #[default]
    F32,
}

impl Dtype {
    pub fn size(self) -> usize {
        match self {
            Dtype::U8 => 1,
            Dtype::F32 => 4,
        }
    }
}

/// Memory layout of a batch's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// [B, C, H, W] — PyTorch's convention.
    #[default]
    Nchw,
    /// [B, H, W, C] — the decoded layout; TensorFlow/JAX convention.
    Nhwc,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalize {
    /// Per-channel mean of the [0, 1]-scaled pixel (one value, or one per channel).
    pub mean: Vec<f32>,
    /// Per-channel standard deviation (one value, or one per channel), > 0.
    pub std: Vec<f32>,
}

/// The `transform` config object.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    #[serde(default)]
    pub dtype: Dtype,
    #[serde(default)]
    pub layout: Layout,
    /// f32 only: out = (pixel/255 - mean) / std. Without it f32 output is pixel/255.
    #[serde(default)]
    pub normalize: Option<Normalize>,
}

impl TransformConfig {
    pub fn validate(&self) -> Result<()> {
        if let Some(n) = &self.normalize {
            if self.dtype != Dtype::F32 {
                return Err(Error::invalid(
                    "config key `transform.normalize`: needs `transform.dtype` = \"f32\"",
                ));
            }
            if n.mean.is_empty() || n.mean.len() != n.std.len() {
                return Err(Error::invalid(format!(
                    "config key `transform.normalize`: mean has {} values and std {}; give one \
                     per channel, the same number of each",
                    n.mean.len(),
                    n.std.len()
                )));
            }
            if let Some(s) = n.std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
                return Err(Error::invalid(format!(
                    "config key `transform.normalize.std`: {s} is not a finite number > 0"
                )));
            }
            if let Some(m) = n.mean.iter().find(|m| !m.is_finite()) {
                return Err(Error::invalid(format!(
                    "config key `transform.normalize.mean`: {m} is not finite"
                )));
            }
        }
        Ok(())
    }
}

/// A transform bound to a sample shape.
#[derive(Clone, Debug)]
pub struct Transform {
    dtype: Dtype,
    layout: Layout,
    /// (height, width, channels) of input and output.
    shape: [usize; 3],
    /// For f32: `lut[c * 256 + v]` is the output for byte v in channel c.
    lut: Vec<f32>,
}

impl Transform {
    /// Binds `config` to samples of `shape` = (height, width, channels).
    pub fn new(config: &TransformConfig, shape: [usize; 3]) -> Result<Self> {
        config.validate()?;
        let c = shape[2];
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
            lut.reserve(256 * c);
            for ch in 0..c {
                let m = mean[ch.min(mean.len() - 1)];
                let s = std[ch.min(std.len() - 1)];
                lut.extend((0..256).map(|v| (v as f32 / 255.0 - m) / s));
            }
        }
        Ok(Transform {
            dtype: config.dtype,
            layout: config.layout,
            shape,
            lut,
        })
    }

    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// The per-sample output shape in the configured layout: [C, H, W] or [H, W, C].
    pub fn out_shape(&self) -> [usize; 3] {
        let [h, w, c] = self.shape;
        match self.layout {
            Layout::Nchw => [c, h, w],
            Layout::Nhwc => [h, w, c],
        }
    }

    /// Bytes one output sample takes.
    pub fn sample_bytes(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.size()
    }

    /// Writes one sample. `out_u8` is used for u8 output, `out_f32` for f32; each is exactly one
    /// sample long.
    pub fn apply(&self, view: &SampleView<'_>, out: Out<'_>) -> Result<()> {
        let [h, w, c] = self.shape;
        if [view.height, view.width, view.channels] != self.shape {
            return Err(Error::format(format!(
                "sample is {}×{}×{} but the batch expects {h}×{w}×{c}",
                view.height, view.width, view.channels
            )));
        }
        let px = view.pixels;
        let planar = self.layout == Layout::Nchw && c > 1;
        match out {
            Out::U8(dst) => {
                if planar {
                    for (i, p) in px.chunks_exact(c).enumerate() {
                        for (ch, &v) in p.iter().enumerate() {
                            dst[ch * h * w + i] = v;
                        }
                    }
                } else {
                    dst.copy_from_slice(px);
                }
            }
            Out::F32(dst) => {
                if c == 1 {
                    let lut = &self.lut[..256];
                    for (d, &v) in dst.iter_mut().zip(px) {
                        *d = lut[v as usize];
                    }
                } else if planar {
                    for (i, p) in px.chunks_exact(c).enumerate() {
                        for (ch, &v) in p.iter().enumerate() {
                            dst[ch * h * w + i] = self.lut[ch * 256 + v as usize];
                        }
                    }
                } else {
                    for (d, p) in dst.chunks_exact_mut(c).zip(px.chunks_exact(c)) {
                        for (ch, (d, &v)) in d.iter_mut().zip(p).enumerate() {
                            *d = self.lut[ch * 256 + v as usize];
                        }
                    }
                }
            }
        }
        Ok(())
    }
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
        let t = Transform::new(&cfg(Dtype::U8, Layout::Nchw, None), [1, 2, 3]).unwrap();
        let mut out = [0u8; 6];
        t.apply(&view(), Out::U8(&mut out)).unwrap();
        assert_eq!(out, [10, 40, 20, 50, 30, 60]);
        assert_eq!(t.out_shape(), [3, 1, 2]);
        let t = Transform::new(&cfg(Dtype::U8, Layout::Nhwc, None), [1, 2, 3]).unwrap();
        t.apply(&view(), Out::U8(&mut out)).unwrap();
        assert_eq!(out, PX);
        assert_eq!(t.out_shape(), [1, 2, 3]);
    }

    #[test]
    fn f32_normalize_per_channel() {
        let norm = Some((vec![0.1, 0.2, 0.3], vec![0.5, 0.25, 2.0]));
        let t = Transform::new(&cfg(Dtype::F32, Layout::Nchw, norm), [1, 2, 3]).unwrap();
        let mut out = [0f32; 6];
        t.apply(&view(), Out::F32(&mut out)).unwrap();
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
        let t = Transform::new(&cfg(Dtype::F32, Layout::Nhwc, None), [1, 2, 3]).unwrap();
        t.apply(&view(), Out::F32(&mut out)).unwrap();
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
        assert!(Transform::new(&two, [1, 2, 3]).is_err());
        let t = Transform::new(&cfg(Dtype::U8, Layout::Nchw, None), [2, 2, 3]).unwrap();
        assert!(t.apply(&view(), Out::U8(&mut [0; 12])).is_err());
    }
}
