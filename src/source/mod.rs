//! Sources: read one sample by id from a dataset format, and its label. A source is shared by
//! every worker (`Send + Sync`), so reading takes `&self`; anything a read needs to mutate
//! lives in the caller's scratch buffer. Sources know nothing of threads or policies.

mod array;
mod idx;

pub use array::ArraySource;
pub use idx::{write_idx, IdxSource};

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use crate::error::Result;

/// One decoded sample: `height × width × channels` bytes, row-major HWC.
#[derive(Clone, Copy, Debug)]
pub struct SampleView<'a> {
    pub pixels: &'a [u8],
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

/// A dataset: N samples with integer labels.
pub trait Source: Send + Sync {
    /// Number of samples, N; ids are 0..N.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// (height, width, channels) when every sample has it; `None` for variable-size sources.
    fn sample_shape(&self) -> Option<[usize; 3]>;
    /// The pixels of sample `id` (< len). In-memory sources return a view of their own storage;
    /// decoding sources write into `scratch`, which the caller reuses across samples.
    fn read<'a>(&'a self, id: usize, scratch: &'a mut Vec<u8>) -> Result<SampleView<'a>>;
    /// The label of sample `id` (< len).
    fn label(&self, id: usize) -> i64;
}

/// The `source` config object: `{"kind": NAME, ...}`.
#[derive(Clone, Debug)]
pub enum SourceConfig {
    /// MNIST-style IDX files, raw or gzip-compressed.
    Idx(IdxConfig),
}

impl<'de> Deserialize<'de> for SourceConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use crate::config::{tagged_section, variant};
        tagged_section(d, "source", &[("idx", &variant(SourceConfig::Idx))])
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

impl SourceConfig {
    /// Opens the source; errors name the file.
    pub fn open(&self) -> Result<Arc<dyn Source>> {
        match self {
            SourceConfig::Idx(c) => {
                let mut s = IdxSource::open(&c.images, &c.labels)?;
                if let Some(limit) = c.limit {
                    if limit == 0 {
                        return Err(crate::Error::invalid(
                            "config key `source.limit`: must be ≥ 1",
                        ));
                    }
                    s.truncate(limit);
                }
                Ok(Arc::new(s))
            }
        }
    }
}
