//! Token streams: a flat array of token ids (u16 or u32, little-endian, the layout of
//! nanoGPT-style `train.bin` files, or a 1-D `.npy` of that dtype), memory-mapped, cut into
//! samples of `block` tokens. Sample i is x = tokens[s..s+block] with its next-token targets
//! y = tokens[s+1..s+block+1].
//!
//! - Contiguous (no `offsets`): s = i·stride (stride defaults to block); N is the number of
//!   whole windows, i.e. those with s + block + 1 ≤ len. A last, partial window is dropped.
//! - Ragged (`offsets`: a 1-D int64 or uint64 `.npy` of D+1 increasing offsets into the token
//!   array, the first 0, the last ≤ its length): sample j is document j, tokens[off[j]..off[j+1]];
//!   x and y are its first block (+1) tokens, truncated when longer, padded with token id 0
//!   when shorter, and the mask (u8, [block]) is 1 where y holds a real next token.
//!
//! Sample ids are window (or document) indices, so every policy prunes sequences. Token ids
//! are not checked against a vocabulary (the file has none).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::npy::format::{is_npy, read_i64s, NpyArray, NpyType};
use super::{SampleSpec, SampleView, Scratch, Source, TensorOut, TensorSpec};
use crate::dtype::{copy_le, Dtype};
use crate::error::{Error, Result};

/// The `dtype` of a token file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenDtype {
    U16,
    U32,
}

impl TokenDtype {
    pub fn dtype(self) -> Dtype {
        match self {
            TokenDtype::U16 => Dtype::U16,
            TokenDtype::U32 => Dtype::U32,
        }
    }
}

/// `{"kind": "tokens", "path": FILE, "dtype": "u16"|"u32", "block": B, "stride": S,
/// "offsets": FILE}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensConfig {
    pub path: PathBuf,
    pub dtype: TokenDtype,
    pub block: usize,
    /// Tokens between the starts of consecutive samples; `block` when absent. Contiguous form
    /// only.
    #[serde(default)]
    pub stride: Option<usize>,
    /// Document boundaries (ragged form): one sample per document.
    #[serde(default)]
    pub offsets: Option<PathBuf>,
}

/// The largest `block`: a typo guard (a million tokens a sample).
pub const MAX_BLOCK: usize = 1 << 20;

pub struct TokensSource {
    map: memmap2::Mmap,
    /// Byte offset of the first token in `map` (after a `.npy` header, if any).
    start: usize,
    /// Tokens in the stream.
    tokens: usize,
    size: usize,
    block: usize,
    stride: usize,
    /// Ragged form: D+1 offsets (in tokens).
    offsets: Option<Vec<usize>>,
    n: usize,
    spec: SampleSpec,
    path: PathBuf,
}

fn key_err(key: &str, m: impl std::fmt::Display) -> Error {
    Error::invalid(format!("config key `source.{key}`: {m}"))
}

fn file_err(key: &str, path: &Path, m: impl std::fmt::Display) -> Error {
    Error::format(format!(
        "config key `source.{key}`: {}: {m}",
        path.display()
    ))
}

impl TokensSource {
    pub fn open(config: &TokensConfig) -> Result<Self> {
        let path = &config.path;
        let dtype = config.dtype.dtype();
        let size = dtype.size();
        if config.block == 0 || config.block > MAX_BLOCK {
            return Err(key_err(
                "block",
                format!("{} is out of range 1..={MAX_BLOCK}", config.block),
            ));
        }
        let block = config.block;
        let stride = match (config.stride, &config.offsets) {
            (Some(_), Some(_)) => {
                return Err(key_err(
                    "stride",
                    "has no meaning with `offsets` (each document is one sample)",
                ))
            }
            (Some(0), None) => return Err(key_err("stride", "must be ≥ 1")),
            (Some(s), None) => s,
            (None, _) => block,
        };
        let (file, _) = crate::util::open_regular(path, "token file")
            .map_err(|e| e.context("config key `source.path`"))?;
        // SAFETY: read-only mapping of a file we do not write; as for any memory-mapped
        // dataset, truncating it while the loader runs is the caller's error (SIGBUS).
        let map = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|e| Error::io(path, &e).context("config key `source.path`"))?;
        let (map, start) = if is_npy(&map) {
            let a =
                NpyArray::from_map(path, map).map_err(|e| e.context("config key `source.path`"))?;
            if a.ty != NpyType::Dtype(dtype) {
                return Err(key_err(
                    "dtype",
                    format!("\"{dtype}\" but {} holds {}", path.display(), a.ty),
                ));
            }
            if a.shape.len() != 1 {
                return Err(file_err(
                    "path",
                    path,
                    format!("a token array must be 1-D, found shape {:?}", a.shape),
                ));
            }
            (a.map, a.offset)
        } else {
            (map, 0)
        };
        let bytes = map.len() - start;
        if bytes % size != 0 {
            return Err(file_err(
                "path",
                path,
                format!(
                    "{bytes} bytes is not a whole number of {dtype} tokens ({size} bytes each); \
                     is `dtype` right?"
                ),
            ));
        }
        let len = bytes / size;
        let (offsets, n) = match &config.offsets {
            None => {
                if block + 1 > len {
                    return Err(key_err(
                        "block",
                        format!(
                            "{block} (+1 for the targets) is larger than the stream: {} holds \
                             {len} tokens",
                            path.display()
                        ),
                    ));
                }
                (None, (len - block - 1) / stride + 1)
            }
            Some(opath) => {
                let off = read_offsets(opath, len, path)?;
                let n = off.len() - 1;
                (Some(off), n)
            }
        };
        let shape = vec![block];
        let spec = SampleSpec {
            data: TensorSpec {
                dtype,
                shape: shape.clone(),
            },
            targets: Some(TensorSpec {
                dtype,
                shape: shape.clone(),
            }),
            mask: offsets.as_ref().map(|_| TensorSpec {
                dtype: Dtype::U8,
                shape,
            }),
        };
        Ok(TokensSource {
            map,
            start,
            tokens: len,
            size,
            block,
            stride,
            offsets,
            n,
            spec,
            path: path.clone(),
        })
    }

    /// Tokens [a, b) of the stream as bytes.
    fn tokens(&self, a: usize, b: usize) -> &[u8] {
        &self.map[self.start + a * self.size..self.start + b * self.size]
    }

    /// The number of tokens in the stream.
    pub fn stream_len(&self) -> usize {
        self.tokens
    }
}

