//! Checkpoint bytes of a fixed subset (and its random share's pool), the state of the static
//! policies and `influence`.

use crate::codec::{Reader, Writer};

/// Checkpoint bytes of a fixed subset (static and influence policies): empty until it is
/// chosen, else `tag` and the kept ids. The tag keeps one policy from loading another's state.
pub(crate) fn save_subset(tag: u8, kept: Option<&[u64]>, extra: &[f64]) -> Vec<u8> {
    save_with_pool(tag, kept, extra, &[])
}

/// `save_subset`, then, when `pool` is not empty, the pool's ids (a static policy's random
/// share is drawn from them; `extra` then holds its size). Without a pool the bytes are
/// `save_subset`'s.
pub(crate) fn save_with_pool(
    tag: u8,
    kept: Option<&[u64]>,
    extra: &[f64],
    pool: &[u64],
) -> Vec<u8> {
    let Some(kept) = kept else {
        return Vec::new();
    };
    let mut w = Writer::default();
    w.u8(tag);
    w.u64s(kept);
    w.u64(extra.len() as u64);
    extra.iter().for_each(|&x| w.f64(x));
    if !pool.is_empty() {
        w.u64s(pool);
    }
    w.buf
}

/// A subset read back: its ids, its extra numbers and its pool (empty when none was saved).
pub(crate) struct Subset {
    pub ids: Vec<u64>,
    pub extra: Vec<f64>,
    pub pool: Vec<u64>,
}

/// Parses `save_with_pool`'s (or `save_subset`'s) bytes for a dataset of `n`: `Some(None)` for
/// no subset yet, `Some(Some(subset))`, or `None` when the bytes do not fit.
pub(crate) fn load_with_pool(bytes: &[u8], tag: u8, n: usize) -> Option<Option<Subset>> {
    if bytes.is_empty() {
        return Some(None);
    }
    let mut r = Reader::new(bytes, 0);
    if r.u8()? != tag {
        return None;
    }
    // Ascending and below n: at most n of them, refused beyond before being read.
    let ids = r.u64s_max(n)?;
    let count = r.u64()?;
    if count > 16 {
        return None;
    }
    let extra = (0..count).map(|_| r.f64()).collect::<Option<Vec<_>>>()?;
    let pool = if r.done() { Vec::new() } else { r.u64s_max(n)? };
    let valid = |ids: &[u64]| {
        ids.windows(2).all(|w| w[0] < w[1]) && ids.last().is_none_or(|&i| i < n as u64)
    };
    (r.done() && valid(&ids) && valid(&pool)).then_some(Some(Subset { ids, extra, pool }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_and_without_a_pool() {
        assert!(save_subset(1, None, &[]).is_empty());
        assert!(matches!(load_with_pool(&[], 1, 5), Some(None)));
        let plain = save_subset(1, Some(&[0, 3]), &[2.0]);
        assert_eq!(plain, save_with_pool(1, Some(&[0, 3]), &[2.0], &[]));
        let s = load_with_pool(&plain, 1, 5).unwrap().unwrap();
        assert_eq!((s.ids, s.extra, s.pool), (vec![0, 3], vec![2.0], vec![]));
        let pooled = save_with_pool(1, Some(&[0, 3]), &[2.0], &[1, 4]);
        let s = load_with_pool(&pooled, 1, 5).unwrap().unwrap();
        assert_eq!((s.ids, s.pool), (vec![0, 3], vec![1, 4]));
        // Another tag, an id ≥ n, truncated bytes: refused.
        assert!(load_with_pool(&pooled, 2, 5).is_none());
        assert!(load_with_pool(&pooled, 1, 4).is_none());
        assert!(load_with_pool(&pooled[..pooled.len() - 1], 1, 5).is_none());
    }
}
