//! The ScoreBook: per-sample running statistics indexed by id, updated by feedback, read by
//! policies. The fields policies scan whole (`seen`, `times_kept`, the losses, the streaks) are
//! flat arrays (the loss's EMA and variance as one array of pairs, `moments`, since feedback
//! writes both and UCB reads both); the others are packed into one record per id (`record`), so
//! that feedback, which arrives in random id order, touches few cache lines per id. Fields a policy does not
//! need are never allocated. The update rules are those of docs/policies.md, section
//! "ScoreBook".
//!
//! This file owns the book's read accessors and the update rules; the record layout is in
//! `record`, the loss's moments in `moments`, the gradient embeddings in `embedding`, the checks a feedback call must pass in
//! `validate`, the checkpoint bytes in `encode`. Outside the crate the fields are read-only:
//! they change only through `feedback`, `mark_kept` and the crate's restores (checkpoints,
//! `ScoreFile::seed_book`), so the book always describes the feedback it was given.

mod embedding;
mod encode;
mod moments;
pub(crate) mod record;
mod validate;

pub(crate) use validate::FeedbackCheck;

pub(crate) use moments::pair_up;
pub use moments::{Moment, MomentIter};
pub use record::{Cell, Column, ColumnIter};

use crate::error::Result;
use crate::sketch::Sketch;
use record::Records;

/// A set of optional ScoreBook fields (a tiny bit set; policies declare what they read).
///
/// cbindgen:ignore
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ScoreFields(u32);

/// cbindgen:ignore
impl ScoreFields {
    pub const NONE: ScoreFields = ScoreFields(0);
    /// `loss_last`.
    pub const LOSS_LAST: ScoreFields = ScoreFields(1);
    /// `loss_ema` and `loss_var`.
    pub const LOSS_EMA: ScoreFields = ScoreFields(2);
    /// `grad_norm_ema`.
    pub const GRAD_NORM: ScoreFields = ScoreFields(4);
    /// `el2n_sum`, `el2n_n`.
    pub const EL2N: ScoreFields = ScoreFields(8);
    /// `correct_last`, `forgets`, `ever_correct`.
    pub const CORRECT: ScoreFields = ScoreFields(16);
    /// Per-sample gradient embeddings (sketched to `sketch_dim`).
    pub const EMBEDDING: ScoreFields = ScoreFields(32);
    /// `wrong_streak`: consecutive wrong correctness reports (the noise guard's signal).
    pub const STREAK: ScoreFields = ScoreFields(64);
    /// Every field.
    pub const ALL: ScoreFields = ScoreFields(127);

    pub const fn union(self, other: ScoreFields) -> ScoreFields {
        ScoreFields(self.0 | other.0)
    }
    pub const fn intersect(self, other: ScoreFields) -> ScoreFields {
        ScoreFields(self.0 & other.0)
    }
    pub const fn contains(self, other: ScoreFields) -> bool {
        self.0 & other.0 == other.0
    }
}

/// One feedback call: per-sample signals for `ids`, all slices of the same length. Only `loss`
/// is required.
#[derive(Clone, Copy, Debug, Default)]
pub struct Feedback<'a> {
    pub ids: &'a [u64],
    pub loss: &'a [f32],
    pub grad_norm: Option<&'a [f32]>,
    pub el2n: Option<&'a [f32]>,
    /// 1 = the model's prediction was right, 0 = wrong.
    pub correct: Option<&'a [u8]>,
    /// `ids.len() × embedding_dim` floats, row-major (one gradient embedding per sample).
    pub embedding: Option<&'a [f32]>,
    pub embedding_dim: usize,
}

const NEVER: u32 = u32::MAX;

/// How many ids ahead `apply` prefetches.
const PREFETCH_AHEAD: usize = 16;

