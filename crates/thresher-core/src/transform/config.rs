//! The `transform` config object as written in JSON: its types, their parsing (sizes and
//! paddings in torchvision's shorthand forms) and `validate`, which checks every key on its own
//! before `Transform::new` binds the config to a source.

use serde::de::Error as _;
use serde::Deserialize;

use crate::error::{Error, Result};

pub use crate::dtype::Dtype;

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

/// A size: one number or `[height, width]`. For `resize` one number is the shorter side's
/// length (the aspect ratio kept); for crops it is a square.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    One(usize),
    Hw(usize, usize),
}

impl Size {
    /// (height, width) of a crop.
    pub(super) fn square(self) -> (usize, usize) {
        match self {
            Size::One(n) => (n, n),
            Size::Hw(h, w) => (h, w),
        }
    }
    fn values(self) -> [usize; 2] {
        let (h, w) = self.square();
        [h, w]
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Number(n) if n.as_u64().is_some() => {
                Ok(Size::One(n.as_u64().expect("checked") as usize))
            }
            serde_json::Value::Array(a)
                if a.len() == 2 && a.iter().all(|v| v.as_u64().is_some()) =>
            {
                let v: Vec<usize> = a
                    .iter()
                    .map(|v| v.as_u64().expect("checked") as usize)
                    .collect();
                Ok(Size::Hw(v[0], v[1]))
            }
            other => Err(D::Error::custom(format!(
                "expected a size, N or [height, width], found {other}"
            ))),
        }
    }
}

/// `random_crop.padding`: N (every side), [left/right, top/bottom] or [left, top, right,
/// bottom], as torchvision's `padding`. Padding is zeros.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Padding(pub [usize; 4]);

impl<'de> Deserialize<'de> for Padding {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let bad = |v: &serde_json::Value| {
            D::Error::custom(format!(
                "expected N, [left/right, top/bottom] or [left, top, right, bottom], found {v}"
            ))
        };
        let v = serde_json::Value::deserialize(d)?;
        let nums: Vec<usize> = match &v {
            serde_json::Value::Number(n) => vec![n.as_u64().ok_or_else(|| bad(&v))? as usize],
            serde_json::Value::Array(a) => a
                .iter()
                .map(|x| x.as_u64().map(|x| x as usize))
                .collect::<Option<_>>()
                .ok_or_else(|| bad(&v))?,
            _ => return Err(bad(&v)),
        };
        match nums[..] {
            [p] => Ok(Padding([p; 4])),
            [lr, tb] => Ok(Padding([lr, tb, lr, tb])),
            [l, t, r, b] => Ok(Padding([l, t, r, b])),
            _ => Err(bad(&v)),
        }
    }
}

/// torchvision `RandomCrop(size, padding)`: `{"size": S, "padding": P}`, or S alone (no
/// padding), as `RandomCrop(28)` is written.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(remote = "Self")]
pub struct RandomCropConfig {
    pub size: Size,
    #[serde(default)]
    pub padding: Padding,
}

impl<'de> Deserialize<'de> for RandomCropConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        size_or_object(d, RandomCropConfig::deserialize, |size| RandomCropConfig {
            size,
            padding: Padding::default(),
        })
    }
}

/// A crop given as its size alone (N or [height, width]) or as its full object, parsed by
/// `object` (the derived parser, so unknown keys are still named).
fn size_or_object<'de, D, T>(
    d: D,
    object: impl FnOnce(serde_json::Value) -> serde_json::Result<T>,
    sized: impl FnOnce(Size) -> T,
) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let v = serde_json::Value::deserialize(d)?;
    if v.is_object() {
        object(v).map_err(D::Error::custom)
    } else {
        Size::deserialize(v).map(sized).map_err(D::Error::custom)
    }
}

fn default_scale() -> [f64; 2] {
    [0.08, 1.0]
}
fn default_ratio() -> [f64; 2] {
    [3.0 / 4.0, 4.0 / 3.0]
}

