//! The plan cache of the periodic policies (`epsilon_greedy`, `ucb`): one period's kept ids,
//! keyed by (seed, period index), and its checkpoint bytes. The ids are held as a mask over
//! 0..N (the form the selection builds them in, N bytes instead of 8 bytes a kept id); the
//! checkpoint bytes list them, ascending.

use crate::codec::{Reader, Writer};

/// The selection of the current period: epochs inside a period return it unchanged, and a
/// checkpoint carries it so that a run resumed mid-period keeps the set it would have kept
/// (re-planning from the resumed ScoreBook would not).
#[derive(Default)]
pub(super) struct PeriodCache {
    /// (seed, epoch / period) of the cached plan.
    key: Option<(u64, u64)>,
    /// Per id, whether it is kept (all kept ids weigh 1); empty when nothing is cached.
    pub(super) kept: Vec<bool>,
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
        let kept = &self.kept;
        super::extend_where(out, kept.len(), |id| kept[id]);
    }

    /// The kept ids, ascending.
    pub(super) fn ids(&self) -> Vec<u64> {
        let mut ids = Vec::new();
        self.extend_ids(&mut ids);
        ids
    }

    /// Empty when nothing is cached; otherwise `tag`, seed, draw and the ids. The tag keeps one
    /// policy from loading another's state.
    pub(super) fn save(&self, tag: u8) -> Vec<u8> {
        let Some((seed, draw)) = self.key else {
            return Vec::new();
        };
        let mut w = Writer::default();
        w.u8(tag);
        w.u64(seed);
        w.u64(draw);
        w.u64s(&self.ids());
        w.buf
    }

    /// `save`'s bytes for a dataset of `n` samples; `None` when they do not fit.
    fn parse(bytes: &[u8], tag: u8, n: usize) -> Option<((u64, u64), Vec<u64>)> {
        let mut r = Reader::new(bytes, 0);
        if r.u8()? != tag {
            return None;
        }
        let key = (r.u64()?, r.u64()?);
        // Ascending and below n: at most n of them, refused beyond before being read.
        let ids = r.u64s_max(n)?;
        let ascending = ids.windows(2).all(|w| w[0] < w[1]);
        let in_range = ids.last().is_none_or(|&id| id < n as u64);
        (r.done() && ascending && in_range).then_some((key, ids))
    }

    /// Restores `save`'s bytes (empty: nothing cached); `false`, and nothing changed, when they
    /// do not fit.
    pub(super) fn load(&mut self, bytes: &[u8], tag: u8, n: usize) -> bool {
        if bytes.is_empty() {
            self.key = None;
            self.kept.clear();
            return true;
        }
        match Self::parse(bytes, tag, n) {
            Some((key, ids)) => {
                self.key = Some(key);
                self.kept.clear();
                self.kept.resize(n, false);
                ids.iter().for_each(|&id| self.kept[id as usize] = true);
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
}
