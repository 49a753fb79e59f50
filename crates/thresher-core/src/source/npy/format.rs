//! The `.npy` file format (versions 1, 2 and 3) as thresher reads it: the header, the element
//! types it accepts, a memory-mapped array whose size is checked against its header, and 1-D
//! integer arrays read as i64 (labels here, document offsets for the tokens source).

use std::path::{Path, PathBuf};

use crate::dtype::Dtype;
use crate::error::{Error, Result};

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
        // Only a regular file is mapped: a FIFO would block the open, a device has no size.
        let (file, _) = crate::util::open_regular(path, ".npy file")?;
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
