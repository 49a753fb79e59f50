//! Element types of the tensors a batch carries, and a borrowed view of one such tensor.
//!
//! Samples keep the dtype of their file (`npy`, `tokens`); image transforms produce `u8` or
//! `f32`. Values are stored in the host's byte order (little-endian on every platform
//! thresher is built for), so a batch's bytes equal the file's.

use serde::Deserialize;

/// The largest number of dimensions of a batch tensor, batch axis included: a sample has at
/// most `MAX_NDIM - 1` dimensions (the C header's THRESHER_MAX_NDIM).
pub const MAX_NDIM: usize = 8;

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    I64,
    /// IEEE 754 binary16.
    F16,
    /// bfloat16: the upper half of an f32.
    BF16,
    #[default]
    F32,
    F64,
}

impl Dtype {
    /// Every dtype.
    pub const ALL: [Dtype; 11] = [
        Dtype::U8,
        Dtype::I8,
        Dtype::U16,
        Dtype::I16,
        Dtype::U32,
        Dtype::I32,
        Dtype::I64,
        Dtype::F16,
        Dtype::BF16,
        Dtype::F32,
        Dtype::F64,
    ];

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::U8 | Dtype::I8 => 1,
            Dtype::U16 | Dtype::I16 | Dtype::F16 | Dtype::BF16 => 2,
            Dtype::U32 | Dtype::I32 | Dtype::F32 => 4,
            Dtype::I64 | Dtype::F64 => 8,
        }
    }

    /// The config name: "u8", "i8", "u16", "i16", "u32", "i32", "i64", "f16", "bf16", "f32",
    /// "f64".
    pub fn name(self) -> &'static str {
        match self {
            Dtype::U8 => "u8",
            Dtype::I8 => "i8",
            Dtype::U16 => "u16",
            Dtype::I16 => "i16",
            Dtype::U32 => "u32",
            Dtype::I32 => "i32",
            Dtype::I64 => "i64",
            Dtype::F16 => "f16",
            Dtype::BF16 => "bf16",
            Dtype::F32 => "f32",
            Dtype::F64 => "f64",
        }
    }

    /// The dtype named `name` (as `name()` writes it).
    pub fn from_name(name: &str) -> Option<Dtype> {
        Dtype::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Whether the values are integers (of any sign).
    pub fn is_integer(self) -> bool {
        !matches!(self, Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64)
    }

    /// The dtype of a NumPy type string without its byte-order character ("u1", "f4", ...);
    /// bf16 has no NumPy type string (see the npy source's `x_dtype`).
    pub fn from_numpy(ty: &str) -> Option<Dtype> {
        Some(match ty {
            "u1" => Dtype::U8,
            "i1" => Dtype::I8,
            "u2" => Dtype::U16,
            "i2" => Dtype::I16,
            "u4" => Dtype::U32,
            "i4" => Dtype::I32,
            "i8" => Dtype::I64,
            "f2" => Dtype::F16,
            "f4" => Dtype::F32,
            "f8" => Dtype::F64,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A borrowed, contiguous, row-major tensor: `bytes` holds `shape.iter().product()` values of
/// `dtype` in the host's byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorView<'a> {
    pub dtype: Dtype,
    pub shape: &'a [usize],
    pub bytes: &'a [u8],
}

/// Copies little-endian values of `size` bytes from `src` into `dst` in the host's byte order
/// (a plain copy on little-endian hosts).
#[inline]
pub(crate) fn copy_le(dst: &mut [u8], src: &[u8], size: usize) {
    debug_assert_eq!(dst.len(), src.len());
    dst.copy_from_slice(src);
    if cfg!(target_endian = "big") && size > 1 {
        for v in dst.chunks_exact_mut(size) {
            v.reverse();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sizes() {
        for d in Dtype::ALL {
            assert_eq!(Dtype::from_name(d.name()), Some(d));
            let json = format!("\"{}\"", d.name());
            assert_eq!(serde_json::from_str::<Dtype>(&json).unwrap(), d);
        }
        assert_eq!(Dtype::from_name("f128"), None);
        let sizes: Vec<usize> = Dtype::ALL.iter().map(|d| d.size()).collect();
        assert_eq!(sizes, [1, 1, 2, 2, 4, 4, 8, 2, 2, 4, 8]);
        assert_eq!(Dtype::from_numpy("f2"), Some(Dtype::F16));
        assert_eq!(Dtype::from_numpy("u8"), None);
        assert!(Dtype::I64.is_integer() && !Dtype::BF16.is_integer());
    }
}
