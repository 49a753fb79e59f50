//! The plan cache of the periodic policies (`epsilon_greedy`, `ucb`): one period's kept ids,
//! keyed by (seed, period index), and its checkpoint bytes. The ids are held as a mask over
//! 0..N (the form the selection builds them in, N bytes instead of 8 bytes a kept id); the
//! checkpoint bytes list them, ascending. With a rescaled random share the cache also holds the
//! drawn ids that weigh more than 1 (a second mask) and their one weight.

use crate::codec::{Reader, Writer};

/// The cached weight and the ids that carry it, as read from checkpoint bytes.
type Heavy = Option<(f32, Vec<u64>)>;

/// The selection of the current period: epochs inside a period return it unchanged, and a
/// checkpoint carries it so that a run resumed mid-period keeps the set it would have kept
/// (re-planning from the resumed ScoreBook would not).
#[derive(Default)]
pub(super) struct PeriodCache {
    /// (seed, epoch / period) of the cached plan.
    key: Option<(u64, u64)>,
    /// Per id, whether it is kept; empty when nothing is cached.
    pub(super) kept: Vec<bool>,
    /// Per id, whether it is kept at `weight` rather than 1; empty when every kept id weighs 1.
    pub(super) heavy: Vec<bool>,
    /// The weight of the ids `heavy` marks.
    pub(super) weight: f32,
}

impl PeriodCache {
    pub(super) fn holds(&self, seed: u64, draw: u64) -> bool {
        self.key == Some((seed, draw))
    }

    pub(super) fn set(&mut self, seed: u64, draw: u64) {
        self.key = Some((seed, draw));
    }

    /// Appends the kept ids to `out`, ascending.
    pub(super) fn extend_ids(&self, out: &mut Vec<u64>) {
        super::extend_true(out, &self.kept);
    }

    /// The kept ids, ascending.
    pub(super) fn ids(&self) -> Vec<u64> {
        let mut ids = Vec::new();
        self.extend_ids(&mut ids);
        ids
    }

    /// The ids kept at `weight`, ascending.
    pub(super) fn heavy_ids(&self) -> Vec<u64> {
        let mut ids = Vec::new();
        super::extend_true(&mut ids, &self.heavy);
        ids
    }

    /// Appends the kept ids (ascending) and their weights to `out`, and returns `mean_std` of
    /// `values` over the ids with `counts[id] > 0` (`extend_kept_and_stats`).
    pub(super) fn extend_selection(
        &self,
        counts: &[u32],
        values: &[f32],
        out: &mut super::Selection,
    ) -> (f64, f64) {
        super::kept_stats::extend_kept_and_stats(
            &self.kept,
            &self.heavy,
            self.weight,
            counts,
            values,
            out,
        )
    }

    /// Empty when nothing is cached; otherwise `tag`, seed, draw and the ids, then, when some
    /// ids weigh more than 1, their weight (as f64) and those ids. The tag keeps one policy
    /// from loading another's state; a plan with every weight 1 has the bytes it had before
    /// weights were cached.
    pub(super) fn save(&self, tag: u8) -> Vec<u8> {
        let Some((seed, draw)) = self.key else {
            return Vec::new();
        };
        let mut w = Writer::default();
        w.u8(tag);
        w.u64(seed);
        w.u64(draw);
        w.u64s(&self.ids());
        if !self.heavy.is_empty() {
            w.f64(self.weight as f64);
            w.u64s(&self.heavy_ids());
        }
        w.buf
    }

    /// `save`'s bytes for a dataset of `n` samples; `None` when they do not fit.
    #[allow(clippy::type_complexity)]
    fn parse(bytes: &[u8], tag: u8, n: usize) -> Option<((u64, u64), Vec<u64>, Heavy)> {
        let mut r = Reader::new(bytes, 0);
        if r.u8()? != tag {
            return None;
        }
        let key = (r.u64()?, r.u64()?);
        // Ascending and below n: at most n of them, refused beyond before being read.
        let ids = r.u64s_max(n)?;
        let valid = |ids: &[u64]| {
            ids.windows(2).all(|w| w[0] < w[1]) && ids.last().is_none_or(|&id| id < n as u64)
        };
        let heavy = if r.done() {
            None
        } else {
            let weight = r.f64()? as f32;
            let heavy = r.u64s_max(n)?;
            // A weight is a positive finite number, and only kept ids carry one.
            let kept = |id: &u64| ids.binary_search(id).is_ok();
            if !(weight.is_finite() && weight > 0.0 && valid(&heavy) && heavy.iter().all(kept)) {
                return None;
            }
            Some((weight, heavy))
        };
        (r.done() && valid(&ids)).then_some((key, ids, heavy))
    }

