//! The noise guard and the "judged" test it sets (docs/policies.md, "The noise guard"): a
//! sample looks unlearnable when it was wrong at each of its last `guard_window` correctness
//! reports, and with the guard on a sample counts as seen (is judged) only after `guard_window`
//! feedback calls. The config defaults of `noise_guard` and `guard_window` live here too.

use crate::scores::ScoreBook;

/// The noise guard is on unless the config says `"noise_guard": false`.
pub(crate) fn default_noise_guard() -> bool {
    true
}

/// Two wrong reports in a row: one can be an early, untrained epoch's guess.
pub(crate) fn default_guard_window() -> u8 {
    2
}

/// Whether a `budget` leaves too few visits for scores to choose (docs/policies.md, *The noise
/// guard*, step 4): with the guard on, fewer than `guard_window` + 1 visits per sample on
/// average, budget·epochs < w + 1. A sample is judged after w feedback calls, so under such a
/// budget the passes over the unjudged samples take nearly every epoch and the scores arrive
/// for the last one or two, too late and too young to choose better than a uniform draw (with
/// symmetric label flips, measurably worse); `epsilon_greedy` and `ucb` then draw their whole
/// seen budget at random by default.
pub(crate) fn budget_too_tight_to_score(
    noise_guard: bool,
    guard_window: u8,
    budget: Option<f64>,
    epochs: Option<u64>,
) -> bool {
    match (noise_guard, budget, epochs) {
        (true, Some(b), Some(e)) => b * (e as f64) < f64::from(guard_window) + 1.0,
        _ => false,
    }
}

/// The default random share of `epsilon_greedy` and `ucb`: 1 under a budget too tight to score
/// ([`budget_too_tight_to_score`]), else 0.5 with the guard, else `unguarded` (the paper's).
pub(crate) fn default_explore(
    noise_guard: bool,
    guard_window: u8,
    budget: Option<f64>,
    epochs: Option<u64>,
    unguarded: f64,
) -> f64 {
    if budget_too_tight_to_score(noise_guard, guard_window, budget, epochs) {
        1.0
    } else if noise_guard {
        0.5
    } else {
        unguarded
    }
}

/// The share of an epoch's kept samples that look unlearnable above which the bindings and the
/// reference trainer warn that the labels may be noisy (C: `THRESHER_UNLEARNABLE_WARNING`).
/// On Fashion-MNIST with the reference trainer the guarded policies stayed at 0-11 % of their
/// kept samples on clean labels, while the papers' rules reached 44-94 % with 20 % flipped
/// labels (docs/policies.md, "The warning").
pub const UNLEARNABLE_WARNING: f64 = 0.15;

/// Whether `id` looks unlearnable: wrong at each of its last `window` correctness reports.
/// Always false in a book without streaks (no STREAK field, or no correctness reported).
/// (The plans' passes test the streaks slice directly, the same rule.)
pub fn looks_unlearnable(book: &ScoreBook, id: usize, window: u8) -> bool {
    book.wrong_streak().get(id).is_some_and(|&s| s >= window)
}

/// `looks_unlearnable`'s rule for a pass over many ids: `Some((streaks, window))` when the guard
/// is on (`Some(window)`) and the book has streaks, else `None` (nothing flagged).
pub(crate) fn flagged_streaks(book: &ScoreBook, guard: Option<u8>) -> Option<(&[u8], u8)> {
    let streak = book.wrong_streak();
    guard.filter(|_| !streak.is_empty()).map(|w| (streak, w))
}

/// Per id: whether a policy counts it as seen. With the noise guard on (`window` > 1) a
/// sample counts as seen only once it has had `window` feedback calls, so it is judged
/// (ranked, or found unlearnable) only when it can have `window` correctness reports; until
/// then it is kept like a never-seen sample.
pub fn judged_mask(scores: &ScoreBook, window: u32) -> Vec<bool> {
    let need = window.max(1);
    scores.seen().iter().map(|&c| c >= need).collect()
}

/// `partition_seen` by `judged_mask`.
pub fn partition_judged(
    scores: &ScoreBook,
    window: u32,
    unseen: &mut Vec<u64>,
    seen: &mut Vec<u64>,
) {
    unseen.clear();
    seen.clear();
    // `judged_mask`'s test, without building the mask.
    let need = window.max(1);
    for (id, &count) in scores.seen().iter().enumerate() {
        if count >= need {
            seen.push(id as u64);
        } else {
            unseen.push(id as u64);
        }
    }
}

