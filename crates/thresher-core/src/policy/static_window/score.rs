//! The scores the static policies rank by, one type per policy, each a function of the
//! ScoreBook that leaves NaN for the samples it counts as never seen.
//!
//! - `el2n` (Paul et al., "Data Diet"): the mean EL2N, ‖softmax(f(x)) − onehot(y)‖₂; seen
//!   once a sample has an EL2N value.
//! - `grand` (Paul et al., "Data Diet"): `grad_norm_ema`, the EMA of the per-sample gradient
//!   norm; seen once a sample has a gradient norm.
//! - `forgetting` (Toneva et al.): the number of forgetting events (correct → incorrect
//!   between consecutive presentations). A sample seen but never classified correctly scores
//!   +∞: it was never learnt, so it is the hardest of all (Toneva et al. count it as forgotten
//!   infinitely often). Seen once a sample has a correctness report.

use crate::scores::record::Slot;
use crate::scores::{ScoreBook, ScoreFields};

/// What distinguishes one static policy from another: the ScoreBook fields it reads, the tag of
/// its checkpoint bytes, and the score itself.
pub trait StaticScore {
    /// The ScoreBook fields `scores` reads.
    const NEEDS: ScoreFields;
    /// First byte of the policy's checkpoint state: keeps one static policy from loading
    /// another's subset. Part of the checkpoint format.
    const STATE_TAG: u8;
    /// Whether the guarded default rescales the random share (`rescale` unset, noise guard on;
    /// docs/policies.md, *The noise guard*, step 4). True but for forgetting.
    const RESCALE_BY_DEFAULT: bool = true;
    /// Writes each sample's score into `out` (length N, any contents), NaN where the sample
    /// has none yet: every element is written, so the caller need not fill `out` first (a
    /// pass over N saved at every plan).
    fn scores(book: &ScoreBook, out: &mut [f32]);
}

/// The score of `el2n`: the mean EL2N over the scoring epochs.
pub struct El2nScore;

impl StaticScore for El2nScore {
    const NEEDS: ScoreFields = ScoreFields::EL2N;
    const STATE_TAG: u8 = 5;

    fn scores(book: &ScoreBook, out: &mut [f32]) {
        let (words, per, slots) = book.record_words();
        match (slots.el2n_sum, slots.el2n_n) {
            (Some(sum), Some(count)) => el2n_wide(out, words, per, sum, count),
            _ => out.fill(f32::NAN),
        }
    }
}

/// The score of `grand`: `grad_norm_ema`, whose NaN before the first gradient norm marks the
/// never-seen.
pub struct GradNormScore;

impl StaticScore for GradNormScore {
    const NEEDS: ScoreFields = ScoreFields::GRAD_NORM;
    const STATE_TAG: u8 = 6;

    fn scores(book: &ScoreBook, out: &mut [f32]) {
        let (words, per, slots) = book.record_words();
        match slots.grad_norm_ema {
            Some(g) => grand_wide(out, words, per, g),
            None => out.fill(f32::NAN),
        }
    }
}

/// The score of `forgetting`: the forgetting count, +∞ when never correct, NaN when never
/// reported.
pub struct ForgettingScore;

impl StaticScore for ForgettingScore {
    const NEEDS: ScoreFields = ScoreFields::CORRECT;
    const STATE_TAG: u8 = 7;
    /// Without a budget, forgetting's fixed window with a rescaled share trained worse than
    /// random pruning at equal visits in the issue's own setting on clean labels (−0.55, every
    /// seed below), and without the rescale at or above it in the four cells tried
    /// (results/noise/README.md, "Forgetting without the rescale"). Under a budget it is
    /// rescaled all the same (`StaticConfig::rescale_for`).
    const RESCALE_BY_DEFAULT: bool = false;

    fn scores(book: &ScoreBook, out: &mut [f32]) {
        let (words, per, slots) = book.record_words();
        match (slots.correct_last, slots.ever_correct, slots.forgets) {
            (Some(last), Some(ever), Some(forgets)) => {
                forgetting_wide(out, words, per, [last, ever, forgets])
            }
            _ => out.fill(f32::NAN),
        }
    }
}

// The score passes read each id's record: `per` words (1, 2, 4 or 8), the fields at runtime
// word offsets. Each is written once per record width, so that the records are fixed-size
// arrays (`as_chunks`) and the loop vectorises, and compiled for the widest vector unit the
// CPU has (`widest!`). They write every element of `out` (the `StaticScore::scores` contract),
// with selects rather than branches: which case an id is in varies from id to id.

