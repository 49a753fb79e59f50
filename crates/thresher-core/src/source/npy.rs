//! NumPy `.npy` arrays: `x` holds the samples, memory-mapped (never read whole); `y` the
//! integer labels, read at open.
//!
//! `x` is u8 or f32, C order, [N, H, W] (one channel) or [N, H, W, C] — or, with
//! `x_layout: "chw"`, [N, C, H, W]. u8 HWC samples are slices of the mapping (no copy).
//! f32 samples are taken as ToTensor-scaled values in [0, 1] and quantised to bytes
//! (`round(255·v)`, clamped, NaN → 0) so that they go through the same transforms as decoded
//! images; that keeps 8 bits of each value, the precision of the images such arrays usually come
//! from. `y` is [N] of int8/16/32/64 or uint8/16/32/64, little-endian.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{check_limit, SampleView, Scratch, Source};
use crate::error::{Error, Result};

/// The axis order of a 4-D `x`.
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
    pub y: PathBuf,
    #[serde(default)]
    pub x_layout: NpyLayout,
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Elem {
    U8,
    F32,
}

pub struct NpySource {
    map: memmap2::Mmap,
    /// Byte offset of the data in `map`.
    offset: usize,
    elem: Elem,
    layout: NpyLayout,
    /// (height, width, channels)
    shape: [usize; 3],
    labels: Vec<i64>,
    path: PathBuf,
}

/// A parsed `.npy` header.
#[derive(Debug, PartialEq)]
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
    /// Offset of the data.
    offset: usize,
}

