//! NumPy `.npy` arrays: `x` holds the samples, `y` (optional) their labels or targets; both are
//! memory-mapped (never read whole, except integer labels, which are read once at open).
//!
//! Without a `transform` section the samples are delivered as they are in the file: any dtype
//! of `Dtype` (little-endian), any per-sample rank up to `MAX_NDIM - 1`, bit for bit. `y` of an
//! integer type and shape [N] gives the class labels (int64) and also the targets tensor in its
//! own dtype; a float [N], or any [N, K, ...], gives the targets only.
//!
//! With a `transform` section the samples must be images: u8 [N, H, W] (one channel) or
//! [N, H, W, C] — or, with `x_layout: "chw"`, [N, C, H, W]. u8 HWC samples are slices of the
//! mapping (no copy); `y` gives labels and targets as above. The opt-in `to_u8: true` takes an f32 `x` as ToTensor-scaled values in
//! [0, 1] and quantises them to bytes (`round(255·v)`, clamped, NaN → 0) so that they go
//! through the image transforms; nothing is quantised without it.
//!
//! Every size comes from the header and is checked against the file's length (with checked
//! arithmetic) before anything is read, so a lying header is a format error, not a huge
//! allocation.
//!
//! Files: this one is the source (`NpyConfig`, `NpySource`); `format` reads the `.npy` format
//! (header, element types, the checked mapping), which the tokens source uses too.

pub(super) mod format;

use std::path::PathBuf;

use serde::Deserialize;

use super::{check_limit, SampleSpec, SampleView, Scratch, Source, TensorOut, TensorSpec};
use crate::dtype::{copy_le, Dtype, MAX_NDIM};
use crate::error::{Error, Result};
use format::{read_i64s, NpyArray, NpyType};