    /// Restores `save`'s bytes (empty: nothing cached); `false`, and nothing changed, when they
    /// do not fit.
    pub(super) fn load(&mut self, bytes: &[u8], tag: u8, n: usize) -> bool {
        if bytes.is_empty() {
            self.key = None;
            self.kept.clear();
            self.heavy.clear();
            return true;
        }
        match Self::parse(bytes, tag, n) {
            Some((key, ids, heavy)) => {
                self.key = Some(key);
                self.kept.clear();
                self.kept.resize(n, false);
                ids.iter().for_each(|&id| self.kept[id as usize] = true);
                self.heavy.clear();
                if let Some((weight, heavy)) = heavy {
                    self.weight = weight;
                    self.heavy.resize(n, false);
                    heavy.iter().for_each(|&id| self.heavy[id as usize] = true);
                }
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_round_trip_and_refusals() {
        let mut cache = PeriodCache::default();
        assert!(cache.save(3).is_empty(), "nothing cached, no bytes");
        cache.kept = (0..10).map(|id| [1, 4, 9].contains(&id)).collect();
        cache.set(7, 2);
        let bytes = cache.save(3);
        let mut back = PeriodCache::default();
        assert!(back.load(&bytes, 3, 10));
        assert!(back.holds(7, 2) && !back.holds(7, 3) && !back.holds(8, 2));
        assert_eq!(back.ids(), vec![1, 4, 9]);
        // Another policy's tag, an id ≥ n, truncated bytes: refused, nothing changed.
        for (b, n) in [
            (cache.save(4), 10),
            (bytes.clone(), 9),
            (bytes[..bytes.len() - 1].to_vec(), 10),
        ] {
            assert!(!back.load(&b, 3, n));
            assert!(back.holds(7, 2));
            assert_eq!(back.ids(), vec![1, 4, 9]);
        }
        assert!(back.load(&[], 3, 10));
        assert!(!back.holds(7, 2) && back.ids().is_empty());
    }

    #[test]
    fn weights_round_trip_and_bad_weights_are_refused() {
        let mut cache = PeriodCache {
            kept: (0..10).map(|id| [1, 4, 9].contains(&id)).collect(),
            ..Default::default()
        };
        cache.set(7, 2);
        let plain = cache.save(3);
        cache.heavy = (0..10).map(|id| id == 4 || id == 9).collect();
        cache.weight = 2.5;
        let bytes = cache.save(3);
        assert!(bytes.starts_with(&plain) && bytes.len() > plain.len());
        let mut back = PeriodCache::default();
        assert!(back.load(&bytes, 3, 10));
        assert_eq!(back.heavy_ids(), vec![4, 9]);
        let mut out = super::super::Selection::default();
        back.extend_selection(&[0; 10], &[0.0; 10], &mut out);
        assert_eq!((out.ids, out.weights), (vec![1, 4, 9], vec![1.0, 2.5, 2.5]));
        // Weight-1 bytes load with no heavy ids.
        assert!(back.load(&plain, 3, 10));
        assert!(back.heavy.is_empty());
        let mut out = super::super::Selection::default();
        back.extend_selection(&[0; 10], &[0.0; 10], &mut out);
        assert_eq!((out.ids, out.weights), (vec![1, 4, 9], vec![1.0; 3]));
        // A heavy id that is not kept, a NaN or negative weight: refused, nothing changed.
        for (weight, heavy) in [(2.5f32, 5usize), (f32::NAN, 4), (-1.0, 4)] {
            cache.weight = weight;
            cache.heavy = (0..10).map(|id| id == heavy).collect();
            assert!(!back.load(&cache.save(3), 3, 10), "{weight} {heavy}");
            assert!(back.heavy.is_empty() && back.ids() == vec![1, 4, 9]);
        }
    }
}