/// Parses the header of the `.npy` format (versions 1, 2 and 3).
fn parse_header(path: &Path, bytes: &[u8]) -> Result<Header> {
    let bad = |what: String| Error::format(format!("{}: not a .npy file: {what}", path.display()));
    if bytes.len() < 10 || !bytes.starts_with(b"\x93NUMPY") {
        return Err(bad("no \\x93NUMPY magic".into()));
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(format!("format version {v} is not 1, 2 or 3"))),
    };
    let text = bytes.get(start..start + len).ok_or_else(|| {
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
        .ok_or_else(|| bad("'descr' is not a simple type string".into()))?
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

/// Checks that the file holds exactly the data its header promises; returns the element count.
fn check_size(path: &Path, header: &Header, item: usize, file_len: usize) -> Result<usize> {
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
            if want.is_some_and(|w| w > file_len) {
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

/// The byte order and type of a descr like '<f4' or '|u1'; `None` when big-endian.
fn little_endian_type(descr: &str) -> Option<&str> {
    match descr.as_bytes().first() {
        Some(b'<') | Some(b'|') | Some(b'=') => Some(&descr[1..]),
        Some(b'>') => None,
        _ => Some(descr),
    }
}

fn read_labels(path: &Path) -> Result<Vec<i64>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, &e))?;
    let header = parse_header(path, &bytes)?;
    let ty = little_endian_type(&header.descr);
    let item = match ty {
        Some("i1") | Some("u1") | Some("b1") => 1,
        Some("i2") | Some("u2") => 2,
        Some("i4") | Some("u4") => 4,
        Some("i8") | Some("u8") => 8,
        _ => {
            return Err(Error::format(format!(
                "{}: labels of type '{}' are not supported (use a little-endian integer type)",
                path.display(),
                header.descr
            )))
        }
    };
    if header.shape.len() != 1 {
        return Err(Error::format(format!(
            "{}: labels must be one-dimensional [N], found shape {:?}",
            path.display(),
            header.shape
        )));
    }
    check_size(path, &header, item, bytes.len())?;
    let data = &bytes[header.offset..];
    let ty = ty.expect("matched above");
    data.chunks_exact(item)
        .enumerate()
        .map(|(i, b)| {
            let v: i128 = match ty {
                "i1" => b[0] as i8 as i128,
                "u1" | "b1" => b[0] as i128,
                "i2" => i16::from_le_bytes([b[0], b[1]]) as i128,
                "u2" => u16::from_le_bytes([b[0], b[1]]) as i128,
                "i4" => i32::from_le_bytes(b.try_into().expect("4 bytes")) as i128,
                "u4" => u32::from_le_bytes(b.try_into().expect("4 bytes")) as i128,
                "i8" => i64::from_le_bytes(b.try_into().expect("8 bytes")) as i128,
                _ => u64::from_le_bytes(b.try_into().expect("8 bytes")) as i128,
            };
            i64::try_from(v).map_err(|_| {
                Error::format(format!(
                    "{}: label {i} = {v} does not fit in int64",
                    path.display()
                ))
            })
        })
        .collect()
}

impl NpySource {
    pub fn open(config: &NpyConfig) -> Result<Self> {
        check_limit(config.limit)?;
        let path = &config.x;
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, &e))?;
        // SAFETY: the mapping is read-only; like every reader of memory-mapped files we rely on
        // the dataset not being truncated while the loader runs (that would be SIGBUS, as for
        // numpy's mmap_mode). The length is checked against the header first.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, &e))?;
        let header = parse_header(path, &map)?;
        let elem = match little_endian_type(&header.descr) {
            Some("u1") => Elem::U8,
            Some("f4") => Elem::F32,
            _ => {
                return Err(Error::format(format!(
                    "{}: samples of type '{}' are not supported (uint8 or little-endian float32)",
                    path.display(),
                    header.descr
                )))
            }
        };
        let item = if elem == Elem::U8 { 1 } else { 4 };
        check_size(path, &header, item, map.len())?;
        let shape = match (&header.shape[..], config.x_layout) {
            ([_, h, w], _) => [*h, *w, 1],
            ([_, h, w, c], NpyLayout::Hwc) => [*h, *w, *c],
            ([_, c, h, w], NpyLayout::Chw) => [*h, *w, *c],
            (s, _) => {
                return Err(Error::format(format!(
                    "{}: samples must be [N, H, W] or [N, H, W, C] (or [N, C, H, W] with \
                     `x_layout: \"chw\"`), found shape {s:?}",
                    path.display()
                )))
            }
        };
        if shape.contains(&0) {
            return Err(Error::format(format!(
                "{}: shape {:?} has a zero-sized sample dimension",
                path.display(),
                header.shape
            )));
        }
        let n = header.shape[0];
        let mut labels = read_labels(&config.y)?;
        if labels.len() != n {
            return Err(Error::format(format!(
                "{}: {} labels but {} holds {n} samples",
                config.y.display(),
                labels.len(),
                path.display()
            )));
        }
        if let Some(limit) = config.limit {
            labels.truncate(limit);
        }
        Ok(NpySource {
            map,
            offset: header.offset,
            elem,
            layout: config.x_layout,
            shape,
            labels,
            path: path.clone(),
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
        self.labels.len()
    }
    fn sample_shape(&self) -> Option<[usize; 3]> {
        Some(self.shape)
    }
    fn read<'a>(&'a self, id: usize, scratch: &'a mut Scratch) -> Result<SampleView<'a>> {
        let [h, w, c] = self.shape;
        let per = h * w * c;
        let item = if self.elem == Elem::U8 { 1 } else { 4 };
        let start = self.offset + id * per * item;
        let data = &self.map[start..start + per * item];
        let planar = self.layout == NpyLayout::Chw && c > 1;
        let pixels: &[u8] = match (self.elem, planar) {
            (Elem::U8, false) => data,
            _ => {
                let out = &mut scratch.pixels;
                out.resize(per, 0);
                let value = |i: usize| match self.elem {
                    Elem::U8 => data[i],
                    Elem::F32 => quantise(f32::from_le_bytes(
                        data[4 * i..4 * i + 4].try_into().expect("4 bytes"),
                    )),
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
        self.labels[id]
    }
    fn location(&self, _id: usize) -> Option<String> {
        Some(self.path.display().to_string())
    }
}