/// Sets `mask` to N entries, `true` for each id not judged yet (`!judged_mask`), and returns
/// how many there are: the ids the greedy policies keep whatever their scores, as the start of
/// their kept mask.
pub(crate) fn unjudged_into(scores: &ScoreBook, window: u32, mask: &mut Vec<bool>) -> usize {
    let seen = scores.seen();
    mask.clear();
    mask.resize(seen.len(), false);
    unjudged_wide(seen, window.max(1), mask)
}

// The pass over N counts, as wide as the CPU allows (the baseline's two-lane loop was most of
// the greedy policies' mask time at 1.28M ids).
crate::util::widest!(fn unjudged_wide(seen: &[u32], need: u32, mask: &mut [bool]) -> usize = unjudged_rows);

/// `mask[i]` = `seen[i] < need`; returns how many are. Counted in the pass that writes the
/// mask (a second pass over N bytes cost more), in u32 lanes per chunk so it vectorises.
#[inline(always)]
fn unjudged_rows(seen: &[u32], need: u32, mask: &mut [bool]) -> usize {
    const CHUNK: usize = 4096;
    let mut unjudged = 0usize;
    for (m, c) in mask.chunks_mut(CHUNK).zip(seen.chunks(CHUNK)) {
        let mut count = 0u32;
        for (m, &c) in m.iter_mut().zip(c) {
            let u = c < need;
            *m = u;
            count += u32::from(u);
        }
        unjudged += count as usize;
    }
    unjudged
}

/// The fraction of `ids` that look unlearnable; NaN for a book without streaks or no ids.
pub fn unlearnable_fraction(book: &ScoreBook, ids: &[u64], window: u8) -> f64 {
    if book.wrong_streak().is_empty() || ids.is_empty() {
        return f64::NAN;
    }
    let k = ids
        .iter()
        .filter(|&&id| looks_unlearnable(book, id as usize, window))
        .count();
    k as f64 / ids.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scores::ScoreFields;

    #[test]
    fn unlearnable_means_wrong_at_the_last_window_reports() {
        let mut book = ScoreBook::new(6, ScoreFields::STREAK);
        // Per id, its correctness reports in order (one feedback call each).
        let history: [&[u8]; 6] = [&[0, 0], &[1, 0, 0], &[0, 1], &[0], &[1], &[0, 0, 1, 0]];
        for step in 0..4 {
            let (ids, correct): (Vec<u64>, Vec<u8>) = history
                .iter()
                .enumerate()
                .filter_map(|(id, h)| h.get(step).map(|&c| (id as u64, c)))
                .unzip();
            let loss = vec![1.0; ids.len()];
            let fb = crate::scores::Feedback {
                ids: &ids,
                loss: &loss,
                correct: Some(&correct),
                ..Default::default()
            };
            book.feedback(&fb, step as u64).unwrap();
        }
        let flagged = |w: u8| -> Vec<usize> {
            (0..6)
                .filter(|&id| looks_unlearnable(&book, id, w))
                .collect()
        };
        // Window 2: ids 0 and 1 (two wrong in a row); id 3 has one report only.
        assert_eq!(flagged(2), vec![0, 1]);
        // Window 3: nobody has three wrong in a row.
        assert_eq!(flagged(3), Vec::<usize>::new());
        // Window 1: every sample whose latest report was wrong.
        assert_eq!(flagged(1), vec![0, 1, 3, 5]);
        let ids: Vec<u64> = (0..6).collect();
        assert!((unlearnable_fraction(&book, &ids, 2) - 2.0 / 6.0).abs() < 1e-12);
        // Judged (counted as seen by a guarded policy) after two feedback calls.
        assert_eq!(
            judged_mask(&book, 2),
            vec![true, true, true, false, false, true]
        );
        // Without the streak field nothing looks unlearnable.
        let plain = ScoreBook::new(6, ScoreFields::LOSS_EMA);
        assert!(!looks_unlearnable(&plain, 0, 1));
        assert!(unlearnable_fraction(&plain, &ids, 2).is_nan());
    }

    #[test]
    fn unjudged_into_marks_and_counts_the_unjudged() {
        let mut book = ScoreBook::new(5, ScoreFields::LOSS_EMA);
        let mut mask = vec![true; 7];
        book.seen.copy_from_slice(&[2, 1, 0, 3, 2]);
        assert_eq!(unjudged_into(&book, 2, &mut mask), 2);
        assert_eq!(mask, vec![false, true, true, false, false]);
        assert_eq!(unjudged_into(&book, 3, &mut mask), 4);
        assert_eq!(mask, vec![true, true, true, false, true]);
        // Window 0 counts as 1: only never-seen ids.
        assert_eq!(unjudged_into(&book, 0, &mut mask), 1);
        assert_eq!(mask, vec![false, false, true, false, false]);
    }
}