/// torchvision `RandomResizedCrop(size, scale, ratio)`: `{"size": S, "scale": [..], "ratio":
/// [..]}`, or S alone (the default scale and ratio), as `RandomResizedCrop(224)` is written.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(remote = "Self")]
pub struct RandomResizedCropConfig {
    pub size: Size,
    /// Range of the crop's area as a fraction of the image's.
    #[serde(default = "default_scale")]
    pub scale: [f64; 2],
    /// Range of the crop's aspect ratio (width / height), drawn log-uniformly.
    #[serde(default = "default_ratio")]
    pub ratio: [f64; 2],
}

impl<'de> Deserialize<'de> for RandomResizedCropConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        size_or_object(d, RandomResizedCropConfig::deserialize, |size| {
            RandomResizedCropConfig {
                size,
                scale: default_scale(),
                ratio: default_ratio(),
            }
        })
    }
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
    /// Resize first: N makes the shorter side N (torchvision `Resize(N)`), [h, w] is exact.
    #[serde(default)]
    pub resize: Option<Size>,
    /// torchvision `CenterCrop`.
    #[serde(default)]
    pub center_crop: Option<Size>,
    /// torchvision `RandomCrop(size, padding)`.
    #[serde(default)]
    pub random_crop: Option<RandomCropConfig>,
    /// torchvision `RandomResizedCrop(size, scale, ratio)`.
    #[serde(default)]
    pub random_resized_crop: Option<RandomResizedCropConfig>,
    /// Probability of a horizontal flip (torchvision `RandomHorizontalFlip(p)`), 0 by default.
    #[serde(default)]
    pub hflip: f64,
}

/// Sides above this are refused (a typo guard: 1<<16 is larger than any JPEG).
const MAX_SIDE: usize = 1 << 16;

impl TransformConfig {
    pub fn validate(&self) -> Result<()> {
        if !matches!(self.dtype, Dtype::U8 | Dtype::F32) {
            return Err(Error::invalid(format!(
                "config key `transform.dtype`: \"{}\" is not an image output type; give \"u8\" \
                 or \"f32\" (other dtypes come from the data itself: an npy or tokens source \
                 without a `transform` section)",
                self.dtype
            )));
        }
        let sizes = [
            ("resize", self.resize),
            ("center_crop", self.center_crop),
            (
                "random_crop.size",
                self.random_crop.as_ref().map(|c| c.size),
            ),
            (
                "random_resized_crop.size",
                self.random_resized_crop.as_ref().map(|c| c.size),
            ),
        ];
        for (key, size) in sizes {
            if let Some(size) = size {
                if size.values().iter().any(|&v| v == 0 || v > MAX_SIDE) {
                    return Err(Error::invalid(format!(
                        "config key `transform.{key}`: {:?} is out of range 1..={MAX_SIDE}",
                        size.values()
                    )));
                }
            }
        }
        let crops: Vec<&str> = [
            ("center_crop", self.center_crop.is_some()),
            ("random_crop", self.random_crop.is_some()),
            ("random_resized_crop", self.random_resized_crop.is_some()),
        ]
        .iter()
        .filter(|c| c.1)
        .map(|c| c.0)
        .collect();
        if crops.len() > 1 {
            return Err(Error::invalid(format!(
                "config key `transform`: give at most one crop, not {}",
                crops.join(" and ")
            )));
        }
        if let Some(c) = &self.random_crop {
            if c.padding.0.iter().any(|&p| p > MAX_SIDE) {
                return Err(Error::invalid(format!(
                    "config key `transform.random_crop.padding`: {:?} is out of range 0..={MAX_SIDE}",
                    c.padding.0
                )));
            }
        }
        if let Some(c) = &self.random_resized_crop {
            let ok = |r: [f64; 2]| r.iter().all(|v| v.is_finite() && *v > 0.0) && r[0] <= r[1];
            if !ok(c.scale) {
                return Err(Error::invalid(format!(
                    "config key `transform.random_resized_crop.scale`: {:?} must be two finite \
                     numbers 0 < min <= max",
                    c.scale
                )));
            }
            if !ok(c.ratio) {
                return Err(Error::invalid(format!(
                    "config key `transform.random_resized_crop.ratio`: {:?} must be two finite \
                     numbers 0 < min <= max",
                    c.ratio
                )));
            }
        }
        if !(0.0..=1.0).contains(&self.hflip) {
            return Err(Error::invalid(format!(
                "config key `transform.hflip`: {} is not a probability in 0..=1",
                self.hflip
            )));
        }
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
