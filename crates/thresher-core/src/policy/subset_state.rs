//! Checkpoint bytes of a fixed subset, the state of the static policies and `influence`.

/// Checkpoint bytes of a fixed subset (static and influence policies): empty until it is
/// chosen, else `tag` and the kept ids. The tag keeps one policy from loading another's state.
pub(crate) fn save_subset(tag: u8, kept: Option<&[u64]>, extra: &[f64]) -> Vec<u8> {
    let Some(kept) = kept else {
        return Vec::new();
    };
    let mut w = crate::codec::Writer::default();
    w.u8(tag);
    w.u64s(kept);
    w.u64(extra.len() as u64);
    extra.iter().for_each(|&x| w.f64(x));
    w.buf
}

/// Parses `save_subset`'s bytes for a dataset of `n`: `Some(None)` for no subset yet,
/// `Some(Some((ids, extra)))`, or `None` when the bytes do not fit.
#[allow(clippy::type_complexity)]
pub(crate) fn load_subset(bytes: &[u8], tag: u8, n: usize) -> Option<Option<(Vec<u64>, Vec<f64>)>> {
    if bytes.is_empty() {
        return Some(None);
    }
    let mut r = crate::codec::Reader::new(bytes, 0);
    if r.u8()? != tag {
        return None;
    }
    // Ascending and below n: at most n of them, refused beyond before being read.
    let ids = r.u64s_max(n)?;
    let count = r.u64()?;
    let extra = (0..count.min(16))
        .map(|_| r.f64())
        .collect::<Option<Vec<_>>>()?;
    let valid = ids.windows(2).all(|w| w[0] < w[1]) && ids.last().is_none_or(|&i| i < n as u64);
    (r.done() && valid).then_some(Some((ids, extra)))
}
