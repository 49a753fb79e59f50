//! The selection ε-greedy and UCB share: every id not yet judged, the top share of the judged
//! ids by the policy's score (with the noise guard, ids that look unlearnable rank last), and a
//! seeded random share of the other judged ids. The two policies differ only in the score.
//!
//! The plan is a mask over the ids (`kept`), built in place: it starts as the unjudged ids,
//! the top share is marked into it, the random share is drawn from the ids it leaves out, and
//! the policy keeps the mask itself as its cached plan (the kept ids are its `true` entries,
//! ascending). Every pass but the top share's is over N bytes, not N ids.
//!
//! With `rescale` (the guarded default) each drawn id that does not look unlearnable weighs
//! |R|/(K_seen − G), the inverse of its chance to be drawn (R: the pool it was drawn from), so
//! that the random share stands for the whole pool in the gradient, as InfoBatch's rescaled
//! low-loss samples do. The drawn ids that carry it are marked in a second mask (`heavy`).

use super::epsilon_greedy::greedy_count;
use super::{
    budget, extend_where, fits_u32, flagged_key, flagged_streaks, id_lists, mark_top_k,
    mark_top_k_scores, seen_budget, unjudged_into, ListedId,
};
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
    /// Weigh the random share's unflagged ids |R|/(K_seen − G) instead of 1.
    pub rescale: bool,
}

/// Scratch kept across plans (N-sized, so not allocated per plan).
pub(crate) struct GreedyShare {
    /// The judged ids, listed only while some ids are not judged yet (once all are, the judged
    /// ids are 0..N and go unlisted).
    seen: Vec<u64>,
    /// The random share's pool, as u32 when every id fits one (half the bytes to write and to
    /// swap at random positions), else as u64.
    rest32: Vec<u32>,
    rest64: Vec<u64>,
    /// The mask being built; handed to the caller by swapping buffers.
    kept: Vec<bool>,
    /// The keys `mark_top_k` selects among.
    band: Vec<u64>,
}

impl GreedyShare {
    pub(crate) fn new(n: usize) -> Self {
        let (rest32, rest64) = id_lists(n);
        GreedyShare {
            seen: Vec::new(),
            rest32,
            rest64,
            kept: crate::util::huge::with_capacity(n),
            band: Vec::new(),
        }
    }

    /// Writes the plan into `kept` (N entries, `true` for a kept id) and, with `p.rescale`,
    /// the random share's ids that weigh more than 1 into `heavy` (N entries; left empty when
    /// none does), and returns their weight (1 when none). `score[id]` is read for judged ids
    /// only.
    pub(crate) fn plan(
        &mut self,
        book: &ScoreBook,
        score: &[f32],
        p: &Share,
        kept_out: &mut Vec<bool>,
        heavy: &mut Vec<bool>,
    ) -> f32 {
        let n = book.len();
        // Unjudged ids are kept: the mask starts as them.
        let unseen = unjudged_into(book, p.window, &mut self.kept);
        if let (Some(k), Some(_)) = (p.keep, p.guard) {
            if unseen > k {
                // A budget that cannot keep every unjudged id: those with the fewest reports
                // first, so the epochs pass over the data rather than draw overlapping subsets.
                let mut rng = Rng::new(p.seed, Stream::Select, p.draw, 1);
                if fits_u32(n) {
                    fewest_reports_first(
                        book,
                        p.window,
                        k,
                        &mut self.kept,
                        &mut self.rest32,
                        &mut rng,
                    );
                } else {
                    fewest_reports_first(
                        book,
                        p.window,
                        k,
                        &mut self.kept,
                        &mut self.rest64,
                        &mut rng,
                    );
                }
                heavy.clear();
                std::mem::swap(&mut self.kept, kept_out);
                return 1.0;
            }
        }
        let kept = &mut self.kept;
        let k = match p.keep {
            Some(k) => k.saturating_sub(unseen),
            None => seen_budget(n, p.prune, unseen),
        };
        let top = greedy_count(k, p.explore);
        // The noise guard: samples that look unlearnable rank below every other judged sample
        // in the top share (they stay in the random share's pool).
        let flagged = flagged_streaks(book, p.guard);
        mark_top(
            n,
            unseen,
            top,
            score,
            flagged,
            kept,
            &mut self.seen,
            &mut self.band,
        );
        // The random share: the other judged ids (those the mask leaves out), drawn with (seed,
        // select stream, period index). With `rescale` the drawn ids are marked into `heavy`
        // first and merged into the mask by one pass over the ids, which also clears the
        // flagged ones from `heavy`: the drawn ids are in random order, and looking up each
        // one's streak at random cost more than the pass.
        let fill = k - top;
        let mut rng = Rng::new(p.seed, Stream::Select, p.draw, 0);
        let kept = &mut self.kept;
        heavy.clear();
        let rescale = p.rescale && fill > 0;
        if rescale {
            heavy.resize(n, false);
        }
        let drawn_into = if rescale { Some(&mut heavy[..]) } else { None };
        let pool = if fits_u32(n) {
            draw_into(&mut self.rest32, kept, drawn_into, fill, &mut rng)
        } else {
            draw_into(&mut self.rest64, kept, drawn_into, fill, &mut rng)
        };
        if rescale {
            merge_drawn(flagged, kept, heavy);
        }
        std::mem::swap(kept, kept_out);
        if heavy.is_empty() {
            return 1.0;
        }
        let k_epoch = p.keep.unwrap_or_else(|| budget(n, p.prune));
        share_weight(pool, fill, n, k_epoch, p.explore)
    }
}