/// Calls `$f::<P>($args)` for the record width `$per`.
macro_rules! by_width {
    ($per:expr, $f:ident($($arg:expr),*)) => {
        match $per {
            1 => $f::<1>($($arg),*),
            2 => $f::<2>($($arg),*),
            4 => $f::<4>($($arg),*),
            _ => $f::<8>($($arg),*),
        }
    };
}

crate::util::widest!(fn el2n_wide(out: &mut [f32], words: &[u32], per: usize, sum: Slot, count: Slot) = el2n_rows);
crate::util::widest!(fn grand_wide(out: &mut [f32], words: &[u32], per: usize, g: Slot) = grand_rows);
crate::util::widest!(fn forgetting_wide(out: &mut [f32], words: &[u32], per: usize, slots: [Slot; 3]) = forgetting_rows);

#[inline(always)]
fn el2n_rows(out: &mut [f32], words: &[u32], per: usize, sum: Slot, count: Slot) {
    #[inline(always)]
    fn rows<const P: usize>(out: &mut [f32], words: &[u32], sum: Slot, count: Slot) {
        let (sw, cw) = (sum.word(), count.word());
        assert!(sw < P && cw < P);
        for (s, rec) in out.iter_mut().zip(words.as_chunks::<P>().0) {
            let n: u32 = count.of(rec[cw]);
            let mean = sum.of::<f32>(rec[sw]) / n as f32;
            *s = if n > 0 { mean } else { f32::NAN };
        }
    }
    by_width!(per, rows(out, words, sum, count))
}

#[inline(always)]
fn grand_rows(out: &mut [f32], words: &[u32], per: usize, g: Slot) {
    #[inline(always)]
    fn rows<const P: usize>(out: &mut [f32], words: &[u32], g: Slot) {
        let gw = g.word();
        assert!(gw < P);
        for (s, rec) in out.iter_mut().zip(words.as_chunks::<P>().0) {
            *s = g.of(rec[gw]);
        }
    }
    by_width!(per, rows(out, words, g))
}

