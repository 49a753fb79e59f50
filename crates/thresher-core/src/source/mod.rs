//! Sources: read one sample by id from a dataset format, and its label. A source is shared by
//! every worker (`Send + Sync`), so reading takes `&self`; anything a read needs to mutate
//! lives in the caller's `Scratch`. Sources know nothing of threads or policies.
//!
//! Formats: `idx` (MNIST), `cifar` (CIFAR-10/100 binary batches), `image_folder` (torchvision's
//! ImageFolder layout, or a manifest), `tar` (WebDataset shards), `npy` (memory-mapped NumPy
//! arrays), and in-memory arrays through the Rust API. Arrays, `idx` and `cifar` all end up as
//! one `MemorySource` (their modules only parse); compressed images (JPEG, PNG) are decoded in
//! `decode`, under the limits of `DecodeConfig`.

mod cifar;
mod decode;
mod idx;
mod image_folder;
mod jpeg;
mod memory;
mod npy;
mod tokens;
mod webdataset;

pub use cifar::{CifarConfig, CifarLabel, CifarSource};
pub use decode::{Color, DecodeConfig};
pub use idx::{write_idx, IdxSource};
pub use image_folder::{ImageFolderConfig, ImageFolderSource};
pub use jpeg::{pick_scale, scaled_box, Placed, Want};
pub use memory::{ArraySource, MemorySource};
pub use npy::{NpyConfig, NpyLayout, NpySource};
pub use tokens::{TokenDtype, TokensConfig, TokensSource};
pub use webdataset::{expand_braces, Shards, TarConfig, TarSource};

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use crate::dtype::Dtype;
use crate::error::Result;

/// One decoded sample: `height × width × channels` bytes, row-major HWC.
#[derive(Clone, Copy, Debug)]
pub struct SampleView<'a> {
    pub pixels: &'a [u8],
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

/// Buffers a source may use while reading one sample; each worker keeps one and reuses it, so
/// steady-state reads allocate nothing of their own.
#[derive(Debug, Default)]
pub struct Scratch {
    /// The encoded bytes of a file or tar member.
    pub encoded: Vec<u8>,
    /// The decoded (or rearranged) pixels a `SampleView` points into.
    pub pixels: Vec<u8>,
}

/// The dtype and per-sample shape of one tensor of a sample (the batch adds the batch axis).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    pub dtype: Dtype,
    /// Per-sample dimensions; empty for a scalar (one value a sample, e.g. a regression target).
    pub shape: Vec<usize>,
}

impl TensorSpec {
    /// Bytes one sample's tensor takes.
    pub fn bytes(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.size()
    }
}

/// What a tensor source delivers per sample: the data, and optionally targets and a mask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleSpec {
    pub data: TensorSpec,
    pub targets: Option<TensorSpec>,
    pub mask: Option<TensorSpec>,
}

/// Where `Source::read_tensors` writes one sample: slices exactly `TensorSpec::bytes()` long
/// (empty for a tensor the source does not have).
pub struct TensorOut<'a> {
    pub data: &'a mut [u8],
    pub targets: &'a mut [u8],
    pub mask: &'a mut [u8],
}

/// A dataset: N samples, each an image (`read`) or typed tensors (`read_tensors`), with
/// integer class labels when `has_labels`.
pub trait Source: Send + Sync {
    /// Number of samples, N; ids are 0..N.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// (height, width, channels) when every sample has it; `None` for variable-size sources.
    fn sample_shape(&self) -> Option<[usize; 3]>;
    /// Channels of every sample (a variable-size source fixes these even when it cannot fix the
    /// height and width).
    fn channels(&self) -> usize {
        self.sample_shape().map_or(0, |s| s[2])
    }
    /// The pixels of sample `id` (< len). In-memory sources return a view of their own storage;
    /// decoding sources write into `scratch`, which the caller reuses across samples. Errors name
    /// the file (and member) the sample comes from.
    fn read<'a>(&'a self, id: usize, scratch: &'a mut Scratch) -> Result<SampleView<'a>>;
    /// As `read`, for a transform that will take only the box `want(height, width)` of the
    /// image (decided from its size alone): a source of encoded JPEGs may then decode only the
    /// region around that box, at a reduced size when the box is shrunk at least twofold later,
    /// and says where the returned pixels sit (`Placed`). `None` means the whole image was read,
    /// as `read` does (the default).
    fn read_hinted<'a>(
        &'a self,
        id: usize,
        scratch: &'a mut Scratch,
        want: &dyn Fn(usize, usize) -> Option<Want>,
    ) -> Result<(SampleView<'a>, Option<Placed>)> {
        let _ = want;
        Ok((self.read(id, scratch)?, None))
    }
    /// The label of sample `id` (< len); meaningful only when `has_labels`.
    fn label(&self, id: usize) -> i64;
    /// Whether samples have integer class labels (a batch's `labels()` is empty otherwise).
    fn has_labels(&self) -> bool {
        true
    }
    /// `Some` for a source of typed tensors (`npy`, `tokens`): without a `transform` section
    /// the loader copies its samples with `read_tensors` instead of transforming images.
    fn tensors(&self) -> Option<&SampleSpec> {
        None
    }
    /// Writes sample `id` (< len) into `out`, whose slices have the sizes of `tensors()`.
    fn read_tensors(&self, _id: usize, _out: TensorOut<'_>) -> Result<()> {
        Err(crate::Error::invalid(
            "this source's samples are images, not tensors",
        ))
    }
    /// Typed targets that go with the samples also when they are read as images (an npy
    /// source's `y` under a `transform`); `None` for most image sources.
    fn image_targets(&self) -> Option<&TensorSpec> {
        None
    }
    /// Writes the targets of sample `id` into `out` (`image_targets().bytes()` long).
    fn read_targets(&self, _id: usize, _out: &mut [u8]) -> Result<()> {
        Err(crate::Error::invalid("this source has no targets"))
    }
    /// Whether reading a sample waits on storage that a hint (`will_read`) can bring into the
    /// page cache ahead of time: a file per sample, or members of tar shards. False for
    /// in-memory and memory-mapped sources (the loader then starts no read-ahead threads).
    fn reads_ahead(&self) -> bool {
        false
    }
    /// A hint that sample `id` (< len) will be read soon (config `io_depth`): a source that
    /// reads files asks the kernel to start bringing the sample's bytes into the page cache and
    /// returns without waiting for them. It changes no later result; any failure is left for
    /// the read itself to meet and report. Returns true when the bytes were found in the page
    /// cache already (nothing was started), which lets the read-ahead ease off on cached data.
    fn will_read(&self, _id: usize) -> bool {
        false
    }
    /// Where sample `id` comes from, for error reports: a path, `shard.tar:member`, or `None`
    /// for in-memory data.
    fn location(&self, _id: usize) -> Option<String> {
        None
    }
    /// A hint that sample `id` will be read soon (workers give it a few samples ahead along
    /// the plan): a source holding its samples in memory has the CPU fetch the sample's bytes
    /// and label into the cache, so the read does not wait on memory. It reads nothing and
    /// changes no result; ids out of range are ignored. The default does nothing.
    fn prefetch(&self, _id: usize) {}
}