/// Rewrites `kept` to exactly `k` of the ids with fewer than `window` reports (there are more
/// than `k`): every id with fewer than c reports and a uniform draw (partial Fisher–Yates over
/// the ids in order, listed in `rest`) among those with exactly c, for the smallest c that
/// reaches `k`.
fn fewest_reports_first<T: ListedId>(
    book: &ScoreBook,
    window: u32,
    k: usize,
    kept: &mut Vec<bool>,
    rest: &mut Vec<T>,
    rng: &mut Rng,
) {
    let seen = book.seen();
    let need = window.max(1) as usize;
    // `window` comes from a u8 (`guard_window`), so the counts fit a fixed array.
    let mut hist = [0usize; 256];
    for &c in seen {
        if (c as usize) < need {
            hist[c as usize] += 1;
        }
    }
    let (mut level, mut below) = (0usize, 0usize);
    while level + 1 < need && below + hist[level] < k {
        below += hist[level];
        level += 1;
    }
    let level = level as u32;
    kept.clear();
    kept.extend(seen.iter().map(|&c| c < level));
    rest.clear();
    extend_where(rest, seen.len(), |id| seen[id] == level);
    let fill = (k - below).min(rest.len());
    // The listed ids are not in `kept` yet: each is set to whether it is drawn.
    for (&id, take) in rest.iter().zip(rng.picks(rest.len(), fill)) {
        kept[id.index()] = take;
    }
}

/// Lists the ids `kept` leaves out into `rest` (in id order, so the draw is a function of the
/// set alone), draws `fill` of them by selection sampling over the list (`Rng::picks`: the
/// same draws whatever the width of the ids), marks them in `drawn` when given (else in
/// `kept`), and returns the pool's size. The marks are written in id order: a partial
/// Fisher–Yates over the list, the draw until 2026-12-05, swapped at random positions of the
/// list and then marked at random positions of the mask, two cache misses per drawn id on a
/// large N.
fn draw_into<T: ListedId>(
    rest: &mut Vec<T>,
    kept: &mut [bool],
    drawn: Option<&mut [bool]>,
    fill: usize,
    rng: &mut Rng,
) -> usize {
    rest.clear();
    extend_where(rest, kept.len(), |id| !kept[id]);
    // Every listed id is false in the mask marked (`drawn` starts empty, and the listed ids
    // are those `kept` leaves out): each is set to whether it is drawn.
    let mark = drawn.unwrap_or(kept);
    for (&id, take) in rest.iter().zip(rng.picks(rest.len(), fill)) {
        mark[id.index()] = take;
    }
    rest.len()
}

/// The random share's weight: |pool|/drawn, the inverse of a pool member's chance to be drawn,
/// capped at the weight the share has once every sample is judged, (N − G_all)/(K − G_all) with
/// G_all = ⌈(1 − ε)·K⌉ for the epoch's count K. Without the cap an epoch with few judged slots
/// (many samples not yet judged, K_seen small) would give a handful of samples the weight of
/// the whole judged pool, tens of times a kept sample's: one batch's loss would be theirs. The
/// cap holds every weight to the share's steady value (about 1.9 at K = 0.7·N, 5.7 at 0.3·N).
/// Computed in f64, stored as f32.
pub(crate) fn share_weight(pool: usize, drawn: usize, n: usize, k: usize, explore: f64) -> f32 {
    let g = greedy_count(k, explore);
    let steady = if k > g {
        (n - g) as f64 / (k - g) as f64
    } else {
        1.0
    };
    (pool as f64 / drawn as f64).min(steady) as f32
}

/// Adds the ids marked in `drawn` (N entries) to `kept`, and leaves marked in `drawn` only
/// those that are not `flagged` (`Some((streaks, window))`; without it, all of them): the
/// random share's ids that weigh more than 1.
fn merge_drawn(flagged: Option<(&[u8], u8)>, kept: &mut [bool], drawn: &mut [bool]) {
    let n = drawn.len();
    let kept = &mut kept[..n];
    match flagged {
        Some((streak, w)) => {
            for ((k, d), &s) in kept.iter_mut().zip(drawn.iter_mut()).zip(&streak[..n]) {
                *k |= *d;
                *d &= s < w;
            }
        }
        None => {
            for (k, &d) in kept.iter_mut().zip(drawn.iter()) {
                *k |= d;
            }
        }
    }
}

/// Marks the top `top` judged ids by `score` into `kept` (true on entry for the `unseen` ids
/// not judged, false for the judged ones), the `flagged` ones (`Some((streaks, window))`) ranked
/// below every other: over 0..n unlisted when every id is judged, else over the judged ids
/// listed in `seen`. Each guard setting gets its own pass (the streaks are not looked at per id
/// when the guard is off).
#[allow(clippy::too_many_arguments)]
fn mark_top(
    n: usize,
    unseen: usize,
    top: usize,
    score: &[f32],
    flagged: Option<(&[u8], u8)>,
    kept: &mut [bool],
    seen: &mut Vec<u64>,
    band: &mut Vec<u64>,
) {
    if unseen == 0 {
        mark_top_k_scores(n, top, score, flagged, kept, band);
        return;
    }
    seen.clear();
    extend_where(seen, n, |id| !kept[id]);
    match flagged {
        Some((streak, window)) => {
            mark_top_k(seen, top, flagged_key(score, streak, window), kept, band)
        }
        None => mark_top_k(seen, top, |id| score[id as usize], kept, band),
    }
}

#[cfg(test)]
mod tests;
