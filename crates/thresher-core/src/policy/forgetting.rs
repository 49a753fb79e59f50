//! `forgetting` (Toneva et al.; ALGORITHMS.md §6): score = the number of forgetting events
//! (correct → incorrect between consecutive presentations) over the scoring epochs. A sample
//! that was seen but never classified correctly scores +∞: it was never learnt, so it is the
//! hardest of all (Toneva et al. count it as forgotten infinitely often). A sample counts as
//! seen once it has a correctness report. The window and the fixed subset are `static_window`'s.

use super::static_window::StaticSubset;
use super::{PlanContext, Policy, Selection, StaticConfig};
use crate::scores::{ScoreBook, ScoreFields};

pub struct Forgetting {
    subset: StaticSubset,
}

impl Forgetting {
    pub fn new(config: StaticConfig, n: usize) -> Self {
        Forgetting {
            subset: StaticSubset::new(&config, n, Forgetting::scores),
        }
    }

    /// Writes each sample's forgetting count into `out` (length N): +∞ when never correct, NaN
    /// when never reported.
    pub fn scores(book: &ScoreBook, out: &mut [f32]) {
        let fields = book
            .correct_last
            .iter()
            .zip(&book.ever_correct)
            .zip(&book.forgets);
        for (s, ((&last, &ever), &forgets)) in out.iter_mut().zip(fields) {
            if last != 2 {
                *s = if ever == 0 { f32::INFINITY } else { forgets };
            }
        }
    }
}

impl Policy for Forgetting {
    fn needs(&self) -> ScoreFields {
        ScoreFields::CORRECT
    }

    fn select(&mut self, ctx: &PlanContext<'_>, out: &mut Selection) {
        self.subset.select(ctx, out);
    }

    fn save_state(&self) -> Vec<u8> {
        self.subset.save_state(7)
    }

    fn load_state(&mut self, bytes: &[u8]) -> bool {
        self.subset.load_state(bytes, 7)
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

    fn select(policy: &mut Forgetting, book: &ScoreBook, epoch: u64) -> Selection {
        let mut out = Selection::default();
        let ctx = PlanContext {
            epoch,
            seed: 3,
            scores: book,
        };
        policy.select(&ctx, &mut out);
        out
    }

    /// Loss, gradient norm and EL2N rank the samples by id, unlike the forgetting counts below.
    fn feed(book: &mut ScoreBook, ids: &[u64], correct: &[u8], epoch: u64) {
        let other: Vec<f32> = ids.iter().map(|&i| i as f32).collect();
        let fb = Feedback {
            ids,
            loss: &other,
            grad_norm: Some(&other),
            el2n: Some(&other),
            correct: Some(correct),
            ..Default::default()
        };
        book.feedback(&fb, epoch).unwrap();
    }

    #[test]
    fn never_correct_ranks_above_every_count_and_the_subset_stays() {
        let n = 6;
        let mut book = ScoreBook::new(n, ScoreFields::ALL);
        let mut policy = Forgetting::new(config(0.5, 3), n);
        assert_eq!(policy.needs(), ScoreFields::CORRECT);
        let ids: Vec<u64> = (0..n as u64).collect();
        // Forgets after three epochs: id 0 → 1, id 1 → never correct, id 2 → 0, id 3 → 1,
        // id 4 → 0, id 5 → never correct.
        let epochs: [[u8; 6]; 3] = [[1, 0, 1, 1, 0, 0], [0, 0, 1, 0, 0, 0], [1, 0, 1, 1, 1, 0]];
        for (e, correct) in epochs.iter().enumerate() {
            feed(&mut book, &ids, correct, e as u64);
            assert_eq!(select(&mut policy, &book, e as u64).ids, ids, "epoch {e}");
        }
        // K = 3: both never-correct samples (+∞), then the count-1 tie broken toward the
        // larger id (ties rank ascending by id, the window takes the top).
        let fixed = select(&mut policy, &book, 3);
        assert_eq!(fixed.ids, vec![1, 3, 5]);
        // The mean/std leave the +∞ out: counts 1, 0, 1, 0.
        assert!((fixed.score_mean - 0.5).abs() < 1e-9);
        for e in 3..6 {
            feed(&mut book, &ids, &[0, 1, 0, 1, 0, 1], e);
        }
        assert_eq!(select(&mut policy, &book, 6).ids, vec![1, 3, 5]);
    }

    #[test]
    fn never_reported_is_kept_and_never_correct_comes_first() {
        let n = 5;
        let mut book = ScoreBook::new(n, ScoreFields::CORRECT);
        // Id 4 never reported; id 3 seen once, wrong; ids 0..3 forgot 2, 0, 1 times.
        feed(&mut book, &[0, 1, 2, 3], &[1, 1, 1, 0], 0);
        feed(&mut book, &[0, 1, 2], &[0, 1, 0], 1);
        feed(&mut book, &[0, 1, 2], &[1, 1, 1], 2);
        feed(&mut book, &[0, 1, 2], &[0, 1, 1], 3);
        let mut policy = Forgetting::new(config(0.4, 1), n);
        // K = 3: id 4 (never reported), then id 3 (+∞), then id 0 (2 forgets).
        assert_eq!(select(&mut policy, &book, 4).ids, vec![0, 3, 4]);
        let mut scores = vec![f32::NAN; n];
        Forgetting::scores(&book, &mut scores);
        assert_eq!(&scores[..4], &[2.0, 0.0, 1.0, f32::INFINITY]);
        assert!(scores[4].is_nan());
    }
}