/// The axis order of a 4-D `x` read as images (with a `transform`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NpyLayout {
    /// [N, H, W, C]
    #[default]
    Hwc,
    /// [N, C, H, W]
    Chw,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NpyConfig {
    pub x: PathBuf,
    /// Labels or targets, `[N]` or `[N, ...]`; none when absent.
    #[serde(default)]
    pub y: Option<PathBuf>,
    #[serde(default)]
    pub x_layout: NpyLayout,
    /// The dtype `x` must have; a file of another type is refused. "bf16" (which NumPy has no
    /// type for) reads a 2-byte file ('<u2', '<i2' or '<V2') as bfloat16.
    #[serde(default)]
    pub x_dtype: Option<Dtype>,
    /// Opt-in: an f32 `x` in [0, 1] quantised to u8 images (`round(255·v)`), for the image
    /// transforms.
    #[serde(default)]
    pub to_u8: bool,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// What `y` gives.
enum Targets {
    None,
    /// Bytes per sample, from `y`'s mapping.
    Mapped(NpyArray, usize),
    /// uint64 labels: the targets are the labels as int64.
    FromLabels,
}

pub struct NpySource {
    x: NpyArray,
    n: usize,
    /// What the loader delivers without a transform; `None` with `to_u8` (an image source).
    spec: Option<SampleSpec>,
    /// (height, width, channels) when `x` can be read as images (u8, or f32 with `to_u8`).
    image: Option<[usize; 3]>,
    layout: NpyLayout,
    to_u8: bool,
    labels: Vec<i64>,
    targets: Targets,
    /// The targets' dtype and per-sample shape (also for images under a transform).
    target_spec: Option<TensorSpec>,
}

fn keyed(e: Error, key: &str) -> Error {
    e.context(format!("config key `source.{key}`"))
}

impl NpySource {
    pub fn open(config: &NpyConfig) -> Result<Self> {
        check_limit(config.limit)?;
        let path = &config.x;
        let x = NpyArray::open(path).map_err(|e| keyed(e, "x"))?;
        let at = |m: String| Error::format(format!("{}: {m}", path.display()));
        let dtype = match (x.ty, config.x_dtype) {
            (NpyType::Dtype(Dtype::U16 | Dtype::I16) | NpyType::Void2, Some(Dtype::BF16)) => {
                Dtype::BF16
            }
            (NpyType::Dtype(d), None) => d,
            (NpyType::Dtype(d), Some(want)) if d == want => d,
            (t, Some(want)) => {
                return Err(Error::invalid(format!(
                    "config key `source.x_dtype`: {} holds {} but x_dtype is \"{want}\"",
                    path.display(),
                    t
                )))
            }
            (t, None) => {
                return Err(keyed(
                    at(format!(
                        "samples of type {t} are not supported{}",
                        if t == NpyType::Void2 {
                            " (for bfloat16 give `x_dtype: \"bf16\"`)"
                        } else {
                            ""
                        }
                    )),
                    "x",
                ))
            }
        };
        if x.shape.is_empty() || x.shape.len() > MAX_NDIM {
            return Err(keyed(
                at(format!(
                    "samples must be [N, ...] with at most {} dimensions each, found shape {:?}",
                    MAX_NDIM - 1,
                    x.shape
                )),
                "x",
            ));
        }
        let dims = x.shape[1..].to_vec();
        if dims.contains(&0) {
            return Err(keyed(
                at(format!(
                    "shape {:?} has a zero-sized sample dimension",
                    x.shape
                )),
                "x",
            ));
        }
        let image_shape = match (&dims[..], config.x_layout) {
            ([h, w], _) => Some([*h, *w, 1]),
            ([h, w, c], NpyLayout::Hwc) => Some([*h, *w, *c]),
            ([c, h, w], NpyLayout::Chw) => Some([*h, *w, *c]),
            _ => None,
        };
        if config.to_u8 && (dtype != Dtype::F32 || image_shape.is_none()) {
            return Err(Error::invalid(format!(
                "config key `source.to_u8`: quantises f32 images [N, H, W] or [N, H, W, C] (or \
                 [N, C, H, W] with `x_layout: \"chw\"`), but {} holds {dtype} of shape {:?}",
                path.display(),
                x.shape
            )));
        }
        let image = (dtype == Dtype::U8 || config.to_u8)
            .then_some(image_shape)
            .flatten();
        let mut n = x.rows();
        let mut labels = Vec::new();
        let mut targets = Targets::None;
        let mut target_spec = None;
        if let Some(ypath) = &config.y {
            let y = NpyArray::open(ypath).map_err(|e| keyed(e, "y"))?;
            let yat = |m: String| keyed(Error::format(format!("{}: {m}", ypath.display())), "y");
            if y.shape.is_empty() || y.shape.len() > MAX_NDIM {
                return Err(yat(format!(
                    "targets must be [N] or [N, ...] with at most {} dimensions each, found \
                     shape {:?}",
                    MAX_NDIM - 1,
                    y.shape
                )));
            }
            if y.rows() != n {
                return Err(yat(format!(
                    "{} labels/targets but x ({}) holds {n} samples",
                    y.rows(),
                    path.display()
                )));
            }
            let ydims = y.shape[1..].to_vec();
            match y.ty {
                NpyType::Dtype(d) if d.is_integer() && ydims.is_empty() => {
                    labels = read_i64s(&y, "label").map_err(|e| keyed(e, "y"))?;
                    target_spec = Some(TensorSpec {
                        dtype: d,
                        shape: vec![],
                    });
                    targets = Targets::Mapped(y, d.size());
                }
                NpyType::U64 if ydims.is_empty() => {
                    labels = read_i64s(&y, "label").map_err(|e| keyed(e, "y"))?;
                    target_spec = Some(TensorSpec {
                        dtype: Dtype::I64,
                        shape: vec![],
                    });
                    targets = Targets::FromLabels;
                }
                NpyType::Dtype(d) => {
                    let spec = TensorSpec {
                        dtype: d,
                        shape: ydims,
                    };
                    let per = spec.bytes();
                    target_spec = Some(spec);
                    targets = Targets::Mapped(y, per);
                }
                t => {
                    return Err(yat(format!(
                        "labels/targets of type {t} are not supported (an integer type for \
                         class labels, or a float type for targets)"
                    )))
                }
            }
        }
        if let Some(limit) = config.limit {
            n = n.min(limit);
            labels.truncate(n);
        }
        let spec = (!config.to_u8).then_some(SampleSpec {
            data: TensorSpec { dtype, shape: dims },
            targets: target_spec.clone(),
            mask: None,
        });
        Ok(NpySource {
            x,
            n,
            spec,
            image,
            layout: config.x_layout,
            to_u8: config.to_u8,
            labels,
            targets,
            target_spec,
        })
    }
}

/// f32 in [0, 1] → byte, as `round(255·v)` clamped; NaN → 0.
#[inline]
fn quantise(v: f32) -> u8 {
    (v * 255.0).round().clamp(0.0, 255.0) as u8
}

impl Source for NpySource {
    fn len(&self) -> usize {
        self.n
    }
    fn sample_shape(&self) -> Option<[usize; 3]> {
        self.image
    }
    fn read<'a>(&'a self, id: usize, scratch: &'a mut Scratch) -> Result<SampleView<'a>> {
        let Some([h, w, c]) = self.image else {
            return Err(Error::invalid(format!(
                "{}: the samples are not images (u8 [N, H, W] or [N, H, W, C])",
                self.x.path.display()
            )));
        };
        let per = h * w * c;
        let item = if self.to_u8 { 4 } else { 1 };
        let start = id * per * item;
        let data = &self.x.data()[start..start + per * item];
        let planar = self.layout == NpyLayout::Chw && c > 1;
        let pixels: &[u8] = match (self.to_u8, planar) {
            (false, false) => data,
            _ => {
                let out = &mut scratch.pixels;
                out.resize(per, 0);
                let value = |i: usize| {
                    if self.to_u8 {
                        quantise(f32::from_le_bytes(
                            data[4 * i..4 * i + 4].try_into().expect("4 bytes"),
                        ))
                    } else {
                        data[i]
                    }
                };
                if planar {
                    for (p, px) in out.chunks_exact_mut(c).enumerate() {
                        for (ch, v) in px.iter_mut().enumerate() {
                            *v = value(ch * h * w + p);
                        }
                    }
                } else {
                    for (i, v) in out.iter_mut().enumerate() {
                        *v = value(i);
                    }
                }
                out
            }
        };
        Ok(SampleView {
            pixels,
            height: h,
            width: w,
            channels: c,
        })
    }
    fn label(&self, id: usize) -> i64 {
        self.labels.get(id).copied().unwrap_or(0)
    }
    fn has_labels(&self) -> bool {
        !self.labels.is_empty()
    }
    fn tensors(&self) -> Option<&SampleSpec> {
        self.spec.as_ref()
    }
    fn read_tensors(&self, id: usize, out: TensorOut<'_>) -> Result<()> {
        let spec = self.spec.as_ref().ok_or_else(|| {
            Error::invalid("config key `source.to_u8`: the samples are read as images")
        })?;
        let size = spec.data.dtype.size();
        let per = out.data.len();
        copy_le(out.data, &self.x.data()[id * per..(id + 1) * per], size);
        self.read_targets(id, out.targets)
    }
    fn image_targets(&self) -> Option<&TensorSpec> {
        self.target_spec.as_ref()
    }
    fn read_targets(&self, id: usize, out: &mut [u8]) -> Result<()> {
        match &self.targets {
            Targets::None => {}
            Targets::Mapped(y, per) => copy_le(
                out,
                &y.data()[id * per..(id + 1) * per],
                self.target_spec.as_ref().map_or(1, |t| t.dtype.size()),
            ),
            Targets::FromLabels => out.copy_from_slice(&self.labels[id].to_ne_bytes()),
        }
        Ok(())
    }
    fn location(&self, _id: usize) -> Option<String> {
        Some(self.x.path.display().to_string())
    }
}
