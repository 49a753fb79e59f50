//! What a sample becomes in a batch (`DataPath`: images through the transform, or typed
//! tensors as they are), and the check, before any batch is allocated, that batches of it fit
//! the memory budget and the process.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::source::{SampleSpec, Source};
use crate::transform::{Transform, TransformConfig};

/// How workers turn a source's sample into batch memory.
pub(super) enum DataPath {
    /// Images through the transform, with the source's typed targets when it has any.
    Image(Transform, Option<crate::source::TensorSpec>),
    /// Typed tensors copied as they are (npy and tokens sources without a `transform`).
    Tensors(SampleSpec),
}

impl DataPath {
    /// The bytes one sample takes in a batch (data, targets and mask; `None` when that overflows)
    /// and its description for the memory-budget error.
    pub(super) fn sample_bytes(&self) -> (Option<usize>, String) {
        fn tensor(t: &crate::source::TensorSpec) -> Option<usize> {
            t.shape
                .iter()
                .try_fold(t.dtype.size(), |acc, &d| acc.checked_mul(d))
        }
        fn dims(t: &crate::source::TensorSpec) -> String {
            let d: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
            format!("{} [{}]", t.dtype, d.join(", "))
        }
        let extra = |t: Option<&crate::source::TensorSpec>| t.map_or(Some(0), tensor);
        match self {
            DataPath::Image(transform, targets) => {
                let [a, b, c] = transform.out_shape();
                let shape = format!("{a}×{b}×{c} {:?}", transform.dtype()).to_lowercase();
                let bytes = transform
                    .checked_sample_bytes()
                    .and_then(|d| d.checked_add(extra(targets.as_ref())?));
                (bytes, shape)
            }
            DataPath::Tensors(spec) => {
                let bytes = tensor(&spec.data)
                    .and_then(|d| d.checked_add(extra(spec.targets.as_ref())?))
                    .and_then(|d| d.checked_add(extra(spec.mask.as_ref())?));
                (bytes, dims(&spec.data))
            }
        }
    }

    /// The tensor path when the source has tensors and the config no `transform` section;
    /// otherwise the image path, which needs a source of images (the error names the key).
    pub(super) fn new(config: &Config, source: &dyn Source) -> Result<DataPath> {
        match (&config.transform, source.tensors()) {
            (None, Some(spec)) => Ok(DataPath::Tensors(spec.clone())),
            (t, spec) => {
                let is_image = source.sample_shape().is_some() || source.channels() > 0;
                if let (Some(spec), false) = (spec, is_image) {
                    return Err(Error::invalid(format!(
                        "config key `transform`: the samples are {} [{}], not images (u8 \
                         [H, W] or [H, W, C]); remove `transform` to receive them as they are",
                        spec.data.dtype,
                        spec.data
                            .shape
                            .iter()
                            .map(|d| d.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                let default = TransformConfig::default();
                let t = t.as_ref().unwrap_or(&default);
                // A variable-size source (image files) has no shape; the transform must then
                // fix the output size, and says so when it does not.
                Ok(DataPath::Image(
                    Transform::new(t, source.sample_shape(), source.channels())?
                        .with_seed(config.seed),
                    source.image_targets().cloned(),
                ))
            }
        }
    }
}

/// Refuses, before any batch is allocated, a batch whose data would exceed `max_batch_bytes`
/// (sizes computed with checked arithmetic), and batches in flight that this process cannot
/// allocate (probed with a fallible reservation that is freed at once: it only takes address
/// space, so it catches a memory limit or an over-large request without touching memory).
///
/// `per_sample` is the bytes one sample takes in a batch (`None` when computing it overflowed)
/// and `shape` says what a sample is, for the message.
pub(super) fn check_batch_memory(
    config: &Config,
    per_sample: Option<usize>,
    shape: &str,
) -> Result<()> {
    let per_batch = per_sample.and_then(|s| s.checked_mul(config.batch_size));
    let budget = config.max_batch_bytes;
    match per_batch {
        Some(bytes) if bytes as u64 <= budget => {}
        _ => {
            return Err(Error::invalid(format!(
                "config keys `batch_size` and `transform`: one batch of {} samples of {shape} \
                 takes {} bytes, more than `max_batch_bytes` = {budget}; lower `batch_size` or \
                 the output size (`transform.resize` or the crop), or raise `max_batch_bytes`",
                config.batch_size,
                per_batch.map_or("more than 2^64".to_string(), |b| b.to_string()),
            )))
        }
    }
    let per_batch = per_batch.unwrap_or(0);
    // The workers' batches, the window's, and one the consumer holds.
    let in_flight = (config.prefetch + config.workers + 1).saturating_mul(per_batch);
    let mut probe: Vec<u8> = Vec::new();
    if probe.try_reserve_exact(in_flight).is_err() {
        return Err(Error::invalid(format!(
            "config keys `batch_size`, `prefetch` and `workers`: the batches in flight \
             ((prefetch + workers + 1) × {per_batch} bytes = {in_flight}) cannot be allocated \
             in this process; lower one of them or the output size"
        )));
    }
    Ok(())
}