/// The `source` config object: `{"kind": NAME, ...}`.
#[derive(Clone, Debug)]
pub enum SourceConfig {
    /// MNIST-style IDX files, raw or gzip-compressed.
    Idx(IdxConfig),
    /// CIFAR-10/100 binary batches.
    Cifar(CifarConfig),
    /// `root/<class>/*.{jpg,jpeg,png}` or a manifest of `path<TAB>label` lines.
    ImageFolder(ImageFolderConfig),
    /// WebDataset tar shards.
    Tar(TarConfig),
    /// NumPy `.npy` arrays, memory-mapped.
    Npy(NpyConfig),
    /// A flat array of token ids cut into blocks (or one document per sample).
    Tokens(TokensConfig),
    /// No data: only the dataset's length. The loader then runs in index mode — no workers;
    /// batches carry ids, loss weights and padding for a pipeline that reads its own samples.
    Index(IndexConfig),
}

/// `{"kind": "index", "len": N}`.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexConfig {
    /// The dataset's length N; ids are 0..N.
    pub len: u64,
}

/// The largest `len` of an index source: ids must fit the plan's arrays and the ScoreBook's
/// per-sample arrays must stay allocatable (tens of bytes a sample).
pub const MAX_INDEX_LEN: u64 = 1 << 32;

impl IndexConfig {
    /// The length, checked: 1 ≤ len ≤ MAX_INDEX_LEN.
    pub fn checked_len(&self) -> Result<usize> {
        if self.len == 0 || self.len > MAX_INDEX_LEN {
            return Err(crate::Error::invalid(format!(
                "config key `source.len`: {} is out of range 1..={MAX_INDEX_LEN}",
                self.len
            )));
        }
        usize::try_from(self.len)
            .map_err(|_| crate::Error::invalid("config key `source.len`: too large here"))
    }
}

impl<'de> Deserialize<'de> for SourceConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use crate::section::{tagged_section, variant};
        tagged_section(
            d,
            "source",
            &[
                ("idx", &variant(SourceConfig::Idx)),
                ("cifar", &variant(SourceConfig::Cifar)),
                ("image_folder", &variant(SourceConfig::ImageFolder)),
                ("tar", &variant(SourceConfig::Tar)),
                ("npy", &variant(SourceConfig::Npy)),
                ("tokens", &variant(SourceConfig::Tokens)),
                ("index", &variant(SourceConfig::Index)),
            ],
        )
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdxConfig {
    pub images: PathBuf,
    pub labels: PathBuf,
    /// Use only the first `limit` samples (quick experiments, smoke tests).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Checks a `limit` key: ≥ 1 when given.
pub(crate) fn check_limit(limit: Option<usize>) -> Result<()> {
    if limit == Some(0) {
        return Err(crate::Error::invalid(
            "config key `source.limit`: must be ≥ 1",
        ));
    }
    Ok(())
}

impl SourceConfig {
    /// Opens the source; errors name the file (or the config key).
    pub fn open(&self) -> Result<Arc<dyn Source>> {
        match self {
            SourceConfig::Idx(c) => {
                check_limit(c.limit)?;
                let mut s = IdxSource::open(&c.images, &c.labels)?;
                if let Some(limit) = c.limit {
                    s.truncate(limit);
                }
                Ok(Arc::new(s))
            }
            SourceConfig::Cifar(c) => Ok(Arc::new(CifarSource::open(c)?)),
            SourceConfig::ImageFolder(c) => Ok(Arc::new(ImageFolderSource::open(c)?)),
            SourceConfig::Tar(c) => Ok(Arc::new(TarSource::open(c)?)),
            SourceConfig::Npy(c) => Ok(Arc::new(NpySource::open(c)?)),
            SourceConfig::Tokens(c) => Ok(Arc::new(TokensSource::open(c)?)),
            SourceConfig::Index(_) => Err(crate::Error::invalid(
                "config key `source.kind`: an `index` source has no samples to open; \
                 Loader::new runs it in index mode",
            )),
        }
    }
}
