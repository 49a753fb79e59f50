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

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{check_limit, SampleSpec, SampleView, Scratch, Source, TensorOut, TensorSpec};
use crate::dtype::{copy_le, Dtype, MAX_NDIM};
use crate::error::{Error, Result};

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
    /// Labels or targets, [N] or [N, ...]; none when absent.
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

/// A parsed `.npy` header.
#[derive(Debug, PartialEq)]
pub(crate) struct Header {
    pub(crate) descr: String,
    pub(crate) fortran_order: bool,
    pub(crate) shape: Vec<usize>,
    /// Offset of the data.
    pub(crate) offset: usize,
}

/// Whether `bytes` start like a `.npy` file.
pub(crate) fn is_npy(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x93NUMPY")
}

/// Parses the header of the `.npy` format (versions 1, 2 and 3).
pub(crate) fn parse_header(path: &Path, bytes: &[u8]) -> Result<Header> {
    let bad = |what: String| Error::format(format!("{}: not a .npy file: {what}", path.display()));
    if bytes.len() < 10 || !is_npy(bytes) {
        return Err(bad("no \\x93NUMPY magic".into()));
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(format!("format version {v} is not 1, 2 or 3"))),
    };
    let text = start
        .checked_add(len)
        .and_then(|end| bytes.get(start..end))
        .ok_or_else(|| {
            bad(format!(
                "the header says {len} bytes but the file is shorter"
            ))
        })?;
    let text = std::str::from_utf8(text).map_err(|_| bad("the header is not text".into()))?;
    let value_of = |key: &str| -> Result<&str> {
        let at = text
            .find(&format!("'{key}'"))
            .ok_or_else(|| bad(format!("the header has no '{key}'")))?;
        let rest = &text[at + key.len() + 2..];
        let colon = rest
            .find(':')
            .ok_or_else(|| bad(format!("no ':' after '{key}'")))?;
        Ok(rest[colon + 1..].trim_start())
    };
    let descr = value_of("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .ok_or_else(|| {
            bad("'descr' is not a simple type string (structured arrays are not supported)".into())
        })?
        .to_string();
    let fortran_order = value_of("fortran_order")?.starts_with("True");
    let shape = value_of("shape")?;
    let shape = shape
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("'shape' is not a tuple".into()))?;
    let shape = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| bad(format!("'shape' ({shape}) is not a tuple of integers")))?;
    Ok(Header {
        descr,
        fortran_order,
        shape,
        offset: start + len,
    })
}

/// An element type of a `.npy` file that thresher reads: a `Dtype`, or uint64 / bool, which
/// only labels and offsets accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NpyType {
    Dtype(Dtype),
    U64,
    Bool,
    /// '<V2': two opaque bytes (how bfloat16 arrays of ml_dtypes are saved).
    Void2,
}

impl std::fmt::Display for NpyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NpyType::Dtype(d) => f.write_str(d.name()),
            NpyType::U64 => f.write_str("uint64"),
            NpyType::Bool => f.write_str("bool"),
            NpyType::Void2 => f.write_str("void (2 bytes)"),
        }
    }
}

impl NpyType {
    pub(crate) fn size(self) -> usize {
        match self {
            NpyType::Dtype(d) => d.size(),
            NpyType::U64 => 8,
            NpyType::Bool => 1,
            NpyType::Void2 => 2,
        }
    }
}

/// The type of a descr like '<f4' or '|u1'. Big-endian multi-byte types, complex numbers,
/// strings and objects are refused (the message says which).
pub(crate) fn npy_type(descr: &str) -> std::result::Result<NpyType, String> {
    let (order, ty) = match descr.as_bytes().first() {
        Some(b'<' | b'|' | b'=' | b'>') => (descr.as_bytes()[0], &descr[1..]),
        _ => (b'<', descr),
    };
    let t = match ty {
        "u8" => NpyType::U64,
        "b1" => NpyType::Bool,
        "V2" => NpyType::Void2,
        other => match Dtype::from_numpy(other) {
            Some(d) => NpyType::Dtype(d),
            None => {
                return Err(format!(
                    "type '{descr}' is not supported (use a little-endian integer or float \
                     type: uint8/16/32, int8/16/32/64, float16/32/64)"
                ))
            }
        },
    };
    if order == b'>' && t.size() > 1 {
        return Err(format!(
            "type '{descr}' is big-endian; save it little-endian \
             (arr.astype(arr.dtype.newbyteorder('<')))"
        ));
    }
    Ok(t)
}

/// A memory-mapped `.npy` array whose size has been checked against its header.
pub(crate) struct NpyArray {
    pub(crate) map: memmap2::Mmap,
    pub(crate) ty: NpyType,
    pub(crate) shape: Vec<usize>,
    /// Byte offset of the data in `map`.
    pub(crate) offset: usize,
    pub(crate) path: PathBuf,
}