/// Per-sample running statistics.
#[derive(Clone, Debug)]
pub struct ScoreBook {
    n: usize,
    fields: ScoreFields,
    momentum: f32,
    /// Feedback calls that named the id.
    pub(crate) seen: Vec<u32>,
    /// Epoch of the last feedback (`u32::MAX` = never).
    pub(crate) last_epoch: Vec<u32>,
    /// Epochs whose plan kept the id.
    pub(crate) times_kept: Vec<u32>,
    pub(crate) loss_last: Vec<f32>,
    /// Per id (`loss_ema`, `loss_var`).
    pub(crate) loss_moments: Vec<[f32; 2]>,
    /// Per id: `grad_norm_ema`, `el2n_sum`, `el2n_n`, `forgets`, `correct_last`,
    /// `ever_correct`, `has_embedding` (those the book holds; see the accessors of the same
    /// names).
    pub(crate) records: Records,
    /// Correctness reports in a row that were wrong, up to the latest (saturating at 255).
    pub(crate) wrong_streak: Vec<u8>,
    /// Whether any correctness report has reached the streaks (a book restored from a
    /// checkpoint: whether any streak is above 0).
    pub(crate) streak_reported: bool,
    /// Gradient embeddings, `n × embedding_dim()` row-major (EMBEDDING only).
    pub(crate) embeddings: Vec<f32>,
    sketch: Sketch,
    /// The checks every call passes first, with their scratch: one bit per id, all clear
    /// between calls, which a call's ids set to find a duplicate in O(len) (N/8 bytes; sorting
    /// each call's ids instead was a measurable share of the ingest time).
    check: validate::FeedbackCheck,
}

/// A field's array when the book holds it. Zero-filled arrays are allocated zeroed, their pages
/// untouched until used; the others are written at once (see `util::huge` for the huge pages).
fn alloc<T: Clone + Default + PartialEq>(on: bool, n: usize, value: T) -> Vec<T> {
    if on && value == T::default() {
        crate::util::huge::zeroed(n)
    } else if on {
        crate::util::huge::filled(n, value)
    } else {
        Vec::new()
    }
}

/// Bytes a sample takes in a book holding `fields` (embeddings excluded), at most: the flat
/// arrays and a record of 8 words.
fn book_bytes_per_sample(fields: ScoreFields) -> usize {
    let f = |x, bytes| if fields.contains(x) { bytes } else { 0 };
    12 + 32 + f(ScoreFields::LOSS_LAST, 4) + f(ScoreFields::LOSS_EMA, 8) + f(ScoreFields::STREAK, 1)
}

impl ScoreBook {
    /// A book for `n` samples holding `fields` (besides the always-present counters), with the
    /// default EMA momentum 0.8 and sketch dimension 512.
    pub fn new(n: usize, fields: ScoreFields) -> Self {
        Self::with_options(n, fields, 0.8, 512, 0)
    }

    /// `momentum` weighs the newest value in the EMAs; embeddings longer than `sketch_dim` are
    /// projected to it with a projection seeded by `seed`.
    ///
    /// Panics when the arrays cannot be allocated; `try_with_options` returns `None` instead.
    pub fn with_options(
        n: usize,
        fields: ScoreFields,
        momentum: f32,
        sketch_dim: usize,
        seed: u64,
    ) -> Self {
        Self::try_with_options(n, fields, momentum, sketch_dim, seed)
            .unwrap_or_else(|| panic!("a ScoreBook for {n} samples does not fit in memory"))
    }

    /// `with_options`, or `None` when N samples' arrays do not fit. Checked first with a
    /// fallible reservation of their total size, freed at once: it takes only address space.
    /// The zero-filled arrays are then allocated as zeroed pages, untouched until used, the
    /// others written; large ones are advised for huge pages (feedback touches them at random
    /// positions; see `util::huge`).
    pub fn try_with_options(
        n: usize,
        fields: ScoreFields,
        momentum: f32,
        sketch_dim: usize,
        seed: u64,
    ) -> Option<Self> {
        let total = n.checked_mul(book_bytes_per_sample(fields))?;
        Vec::<u8>::new().try_reserve_exact(total).ok()?;
        let f = |x| fields.contains(x);
        Some(ScoreBook {
            n,
            fields,
            momentum,
            seen: crate::util::huge::zeroed(n),
            last_epoch: crate::util::huge::filled(n, NEVER),
            times_kept: crate::util::huge::zeroed(n),
            loss_last: alloc(f(ScoreFields::LOSS_LAST), n, f32::NAN),
            loss_moments: alloc(f(ScoreFields::LOSS_EMA), n, [0.0; 2]),
            records: Records::new(n, fields),
            wrong_streak: alloc(f(ScoreFields::STREAK), n, 0),
            streak_reported: false,
            embeddings: Vec::new(),
            sketch: Sketch::new(sketch_dim, seed),
            check: validate::FeedbackCheck::new(n, None),
        })
    }

