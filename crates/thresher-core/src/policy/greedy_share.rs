//! The selection ε-greedy and UCB share: every id not yet judged, the top share of the judged
//! ids by the policy's score (with the noise guard, ids that look unlearnable rank last), and a
//! seeded random share of the other judged ids. The two policies differ only in the score.

use super::epsilon_greedy::greedy_count;
use super::{extend_where, judged_ids, looks_unlearnable, mark_top_k, seen_budget};
use crate::rng::{Rng, Stream};
use crate::scores::ScoreBook;

/// The rule's parameters for one plan.
pub(crate) struct Share {
    /// Feedback calls after which an id counts as judged (`guard_window` with the noise guard,
    /// else 1).
    pub window: u32,
    /// K fixed by a budget, or `None` for `prune` of the judged ids.
    pub keep: Option<usize>,
    pub prune: f64,
    /// The random share ε.
    pub explore: f64,
    /// `Some(guard_window)` with the noise guard.
    pub guard: Option<u8>,
    pub seed: u64,
    /// The period index: the random share's stream.
    pub draw: u64,
}

/// Scratch kept across plans (N-sized, so not allocated per plan).
pub(crate) struct GreedyShare {
    seen: Vec<u64>,
    rest: Vec<u64>,
    kept: Vec<bool>,
    /// The keys `mark_top_k` selects among.
    band: Vec<u64>,
}

impl GreedyShare {
    pub(crate) fn new(n: usize) -> Self {
        GreedyShare {
            seen: crate::util::huge::with_capacity(n),
            rest: crate::util::huge::with_capacity(n),
            kept: crate::util::huge::with_capacity(n),
            band: Vec::new(),
        }
    }

    /// Writes the kept ids into `ids`, ascending (so the later shuffle does not depend on how
    /// the selection happened to permute them). `score[id]` is read for judged ids only.
    pub(crate) fn plan(&mut self, book: &ScoreBook, score: &[f32], p: &Share, ids: &mut Vec<u64>) {
        let n = book.len();
        let unseen = judged_ids(book, p.window, &mut self.seen);
        let (counts, need) = (book.seen(), p.window.max(1));
        let k = match p.keep {
            Some(k) => k.saturating_sub(unseen),
            None => seen_budget(n, p.prune, unseen),
        };
        let top = greedy_count(k, p.explore);
        // The noise guard: samples that look unlearnable rank below every other judged sample
        // in the top share (they stay in the random share's pool).
        let guard = p.guard;
        self.kept.clear();
        self.kept.resize(n, false);
        mark_top_k(
            &self.seen,
            top,
            |id| match guard {
                Some(w) if looks_unlearnable(book, id as usize, w) => f32::NEG_INFINITY,
                _ => score[id as usize],
            },
            &mut self.kept,
            &mut self.band,
        );
        // The random share: the other judged ids in id order (so the draw is a function of the
        // set alone), a partial Fisher–Yates with (seed, select stream, period index).
        self.rest.clear();
        let kept = &self.kept;
        extend_where(&mut self.rest, n, |id| (counts[id] >= need) & !kept[id]);
        let fill = k - top;
        Rng::new(p.seed, Stream::Select, p.draw, 0).choose_front(&mut self.rest, fill);
        for &id in &self.rest[..fill] {
            self.kept[id as usize] = true;
        }
        ids.clear();
        let kept = &self.kept;
        extend_where(ids, n, |id| (counts[id] < need) | kept[id]);
    }
}
