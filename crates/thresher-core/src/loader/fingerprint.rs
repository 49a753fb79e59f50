//! The dataset fingerprint a checkpoint records besides N, so that resuming on other data is
//! refused: made from what a source says of itself, without reading a sample.

use crate::source::Source;

/// Samples whose file name and size enter the dataset fingerprint.
const FINGERPRINT_SAMPLES: usize = 16;

/// What a checkpoint records of the dataset besides N (see docs/policies.md, *Resume*): a hash
/// of the sample shape, every label, and for `FINGERPRINT_SAMPLES` samples spread evenly over
/// the ids (ids ⌊j·N/16⌋) the last path component of where each comes from (a file name, or a
/// tar member's) and the size of that file (the shard's for a member). Nothing is read: a
/// source's reads may block (a hung mount) and creating a loader must not; `stat` does not
/// open the file. Names rather than whole paths, and sizes rather than times, so a dataset
/// moved or copied elsewhere keeps its identity; a change that keeps every label, the sampled
/// names and their sizes goes unnoticed.
pub(super) fn dataset_fingerprint(source: &dyn Source) -> u64 {
    let mut h = crate::util::Fnv::default();
    let n = source.len();
    h.write(&(n as u64).to_le_bytes());
    for v in source.sample_shape().unwrap_or_default() {
        h.write(&(v as u64).to_le_bytes());
    }
    h.write(&(source.channels() as u64).to_le_bytes());
    // Typed sources (npy, tokens): the dtype and per-sample shape of each tensor.
    if let Some(spec) = source.tensors() {
        for t in [Some(&spec.data), spec.targets.as_ref(), spec.mask.as_ref()] {
            let Some(t) = t else { continue };
            h.write(t.dtype.name().as_bytes());
            for &d in &t.shape {
                h.write(&(d as u64).to_le_bytes());
            }
        }
    }
    for id in 0..n {
        h.write(&source.label(id).to_le_bytes());
    }
    for j in 0..FINGERPRINT_SAMPLES.min(n) {
        let id = j * n / FINGERPRINT_SAMPLES.min(n);
        let Some(location) = source.location(id) else {
            continue;
        };
        h.write(location.rsplit('/').next().unwrap_or_default().as_bytes());
        // A path, or `shard:member` (the shard's size then).
        // A token source's location is `path (tokens from k)` / `path (document j)`.
        let file = location.split(" (").next().unwrap_or_default();
        let size = std::fs::metadata(file)
            .or_else(|e| match location.rsplit_once(':') {
                Some((shard, _)) => std::fs::metadata(shard),
                None => Err(e),
            })
            .map_or(u64::MAX, |m| m.len());
        h.write(&size.to_le_bytes());
    }
    h.0
}