/// `slots`: correct_last, ever_correct, forgets.
#[inline(always)]
fn forgetting_rows(out: &mut [f32], words: &[u32], per: usize, slots: [Slot; 3]) {
    #[inline(always)]
    fn rows<const P: usize>(out: &mut [f32], words: &[u32], [last, ever, forgets]: [Slot; 3]) {
        let (lw, ew, fw) = (last.word(), ever.word(), forgets.word());
        assert!(lw < P && ew < P && fw < P);
        for (s, rec) in out.iter_mut().zip(words.as_chunks::<P>().0) {
            let count: f32 = forgets.of(rec[fw]);
            let judged = if ever.of::<u8>(rec[ew]) == 0 {
                f32::INFINITY
            } else {
                count
            };
            *s = if last.of::<u8>(rec[lw]) == 2 {
                f32::NAN
            } else {
                judged
            };
        }
    }
    by_width!(per, rows(out, words, slots))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::static_window::StaticWindow;
    use crate::policy::{El2n, Forgetting, Grand, PlanContext, Policy, Selection, StaticConfig};
    use crate::scores::Feedback;

    fn config(prune: f64, score_epochs: u64, drop_hardest: f64) -> StaticConfig {
        StaticConfig {
            explore: None,
            rescale: None,
            noise_guard: false,
            guard_window: 2,
            budget: None,
            epochs: None,
            prune,
            score_epochs: Some(score_epochs),
            drop_hardest,
            scores_from: vec![],
        }
    }

    fn select<S: StaticScore>(
        policy: &mut StaticWindow<S>,
        book: &ScoreBook,
        epoch: u64,
    ) -> Selection {
        let mut out = Selection::default();
        let ctx = PlanContext {
            epoch,
            seed: 3,
            scores: book,
        };
        policy.select(&ctx, &mut out);
        out
    }

    /// The passes compiled for the widest vector unit give the plain loops' results to the bit,
    /// at every record width the books here have (1 word: grad_norm alone; 2: el2n or
    /// correctness; 4 and 8: more fields), with never-seen, never-correct and partly fed ids.
    #[test]
    fn the_wide_score_passes_give_the_plain_results() {
        let n = 1000;
        let mut x = 7u64;
        let mut next = move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u32
        };
        for fields in [
            ScoreFields::GRAD_NORM,
            ScoreFields::EL2N,
            ScoreFields::CORRECT,
            ScoreFields::GRAD_NORM.union(ScoreFields::CORRECT),
            ScoreFields::GRAD_NORM
                .union(ScoreFields::EL2N)
                .union(ScoreFields::CORRECT),
        ] {
            let mut book = ScoreBook::new(n, fields);
            for epoch in 0..4 {
                // Each epoch reports on a different part of the ids (some never).
                let ids: Vec<u64> = (0..n as u64).filter(|_| next() % 4 != 0).collect();
                let values: Vec<f32> = ids.iter().map(|_| (next() % 1000) as f32 / 7.0).collect();
                let correct: Vec<u8> = ids.iter().map(|_| (next() % 3 != 0) as u8).collect();
                let fb = Feedback {
                    ids: &ids,
                    loss: &values,
                    grad_norm: Some(&values),
                    el2n: Some(&values),
                    correct: Some(&correct),
                    ..Default::default()
                };
                book.feedback(&fb, epoch).unwrap();
            }
            let (words, per, slots) = book.record_words();
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            let (mut wide, mut plain) = (vec![0f32; n], vec![0f32; n]);
            if let Some(g) = slots.grad_norm_ema {
                grand_wide(&mut wide, words, per, g);
                grand_rows(&mut plain, words, per, g);
                assert_eq!(bits(&wide), bits(&plain), "grand {fields:?}");
            }
            if let (Some(sum), Some(count)) = (slots.el2n_sum, slots.el2n_n) {
                el2n_wide(&mut wide, words, per, sum, count);
                el2n_rows(&mut plain, words, per, sum, count);
                assert_eq!(bits(&wide), bits(&plain), "el2n {fields:?}");
                assert!(plain.iter().any(|s| s.is_nan()) && plain.iter().any(|s| s.is_finite()));
            }
            if let (Some(l), Some(e), Some(f)) =
                (slots.correct_last, slots.ever_correct, slots.forgets)
            {
                forgetting_wide(&mut wide, words, per, [l, e, f]);
                forgetting_rows(&mut plain, words, per, [l, e, f]);
                assert_eq!(bits(&wide), bits(&plain), "forgetting {fields:?}");
                assert!(plain.contains(&f32::INFINITY), "a never-correct id");
            }
        }
    }

    /// Every other signal ranks the samples the other way round, so a policy that read the
    /// wrong field would keep the wrong half.
    fn feed_el2n(book: &mut ScoreBook, ids: &[u64], el2n: &[f32], epoch: u64) {
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
        let mut policy = El2n::new(config(0.5, 2, 0.0), n);
        assert_eq!(policy.needs(), ScoreFields::EL2N.union(ScoreFields::STREAK));
        let ids: Vec<u64> = (0..n as u64).collect();
        // Means over two epochs: id i → i, a ranking neither epoch has alone.
        feed_el2n(
            &mut book,
            &ids,
            &[0.0, 0.0, 0.0, 0.0, 8.0, 10.0, 12.0, 14.0],
            0,
        );
        assert_eq!(select(&mut policy, &book, 0).ids, ids);
        feed_el2n(
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
        feed_el2n(
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
        feed_el2n(&mut book, &[0, 1, 2, 3], &[4.0, 3.0, 2.0, 1.0], 0);
        let fb = Feedback {
            ids: &[4, 5],
            loss: &[1.0, 1.0],
            ..Default::default()
        };
        book.feedback(&fb, 0).unwrap();
        let mut policy = El2n::new(config(0.5, 1, 0.0), n);
        // K = 3, two never-seen → one seen slot: the highest EL2N, id 0.
        assert_eq!(select(&mut policy, &book, 1).ids, vec![0, 4, 5]);
    }

    /// Loss and EL2N rank the samples the other way round, so reading the wrong field shows.
    fn feed_grad_norm(book: &mut ScoreBook, ids: &[u64], grad_norm: &[f32], epoch: u64) {
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
        assert_eq!(
            policy.needs(),
            ScoreFields::GRAD_NORM.union(ScoreFields::STREAK)
        );
        let ids: Vec<u64> = (0..n as u64).collect();
        let g: Vec<f32> = [3, 9, 1, 7, 5, 0, 8, 2, 6, 4].map(|x| x as f32).to_vec();
        feed_grad_norm(&mut book, &ids, &g, 0);
        assert_eq!(select(&mut policy, &book, 0).ids, ids);
        // K = 4: the gradient norms 9, 8, 7, 6.
        let fixed = select(&mut policy, &book, 1);
        assert_eq!(fixed.ids, vec![1, 3, 6, 8]);
        let reversed: Vec<f32> = g.iter().map(|x| 9.0 - x).collect();
        feed_grad_norm(&mut book, &ids, &reversed, 1);
        assert_eq!(select(&mut policy, &book, 2).ids, vec![1, 3, 6, 8]);
    }

    #[test]
    fn drop_hardest_skips_the_top() {
        let n = 10;
        let mut book = ScoreBook::new(n, ScoreFields::GRAD_NORM);
        let ids: Vec<u64> = (0..n as u64).collect();
        let g: Vec<f32> = [3, 9, 1, 7, 5, 0, 8, 2, 6, 4].map(|x| x as f32).to_vec();
        feed_grad_norm(&mut book, &ids, &g, 0);
        // K = 4, round(0.2·10) = 2 hardest skipped: the norms 7, 6, 5, 4.
        let mut policy = Grand::new(config(0.6, 1, 0.2), n);
        assert_eq!(select(&mut policy, &book, 1).ids, vec![3, 4, 8, 9]);
    }

    /// Loss, gradient norm and EL2N rank the samples by id, unlike the forgetting counts below.
    fn feed_correct(book: &mut ScoreBook, ids: &[u64], correct: &[u8], epoch: u64) {
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
        let mut policy = Forgetting::new(config(0.5, 3, 0.0), n);
        assert_eq!(
            policy.needs(),
            ScoreFields::CORRECT.union(ScoreFields::STREAK)
        );
        let ids: Vec<u64> = (0..n as u64).collect();
        // Forgets after three epochs: id 0 → 1, id 1 → never correct, id 2 → 0, id 3 → 1,
        // id 4 → 0, id 5 → never correct.
        let epochs: [[u8; 6]; 3] = [[1, 0, 1, 1, 0, 0], [0, 0, 1, 0, 0, 0], [1, 0, 1, 1, 1, 0]];
        for (e, correct) in epochs.iter().enumerate() {
            feed_correct(&mut book, &ids, correct, e as u64);
            assert_eq!(select(&mut policy, &book, e as u64).ids, ids, "epoch {e}");
        }
        // K = 3: both never-correct samples (+∞), then the count-1 tie broken toward the
        // larger id (ties rank ascending by id, the window takes the top).
        let fixed = select(&mut policy, &book, 3);
        assert_eq!(fixed.ids, vec![1, 3, 5]);
        // The mean/std leave the +∞ out: counts 1, 0, 1, 0.
        assert!((fixed.score_mean - 0.5).abs() < 1e-9);
        for e in 3..6 {
            feed_correct(&mut book, &ids, &[0, 1, 0, 1, 0, 1], e);
        }
        assert_eq!(select(&mut policy, &book, 6).ids, vec![1, 3, 5]);
    }

    #[test]
    fn never_reported_is_kept_and_never_correct_comes_first() {
        let n = 5;
        let mut book = ScoreBook::new(n, ScoreFields::CORRECT);
        // Id 4 never reported; id 3 seen once, wrong; ids 0..3 forgot 2, 0, 1 times.
        feed_correct(&mut book, &[0, 1, 2, 3], &[1, 1, 1, 0], 0);
        feed_correct(&mut book, &[0, 1, 2], &[0, 1, 0], 1);
        feed_correct(&mut book, &[0, 1, 2], &[1, 1, 1], 2);
        feed_correct(&mut book, &[0, 1, 2], &[0, 1, 1], 3);
        let mut policy = Forgetting::new(config(0.4, 1, 0.0), n);
        // K = 3: id 4 (never reported), then id 3 (+∞), then id 0 (2 forgets).
        assert_eq!(select(&mut policy, &book, 4).ids, vec![0, 3, 4]);
        // Every element is written (NaN where never reported), whatever it held.
        let mut scores = vec![-1.0; n];
        Forgetting::scores(&book, &mut scores);
        assert_eq!(&scores[..4], &[2.0, 0.0, 1.0, f32::INFINITY]);
        assert!(scores[4].is_nan());
    }
}