    pub fn len(&self) -> usize {
        self.n
    }
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
    pub fn fields(&self) -> ScoreFields {
        self.fields
    }
    /// Whether `id` has had any feedback.
    pub fn is_seen(&self, id: usize) -> bool {
        self.seen[id] > 0
    }

    /// Every id's record (the fields besides the counters, losses and streaks) in id order,
    /// as one slice of words, the words per record (1, 2, 4 or 8), and where each field lies
    /// in one: for passes that read several of them per id.
    pub(crate) fn record_words(&self) -> (&[u32], usize, record::Slots) {
        let (words, per) = self.records.flat_rows();
        (words, per, self.records.slots)
    }

    /// Feedback calls that named each id.
    pub fn seen(&self) -> &[u32] {
        &self.seen
    }
    /// Epoch of each id's last feedback (`u32::MAX` = never).
    pub fn last_epoch(&self) -> &[u32] {
        &self.last_epoch
    }
    /// Epochs whose plan kept each id.
    pub fn times_kept(&self) -> &[u32] {
        &self.times_kept
    }
    /// The last loss of each id, NaN before the first (empty unless LOSS_LAST).
    pub fn loss_last(&self) -> &[f32] {
        &self.loss_last
    }
    /// EMA of each id's loss (empty unless LOSS_EMA).
    pub fn loss_ema(&self) -> Moment<'_> {
        Moment {
            pairs: &self.loss_moments,
            which: 0,
        }
    }
    /// EMA of each id's squared deviation from `loss_ema` (empty unless LOSS_EMA).
    pub fn loss_var(&self) -> Moment<'_> {
        Moment {
            pairs: &self.loss_moments,
            which: 1,
        }
    }
    /// Each id's (`loss_ema`, `loss_var`), for passes that read both (empty unless LOSS_EMA).
    pub fn loss_moments(&self) -> &[[f32; 2]] {
        &self.loss_moments
    }
    /// EMA of each id's gradient norm, NaN before the first (empty unless GRAD_NORM).
    pub fn grad_norm_ema(&self) -> Column<'_, f32> {
        self.records.column(self.records.slots.grad_norm_ema)
    }
    /// Sum of each id's EL2N values (empty unless EL2N).
    pub fn el2n_sum(&self) -> Column<'_, f32> {
        self.records.column(self.records.slots.el2n_sum)
    }
    /// Number of EL2N values summed per id (empty unless EL2N).
    pub fn el2n_n(&self) -> Column<'_, u32> {
        self.records.column(self.records.slots.el2n_n)
    }
    /// Each id's last correctness: 0 = wrong, 1 = right, 2 = never reported (empty unless
    /// CORRECT).
    pub fn correct_last(&self) -> Column<'_, u8> {
        self.records.column(self.records.slots.correct_last)
    }
    /// 1 once an id has been right at least once (empty unless CORRECT).
    pub fn ever_correct(&self) -> Column<'_, u8> {
        self.records.column(self.records.slots.ever_correct)
    }
    /// Whether the streaks have had a correctness report (see `wrong_streak`).
    pub fn streak_reported(&self) -> bool {
        self.streak_reported
    }
    /// Wrong correctness reports in a row per id, up to the latest (empty unless STREAK).
    pub fn wrong_streak(&self) -> &[u8] {
        &self.wrong_streak
    }
    /// Forgetting events per id (empty unless CORRECT).
    pub fn forgets(&self) -> Column<'_, f32> {
        self.records.column(self.records.slots.forgets)
    }
    /// 1 where the id has an embedding (empty unless EMBEDDING).
    pub(crate) fn has_embedding(&self) -> Column<'_, u8> {
        self.records.column(self.records.slots.has_embedding)
    }
    /// Every stored embedding, `len() × embedding_dim()` row-major; empty until the first
    /// embedding arrives. A row without `embedding(id)` is zeros.
    pub fn embeddings(&self) -> &[f32] {
        &self.embeddings
    }

    /// Bytes of per-sample state (what the book costs per sample, embeddings excluded).
    pub fn bytes_per_sample(&self) -> usize {
        let flat = [&self.seen, &self.last_epoch, &self.times_kept]
            .iter()
            .map(|v| v.len())
            .chain([self.loss_last.len(), 2 * self.loss_moments.len()])
            .sum::<usize>()
            * 4;
        (flat + self.wrong_streak.len() + self.records.bytes())
            .checked_div(self.n)
            .unwrap_or(0)
    }

    /// Records that the plan of an epoch kept these ids.
    pub fn mark_kept(&mut self, ids: &[u64]) {
        // Some policies keep ids in random order (random's draw): prefetched a few ids ahead,
        // as in `apply`, so those misses overlap.
        const AHEAD: usize = 16;
        let base = self.times_kept.as_ptr();
        for (i, &id) in ids.iter().enumerate() {
            if let Some(&ahead) = ids.get(i + AHEAD) {
                crate::util::prefetch(base, ahead as usize);
            }
            self.times_kept[id as usize] += 1;
        }
    }

    /// Validates the whole call, then applies it; on any error nothing is applied. `epoch` is
    /// the epoch the feedback belongs to.
    pub fn feedback(&mut self, fb: &Feedback<'_>, epoch: u64) -> Result<()> {
        self.validate(fb)?;
        self.prepare_embeddings(fb)?;
        self.apply(fb, epoch);
        Ok(())
    }

    /// Hints that `id`'s entries in every allocated per-sample array will be written soon.
    #[inline(always)]
    fn prefetch(&self, id: usize) {
        use crate::util::prefetch;
        prefetch(self.seen.as_ptr(), id);
        prefetch(self.last_epoch.as_ptr(), id);
        self.records.prefetch(id);
        // Unallocated fields are empty: prefetching their (dangling) base is harmless but
        // useless, so skip them.
        if !self.loss_last.is_empty() {
            prefetch(self.loss_last.as_ptr(), id);
        }
        if !self.loss_moments.is_empty() {
            prefetch(self.loss_moments.as_ptr(), id);
        }
    }

    fn apply(&mut self, fb: &Feedback<'_>, epoch: u64) {
        self.store_embeddings(fb);
        let slots = self.records.slots;
        let m = self.momentum;
        let epoch = epoch.min(NEVER as u64 - 1) as u32;
        let f = self.fields;
        let streak = fb.correct.filter(|_| f.contains(ScoreFields::STREAK));
        self.streak_reported |= streak.is_some() && !fb.ids.is_empty();
        for (i, &id) in fb.ids.iter().enumerate() {
            // A call's ids are a random draw from N (a shuffled plan), so on a book larger than
            // the cache each array (and the record) of every id is a miss; touching them
            // `PREFETCH_AHEAD` ids early keeps several misses in flight instead of one.
            if let Some(&ahead) = fb.ids.get(i + PREFETCH_AHEAD) {
                self.prefetch(ahead as usize);
            }
            let id = id as usize;
            let loss = fb.loss[i];
            let first = self.seen[id] == 0;
            self.seen[id] = self.seen[id].saturating_add(1);
            self.last_epoch[id] = epoch;
            if f.contains(ScoreFields::LOSS_LAST) {
                self.loss_last[id] = loss;
            }
            if f.contains(ScoreFields::LOSS_EMA) {
                let [ema, var] = &mut self.loss_moments[id];
                if first {
                    (*ema, *var) = (loss, 0.0);
                } else {
                    let d = loss - *ema;
                    *var = (1.0 - m) * *var + m * d * d;
                    *ema = (1.0 - m) * *ema + m * loss;
                }
            }
            if let Some(c) = streak {
                self.wrong_streak[id] = if c[i] == 1 {
                    0
                } else {
                    self.wrong_streak[id].saturating_add(1)
                };
            }
            // The other signals' fields, in the id's record.
            if self.records.is_empty() {
                continue;
            }
            let rec = self.records.record_mut(id);
            if let (Some(s), Some(g)) = (slots.grad_norm_ema, fb.grad_norm) {
                let old: f32 = s.get(rec);
                s.put(
                    rec,
                    if old.is_nan() {
                        g[i]
                    } else {
                        (1.0 - m) * old + m * g[i]
                    },
                );
            }
            if let (Some(sum), Some(count), Some(e)) = (slots.el2n_sum, slots.el2n_n, fb.el2n) {
                sum.put(rec, sum.get::<f32>(rec) + e[i]);
                count.put(rec, count.get::<u32>(rec) + 1);
            }
            if let (Some(forgets), Some(last), Some(ever), Some(c)) = (
                slots.forgets,
                slots.correct_last,
                slots.ever_correct,
                fb.correct,
            ) {
                let now = c[i];
                if last.get::<u8>(rec) == 1 && now == 0 {
                    forgets.put(rec, forgets.get::<f32>(rec) + 1.0);
                }
                if now == 1 {
                    ever.put(rec, 1u8);
                }
                last.put(rec, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const ALL: ScoreFields = ScoreFields::LOSS_LAST
        .union(ScoreFields::LOSS_EMA)
        .union(ScoreFields::GRAD_NORM)
        .union(ScoreFields::EL2N)
        .union(ScoreFields::CORRECT);

    pub(super) fn fb<'a>(ids: &'a [u64], loss: &'a [f32]) -> Feedback<'a> {
        Feedback {
            ids,
            loss,
            ..Default::default()
        }
    }

    #[test]
    fn ema_and_var_follow_the_rule() {
        let mut b = ScoreBook::new(3, ALL);
        b.feedback(&fb(&[1], &[2.0]), 0).unwrap();
        assert_eq!((b.loss_ema()[1], b.loss_var()[1]), (2.0, 0.0));
        b.feedback(&fb(&[1], &[4.0]), 1).unwrap();
        // var = 0.2·0 + 0.8·(4-2)² = 3.2 ; ema = 0.2·2 + 0.8·4 = 3.6
        assert!((b.loss_var()[1] - 3.2).abs() < 1e-6);
        assert!((b.loss_ema()[1] - 3.6).abs() < 1e-6);
        assert_eq!(b.loss_last[1], 4.0);
        assert_eq!((b.seen[1], b.last_epoch[1]), (2, 1));
        assert!(b.loss_last[0].is_nan() && b.seen[0] == 0);
    }

    #[test]
    fn forgetting_events_are_right_to_wrong() {
        let mut b = ScoreBook::new(1, ALL);
        for c in [0u8, 1, 0, 0, 1, 0] {
            let f = Feedback {
                correct: Some(&[c]),
                ..fb(&[0], &[1.0])
            };
            b.feedback(&f, 0).unwrap();
        }
        assert_eq!(
            (
                b.forgets().get(0),
                b.ever_correct().get(0),
                b.correct_last().get(0)
            ),
            (Some(2.0), Some(1), Some(0))
        );
    }

    #[test]
    fn unneeded_fields_cost_nothing() {
        assert_eq!(
            ScoreBook::new(100, ScoreFields::NONE).bytes_per_sample(),
            12
        );
        // The flat arrays (seen, last_epoch, times_kept, 3 losses, the streak) and a record
        // of 5 words rounded up to 8 (so that it never crosses a cache line).
        assert_eq!(ScoreBook::new(100, ALL).bytes_per_sample(), 56);
        assert_eq!(ScoreBook::new(100, ScoreFields::ALL).bytes_per_sample(), 57);
    }
}
