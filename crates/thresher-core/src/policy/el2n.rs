//! `el2n` (Paul et al., "Data Diet"; ALGORITHMS.md §6): score = the mean EL2N,
//! ‖softmax(f(x)) − onehot(y)‖₂, over the scoring epochs; a sample counts as seen once it has
//! an EL2N value. The window and the fixed subset are `static_window`'s.

use super::static_window::StaticSubset;
use super::{PlanContext, Policy, Selection, StaticConfig};
use crate::scores::{ScoreBook, ScoreFields};

pub struct El2n {
    subset: StaticSubset,
}

impl El2n {
    pub fn new(config: StaticConfig, n: usize) -> Self {
        El2n {
            subset: StaticSubset::new(&config, n, El2n::scores),
        }
    }

    /// Writes each sample's mean EL2N into `out` (length N, pre-filled with NaN), leaving NaN
    /// where there is none yet.
    pub fn scores(book: &ScoreBook, out: &mut [f32]) {
        for ((s, &sum), &count) in out.iter_mut().zip(&book.el2n_sum).zip(&book.el2n_n) {
            if count > 0 {
                *s = sum / count as f32;
            }
        }
    }
}

impl Policy for El2n {
    fn needs(&self) -> ScoreFields {
        ScoreFields::EL2N
    }

    fn select(&mut self, ctx: &PlanContext<'_>, out: &mut Selection) {
        self.subset.select(ctx, out);
    }

    fn save_state(&self) -> Vec<u8> {
        self.subset.save_state(5)
    }

    fn load_state(&mut self, bytes: &[u8]) -> bool {
        self.subset.load_state(bytes, 5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scores::Feedback;

    fn config(prune: f64, score_epochs: u64) -> StaticConfig {
        StaticConfig {
            prune,
            score_epochs: Some(score_epochs),
            drop_hardest: 0.0,
            scores_from: vec![],
        }
    }

    fn select(policy: &mut El2n, book: &ScoreBook, epoch: u64) -> Selection {
        let mut out = Selection::default();
        let ctx = PlanContext {
            epoch,
            seed: 3,
            scores: book,
        };
        policy.select(&ctx, &mut out);
        out
    }

    /// Every other signal ranks the samples the other way round, so a policy that read the
    /// wrong field would keep the wrong half.
    fn feed(book: &mut ScoreBook, ids: &[u64], el2n: &[f32], epoch: u64) {
        let loss: Vec<f32> = el2n.iter().map(|e| 100.0 - e).collect();
        let fb = Feedback {
            ids,
            loss: &loss,
            grad_norm: Some(&loss),
            el2n: Some(el2n),
            ..Default::default()
        };
        book.feedback(&fb, epoch).unwrap();
    }

    #[test]
    fn keeps_the_highest_mean_el2n_after_scoring() {
        let n = 8;
        let mut book = ScoreBook::new(n, ScoreFields::ALL);
        let mut policy = El2n::new(config(0.5, 2), n);
        assert_eq!(policy.needs(), ScoreFields::EL2N);
        let ids: Vec<u64> = (0..n as u64).collect();
        // Means over two epochs: id i → i, a ranking neither epoch has alone.
        feed(
            &mut book,
            &ids,
            &[0.0, 0.0, 0.0, 0.0, 8.0, 10.0, 12.0, 14.0],
            0,
        );
        assert_eq!(select(&mut policy, &book, 0).ids, ids);
        feed(
            &mut book,
            &ids,
            &[0.0, 2.0, 4.0, 6.0, 0.0, 0.0, 0.0, 0.0],
            1,
        );
        assert_eq!(select(&mut policy, &book, 1).ids, ids);
        let fixed = select(&mut policy, &book, 2);
        assert_eq!(fixed.ids, vec![4, 5, 6, 7]);
        assert!((fixed.score_mean - 3.5).abs() < 1e-6);
        // Later feedback reverses the ranking; the subset stays.
        feed(
            &mut book,
            &ids,
            &[99.0, 99.0, 99.0, 99.0, 0.0, 0.0, 0.0, 0.0],
            2,
        );
        assert_eq!(select(&mut policy, &book, 3).ids, vec![4, 5, 6, 7]);
    }

    #[test]
    fn samples_without_el2n_are_kept() {
        let n = 6;
        let mut book = ScoreBook::new(n, ScoreFields::EL2N);
        // Ids 0..4 have EL2N; 4 and 5 had loss-only feedback, which does not make them seen.
        feed(&mut book, &[0, 1, 2, 3], &[4.0, 3.0, 2.0, 1.0], 0);
        let fb = Feedback {
            ids: &[4, 5],
            loss: &[1.0, 1.0],
            ..Default::default()
        };
        book.feedback(&fb, 0).unwrap();
        let mut policy = El2n::new(config(0.5, 1), n);
        // K = 3, two never-seen → one seen slot: the highest EL2N, id 0.
        assert_eq!(select(&mut policy, &book, 1).ids, vec![0, 4, 5]);
    }
}