impl NpyArray {
    /// Maps `path`; errors name the file.
    pub(crate) fn open(path: &Path) -> Result<NpyArray> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, &e))?;
        // SAFETY: the mapping is read-only; like every reader of memory-mapped files we rely on
        // the dataset not being truncated while the loader runs (that would be SIGBUS, as for
        // numpy's mmap_mode). The length is checked against the header first.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, &e))?;
        Self::from_map(path, map)
    }

    pub(crate) fn from_map(path: &Path, map: memmap2::Mmap) -> Result<NpyArray> {
        let header = parse_header(path, &map)?;
        let ty = npy_type(&header.descr)
            .map_err(|m| Error::format(format!("{}: {m}", path.display())))?;
        check_size(path, &header, ty.size(), map.len())?;
        Ok(NpyArray {
            map,
            ty,
            shape: header.shape,
            offset: header.offset,
            path: path.to_path_buf(),
        })
    }

    /// The data bytes (after the header).
    pub(crate) fn data(&self) -> &[u8] {
        &self.map[self.offset..]
    }

    /// The first dimension (0 for a 0-d array).
    pub(crate) fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }
}

/// Checks that the file holds exactly the data its header promises; returns the element count.
pub(crate) fn check_size(
    path: &Path,
    header: &Header,
    item: usize,
    file_len: usize,
) -> Result<usize> {
    let count = header
        .shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            Error::format(format!(
                "{}: shape {:?} overflows",
                path.display(),
                header.shape
            ))
        })?;
    let want = count
        .checked_mul(item)
        .and_then(|b| b.checked_add(header.offset));
    if want != Some(file_len) {
        return Err(Error::format(format!(
            "{}: the header says shape {:?} of '{}' ({} data bytes) but the file has {} data \
             bytes{}",
            path.display(),
            header.shape,
            header.descr,
            count.saturating_mul(item),
            file_len.saturating_sub(header.offset),
            if want.is_none_or(|w| w > file_len) {
                " (truncated, or a lying header)"
            } else {
                ""
            }
        )));
    }
    if header.fortran_order && header.shape.iter().filter(|&&d| d > 1).count() > 1 {
        return Err(Error::format(format!(
            "{}: Fortran-order arrays are not supported; save with np.ascontiguousarray",
            path.display()
        )));
    }
    Ok(count)
}

/// Reads the integers of a 1-D array as i64 (labels, offsets); errors name the file.
pub(crate) fn read_i64s(a: &NpyArray, what: &str) -> Result<Vec<i64>> {
    let path = &a.path;
    let item = a.ty.size();
    let data = a.data();
    // Bounded: the size of the (mapped, checked) file.
    let mut out = Vec::with_capacity(data.len() / item);
    for (i, b) in data.chunks_exact(item).enumerate() {
        let v: i128 = match a.ty {
            NpyType::Dtype(Dtype::I8) => b[0] as i8 as i128,
            NpyType::Dtype(Dtype::U8) | NpyType::Bool => b[0] as i128,
            NpyType::Dtype(Dtype::I16) => i16::from_le_bytes([b[0], b[1]]) as i128,
            NpyType::Dtype(Dtype::U16) => u16::from_le_bytes([b[0], b[1]]) as i128,
            NpyType::Dtype(Dtype::I32) => i32::from_le_bytes(b.try_into().expect("4")) as i128,
            NpyType::Dtype(Dtype::U32) => u32::from_le_bytes(b.try_into().expect("4")) as i128,
            NpyType::Dtype(Dtype::I64) => i64::from_le_bytes(b.try_into().expect("8")) as i128,
            NpyType::U64 => u64::from_le_bytes(b.try_into().expect("8")) as i128,
            _ => {
                return Err(Error::format(format!(
                    "{}: {what} must be integers, found type {:?}",
                    path.display(),
                    a.ty
                )))
            }
        };
        out.push(i64::try_from(v).map_err(|_| {
            Error::format(format!(
                "{}: {what} {i} = {v} does not fit in int64",
                path.display()
            ))
        })?);
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_of_descrs() {
        assert_eq!(npy_type("<f4"), Ok(NpyType::Dtype(Dtype::F32)));
        assert_eq!(npy_type("|u1"), Ok(NpyType::Dtype(Dtype::U8)));
        assert_eq!(npy_type("<f2"), Ok(NpyType::Dtype(Dtype::F16)));
        assert_eq!(npy_type("<u8"), Ok(NpyType::U64));
        assert_eq!(npy_type("|b1"), Ok(NpyType::Bool));
        assert_eq!(npy_type(">u1"), Ok(NpyType::Dtype(Dtype::U8)));
        assert!(npy_type(">f4").unwrap_err().contains("big-endian"));
        assert!(npy_type("<c8").unwrap_err().contains("not supported"));
        assert!(npy_type("<U10").unwrap_err().contains("not supported"));
        assert!(npy_type("|O").is_err());
    }
}