/// Reads and checks an offsets file: D+1 ≥ 2 offsets, the first 0, strictly increasing, the
/// last ≤ `len` (the token count of `tokens`).
fn read_offsets(opath: &Path, len: usize, tokens: &Path) -> Result<Vec<usize>> {
    let a = NpyArray::open(opath).map_err(|e| e.context("config key `source.offsets`"))?;
    if !matches!(a.ty, NpyType::Dtype(Dtype::I64) | NpyType::U64) || a.shape.len() != 1 {
        return Err(file_err(
            "offsets",
            opath,
            format!(
                "offsets must be a 1-D int64 or uint64 array, found {} of shape {:?}",
                a.ty, a.shape
            ),
        ));
    }
    let raw = read_i64s(&a, "offset").map_err(|e| e.context("config key `source.offsets`"))?;
    if raw.len() < 2 {
        return Err(file_err(
            "offsets",
            opath,
            format!(
                "{} offsets: give D+1 ≥ 2 (the start of every document and the end of the last)",
                raw.len()
            ),
        ));
    }
    if raw[0] != 0 {
        return Err(file_err(
            "offsets",
            opath,
            format!("the first offset is {}, not 0", raw[0]),
        ));
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, &v) in raw.iter().enumerate() {
        if i > 0 && v <= raw[i - 1] {
            return Err(file_err(
                "offsets",
                opath,
                format!(
                    "offsets are not increasing: offset {i} = {v} after {} (every document needs \
                     at least one token)",
                    raw[i - 1]
                ),
            ));
        }
        if v as u64 > len as u64 {
            return Err(file_err(
                "offsets",
                opath,
                format!(
                    "offset {i} = {v} is past the end of {} ({len} tokens)",
                    tokens.display()
                ),
            ));
        }
        out.push(v as usize);
    }
    Ok(out)
}

impl Source for TokensSource {
    fn len(&self) -> usize {
        self.n
    }
    fn sample_shape(&self) -> Option<[usize; 3]> {
        None
    }
    fn read<'a>(&'a self, _id: usize, _scratch: &'a mut Scratch) -> Result<SampleView<'a>> {
        Err(Error::invalid(
            "config key `transform`: token blocks are not images",
        ))
    }
    fn label(&self, _id: usize) -> i64 {
        0
    }
    fn has_labels(&self) -> bool {
        false
    }
    fn tensors(&self) -> Option<&SampleSpec> {
        Some(&self.spec)
    }
    fn read_tensors(&self, id: usize, out: TensorOut<'_>) -> Result<()> {
        let (block, size) = (self.block, self.size);
        match &self.offsets {
            None => {
                let s = id * self.stride;
                copy_le(out.data, self.tokens(s, s + block), size);
                copy_le(out.targets, self.tokens(s + 1, s + block + 1), size);
            }
            Some(off) => {
                let (a, b) = (off[id], off[id + 1]);
                let nx = (b - a).min(block);
                let ny = (b - a - 1).min(block);
                copy_le(&mut out.data[..nx * size], self.tokens(a, a + nx), size);
                out.data[nx * size..].fill(0);
                copy_le(
                    &mut out.targets[..ny * size],
                    self.tokens(a + 1, a + 1 + ny),
                    size,
                );
                out.targets[ny * size..].fill(0);
                out.mask[..ny].fill(1);
                out.mask[ny..].fill(0);
            }
        }
        Ok(())
    }
    fn location(&self, id: usize) -> Option<String> {
        Some(match &self.offsets {
            None => format!("{} (tokens from {})", self.path.display(), id * self.stride),
            Some(_) => format!("{} (document {id})", self.path.display()),
        })
    }
}
