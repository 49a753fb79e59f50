//! `grand` (Paul et al., "Data Diet"; ALGORITHMS.md §6): score = `grad_norm_ema`, the EMA of
//! the per-sample gradient norm over the scoring epochs; a sample counts as seen once it has a
//! gradient norm. The window and the fixed subset are `static_window`'s.

use super::static_window::StaticSubset;
use super::{PlanContext, Policy, Selection, StaticConfig};
use crate::scores::{ScoreBook, ScoreFields};

pub struct Grand {
    subset: StaticSubset,
}

impl Grand {
    pub fn new(config: StaticConfig, n: usize) -> Self {
        Grand {
            subset: StaticSubset::new(&config, n, Grand::scores),
        }
    }

    /// Writes each sample's `grad_norm_ema` into `out` (length N); NaN, the ScoreBook's value
    /// before the first gradient norm, marks the never-seen.
    pub fn scores(book: &ScoreBook, out: &mut [f32]) {
        for (s, &g) in out.iter_mut().zip(&book.grad_norm_ema) {
            *s = g;
        }
    }
}

impl Policy for Grand {
    fn needs(&self) -> ScoreFields {
        ScoreFields::GRAD_NORM
    }

    fn select(&mut self, ctx: &PlanContext<'_>, out: &mut Selection) {
        self.subset.select(ctx, out);
    }

    fn save_state(&self) -> Vec<u8> {
        self.subset.save_state(6)
    }

    fn load_state(&mut self, bytes: &[u8]) -> bool {
        self.subset.load_state(bytes, 6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scores::Feedback;

    fn config(prune: f64, score_epochs: u64, drop_hardest: f64) -> StaticConfig {
        StaticConfig {
            prune,
            score_epochs: Some(score_epochs),
            drop_hardest,
            scores_from: vec![],
        }
    }

    fn select(policy: &mut Grand, book: &ScoreBook, epoch: u64) -> Selection {
        let mut out = Selection::default();
        let ctx = PlanContext {
            epoch,
            seed: 3,
            scores: book,
        };
        policy.select(&ctx, &mut out);
        out
    }

    /// Loss and EL2N rank the samples the other way round, so reading the wrong field shows.
    fn feed(book: &mut ScoreBook, ids: &[u64], grad_norm: &[f32], epoch: u64) {
        let other: Vec<f32> = grad_norm.iter().map(|g| 100.0 - g).collect();
        let fb = Feedback {
            ids,
            loss: &other,
            grad_norm: Some(grad_norm),
            el2n: Some(&other),
            ..Default::default()
        };
        book.feedback(&fb, epoch).unwrap();
    }

    #[test]
    fn keeps_the_highest_grad_norm_after_scoring() {
        let n = 10;
        let mut book = ScoreBook::new(n, ScoreFields::ALL);
        let mut policy = Grand::new(config(0.6, 1, 0.0), n);
        assert_eq!(policy.needs(), ScoreFields::GRAD_NORM);
        let ids: Vec<u64> = (0..n as u64).collect();
        let g: Vec<f32> = [3, 9, 1, 7, 5, 0, 8, 2, 6, 4].map(|x| x as f32).to_vec();
        feed(&mut book, &ids, &g, 0);
        assert_eq!(select(&mut policy, &book, 0).ids, ids);
        // K = 4: the gradient norms 9, 8, 7, 6.
        let fixed = select(&mut policy, &book, 1);
        assert_eq!(fixed.ids, vec![1, 3, 6, 8]);
        let reversed: Vec<f32> = g.iter().map(|x| 9.0 - x).collect();
        feed(&mut book, &ids, &reversed, 1);
        assert_eq!(select(&mut policy, &book, 2).ids, vec![1, 3, 6, 8]);
    }

    #[test]
    fn drop_hardest_skips_the_top() {
        let n = 10;
        let mut book = ScoreBook::new(n, ScoreFields::GRAD_NORM);
        let ids: Vec<u64> = (0..n as u64).collect();
        let g: Vec<f32> = [3, 9, 1, 7, 5, 0, 8, 2, 6, 4].map(|x| x as f32).to_vec();
        feed(&mut book, &ids, &g, 0);
        // K = 4, round(0.2·10) = 2 hardest skipped: the norms 7, 6, 5, 4.
        let mut policy = Grand::new(config(0.6, 1, 0.2), n);
        assert_eq!(select(&mut policy, &book, 1).ids, vec![3, 4, 8, 9]);
    }
}
