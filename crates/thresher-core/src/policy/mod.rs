//! Pruning policies: each turns (epoch, seed, ScoreBook) into the epoch's kept ids and their loss
//! weights. One module per policy (`static_window` serves el2n, grand and forgetting); the rules
//! are those of docs/policies.md, one section per policy. Policies do no I/O and start no
//! threads; shuffling, batching and sharding happen afterwards in `plan`. This file owns the
//! trait, the config object and the helpers the policies share.

mod budget;
mod epsilon_greedy;
mod full;
mod greedy_share;
mod influence;
mod infobatch;
mod period_cache;
mod random;
mod static_window;
mod ucb;

pub use budget::{schedule, total_visits, Budgeted};
pub use epsilon_greedy::{EpsilonGreedy, EpsilonGreedyConfig};
pub use full::{Full, FullConfig};
pub use influence::{Influence, InfluenceConfig};
pub use infobatch::{InfoBatch, InfoBatchConfig};
pub use random::{Random, RandomConfig};
pub use static_window::{
    static_window, El2n, El2nScore, Forgetting, ForgettingScore, GradNormScore, Grand,
    StaticConfig, StaticScore, StaticWindow,
};
pub use ucb::{Spread, Ucb, UcbConfig};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::scores::{ScoreBook, ScoreFields};

/// What a policy sees when it plans epoch `epoch`.
pub struct PlanContext<'a> {
    pub epoch: u64,
    pub seed: u64,
    /// The ScoreBook as it stands when the epoch begins.
    pub scores: &'a ScoreBook,
}

/// A policy's choice for one epoch, before shuffling: kept ids (each at most once) and the
/// weight of each, plus a summary of the score it ranked by (for the epoch report).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    pub ids: Vec<u64>,
    pub weights: Vec<f32>,
    /// Mean and standard deviation of the policy's score over the seen samples; NaN when the
    /// policy has no score (full, random) or nothing has been seen.
    pub score_mean: f64,
    pub score_std: f64,
}

impl Selection {
    pub fn clear(&mut self) {
        self.ids.clear();
        self.weights.clear();
        self.score_mean = f64::NAN;
        self.score_std = f64::NAN;
    }
    /// Room for `n` ids and weights. An empty selection's buffers that are too small are
    /// replaced by ones advised for huge pages: the plan shuffles them at random positions.
    pub fn reserve(&mut self, n: usize) {
        if self.ids.is_empty() && self.ids.capacity() < n {
            self.ids = crate::util::huge::with_capacity(n);
        }
        if self.weights.is_empty() && self.weights.capacity() < n {
            self.weights = crate::util::huge::with_capacity(n);
        }
        self.ids.reserve(n - self.ids.len().min(n));
        self.weights.reserve(n - self.weights.len().min(n));
    }
    pub fn push(&mut self, id: u64, weight: f32) {
        self.ids.push(id);
        self.weights.push(weight);
    }
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// The one trait every policy implements.
pub trait Policy: Send {
    /// The ScoreBook fields this policy reads; the others are not allocated.
    fn needs(&self) -> ScoreFields;
    /// Writes the kept ids and weights of `ctx.epoch` into `out` (cleared first by the caller).
    /// Must be a pure function of (config, ctx.seed, ctx.epoch, ctx.scores) and of the policy's
    /// own state as updated by earlier calls with the same inputs.
    fn select(&mut self, ctx: &PlanContext<'_>, out: &mut Selection);
    /// Under a `budget`: the number of ids the next `select` should keep (`None`: the policy's
    /// own `prune`). The policy spends it by its own rule; `Budgeted` holds the result to it.
    fn set_keep(&mut self, _keep: Option<usize>) {}
    /// The policy's own state (cached selections) for checkpoints; empty when it has none.
    fn save_state(&self) -> Vec<u8> {
        Vec::new()
    }
    /// Restores what `save_state` returned; `false` when the bytes do not fit this policy.
    fn load_state(&mut self, bytes: &[u8]) -> bool {
        bytes.is_empty()
    }
}

/// The `policy` config object: `{"kind": NAME, ...}`. A key the named policy does not use is
/// refused and named.
#[derive(Clone, Debug)]
pub enum PolicyConfig {
    Full(FullConfig),
    Random(RandomConfig),
    EpsilonGreedy(EpsilonGreedyConfig),
    Ucb(UcbConfig),
    InfoBatch(InfoBatchConfig),
    El2n(StaticConfig),
    Grand(StaticConfig),
    Forgetting(StaticConfig),
    Influence(InfluenceConfig),
}

impl<'de> Deserialize<'de> for PolicyConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use crate::section::{tagged_section, variant, UniqueKeys};
        use serde::de::Error as _;
        let map = d.deserialize_map(UniqueKeys { section: "policy" })?;
        // A budget chooses the prune fractions itself; InfoBatch keeps `prune` as the largest
        // share of its pool dropped (docs/policies.md).
        let infobatch = map.get("kind").and_then(|k| k.as_str()) == Some("infobatch");
        if map.contains_key("budget") && map.contains_key("prune") && !infobatch {
            return Err(D::Error::custom(
                "config keys `policy.budget` and `policy.prune`: give one, not both (a budget \
                 chooses every epoch's prune fraction)",
            ));
        }
        tagged_section(
            serde_json::Value::Object(map),
            "policy",
            &[
                ("full", &variant(PolicyConfig::Full)),
                ("random", &variant(PolicyConfig::Random)),
                ("epsilon_greedy", &variant(PolicyConfig::EpsilonGreedy)),
                ("ucb", &variant(PolicyConfig::Ucb)),
                ("infobatch", &variant(PolicyConfig::InfoBatch)),
                ("el2n", &variant(PolicyConfig::El2n)),
                ("grand", &variant(PolicyConfig::Grand)),
                ("forgetting", &variant(PolicyConfig::Forgetting)),
                ("influence", &variant(PolicyConfig::Influence)),
            ],
        )
        .map_err(|e: serde_json::Error| D::Error::custom(e.to_string()))
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig::Full(FullConfig::default())
    }
}

impl PolicyConfig {
    pub fn validate(&self) -> Result<()> {
        budget::check_budget(self.budget(), self.epochs())?;
        if let (Some(b), PolicyConfig::Full(_)) = (self.budget(), self) {
            if b < 1.0 {
                return Err(Error::invalid(format!(
                    "config key `policy.budget`: {b} is below 1, but `full` prunes nothing (use \
                     `random` for a random subset of that size)"
                )));
            }
        }
        if let Some((_, 0)) = self.guard() {
            return Err(Error::invalid(
                "config key `policy.guard_window`: must be ≥ 1",
            ));
        }
        if let (Some(_), PolicyConfig::Influence(c)) = (self.budget(), self) {
            if c.epsilon.is_some() {
                return Err(Error::invalid(
                    "config keys `policy.budget` and `policy.epsilon`: give one, not both (a \
                     budget fixes how many samples each epoch keeps)",
                ));
            }
        }
        match self {
            PolicyConfig::Full(_) => Ok(()),
            PolicyConfig::Random(c) => c.validate(),
            PolicyConfig::EpsilonGreedy(c) => c.validate(),
            PolicyConfig::Ucb(c) => c.validate(),
            PolicyConfig::InfoBatch(c) => c.validate(),
            PolicyConfig::El2n(c) | PolicyConfig::Grand(c) | PolicyConfig::Forgetting(c) => {
                c.validate()
            }
            PolicyConfig::Influence(c) => c.validate(),
        }
    }

    /// The policy's name as in the config (`kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            PolicyConfig::Full(_) => "full",
            PolicyConfig::Random(_) => "random",
            PolicyConfig::EpsilonGreedy(_) => "epsilon_greedy",
            PolicyConfig::Ucb(_) => "ucb",
            PolicyConfig::InfoBatch(_) => "infobatch",
            PolicyConfig::El2n(_) => "el2n",
            PolicyConfig::Grand(_) => "grand",
            PolicyConfig::Forgetting(_) => "forgetting",
            PolicyConfig::Influence(_) => "influence",
        }
    }

    /// The policy's parameters in one canonical form, for checkpoints to record and compare:
    /// every key with its value as used (defaults filled in, `{"kind": "influence"}` and
    /// `{"kind": "influence", "prune": 0.3}` alike), keys sorted. `scores_from` is left out: it
    /// only seeds the ScoreBook of a fresh run, and a checkpoint carries its own book.
    pub fn canonical(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::{to_value, Value};
        let value = match self {
            PolicyConfig::Full(c) => to_value(c),
            PolicyConfig::Random(c) => to_value(c),
            PolicyConfig::EpsilonGreedy(c) => to_value(c),
            PolicyConfig::Ucb(c) => to_value(c),
            PolicyConfig::InfoBatch(c) => to_value(c),
            PolicyConfig::El2n(c) | PolicyConfig::Grand(c) | PolicyConfig::Forgetting(c) => {
                to_value(c)
            }
            PolicyConfig::Influence(c) => to_value(c),
        };
        let mut map = match value {
            Ok(Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        map.remove("scores_from");
        match self {
            PolicyConfig::El2n(c) | PolicyConfig::Grand(c) | PolicyConfig::Forgetting(c) => {
                map.insert("score_epochs".into(), c.score_epochs().into());
            }
            PolicyConfig::Ucb(c) => {
                map.insert("explore".into(), c.explore().into());
            }
            PolicyConfig::Influence(c) => {
                if let influence::InfluenceMode::Cardinality { prune } = c.mode() {
                    map.insert("prune".into(), prune.into());
                }
            }
            _ => {}
        }
        map.insert("kind".into(), self.kind().into());
        map
    }

    /// The noise guard of the score-based policies: (`noise_guard`, `guard_window`); `None`
    /// for `full`, `random` and `infobatch`, which have none (and track no streaks).
    pub fn guard(&self) -> Option<(bool, u8)> {
        match self {
            PolicyConfig::EpsilonGreedy(c) => Some((c.noise_guard, c.guard_window)),
            PolicyConfig::Ucb(c) => Some((c.noise_guard, c.guard_window)),
            PolicyConfig::El2n(c) | PolicyConfig::Grand(c) | PolicyConfig::Forgetting(c) => {
                Some((c.noise_guard, c.guard_window))
            }
            PolicyConfig::Influence(c) => Some((c.noise_guard, c.guard_window)),
            _ => None,
        }
    }

    /// The streak that makes a sample look unlearnable, for the report (and, with
    /// `noise_guard`, for the guard): `guard_window`.
    pub fn unlearnable_window(&self) -> Option<u8> {
        self.guard().map(|(_, w)| w)
    }

    /// The full-data epochs during which a static policy or `influence` collects its scores
    /// (at least `guard_window` with the noise guard); `None` for the other policies. A
    /// trainer can stop computing their signals afterwards.
    pub fn scoring_epochs(&self) -> Option<u64> {
        match self {
            PolicyConfig::El2n(c) | PolicyConfig::Grand(c) | PolicyConfig::Forgetting(c) => {
                Some(c.effective_score_epochs())
            }
            PolicyConfig::Influence(c) => Some(c.effective_score_epochs()),
            _ => None,
        }
    }

    /// The `budget` key: the run's sample-visits as a share of `epochs`·N.
    pub fn budget(&self) -> Option<f64> {
        match self {
            PolicyConfig::Full(c) => c.budget,
            PolicyConfig::Random(c) => c.budget,
            PolicyConfig::EpsilonGreedy(c) => c.budget,
            PolicyConfig::Ucb(c) => c.budget,
            PolicyConfig::InfoBatch(c) => c.budget,
            PolicyConfig::El2n(c) | PolicyConfig::Grand(c) | PolicyConfig::Forgetting(c) => {
                c.budget
            }
            PolicyConfig::Influence(c) => c.budget,
        }
    }

    /// The `epochs` key: the run's length, when given.
    pub fn epochs(&self) -> Option<u64> {
        match self {
            PolicyConfig::Full(c) => c.epochs,
            PolicyConfig::Random(c) => c.epochs,
            PolicyConfig::EpsilonGreedy(c) => c.epochs,
            PolicyConfig::Ucb(c) => c.epochs,
            PolicyConfig::InfoBatch(c) => Some(c.epochs),
            PolicyConfig::El2n(c) | PolicyConfig::Grand(c) | PolicyConfig::Forgetting(c) => {
                c.epochs
            }
            PolicyConfig::Influence(c) => c.epochs,
        }
    }

    /// The epochs of a run of `epochs` that the policy spends on full data whatever it is
    /// told and that a budget pays for first: InfoBatch's epoch 0 and annealing epochs, and,
    /// for the papers' rules (`noise_guard: false`), the first period of the greedy policies
    /// and the scoring epochs. None for the guarded score-based policies.
    pub fn full_epochs(&self, epochs: u64) -> Vec<bool> {
        let e = epochs as usize;
        let first = |k: u64| (0..e).map(|i| (i as u64) < k).collect();
        match self {
            PolicyConfig::Full(_) => vec![true; e],
            PolicyConfig::Random(_) => vec![false; e],
            // With the noise guard on, the score-based policies spread a budget evenly, as
            // `random` does: an epoch that would keep everything is cut to its share by the
            // budget's uniform draw instead of being paid in full, so the scored epochs are not
            // left with less than random's share, and "better than random at equal visits"
            // compares selections epoch by epoch.
            _ if matches!(self.guard(), Some((true, _))) => vec![false; e],
            PolicyConfig::EpsilonGreedy(c) => first(c.period),
            PolicyConfig::Ucb(c) => first(c.period),
            PolicyConfig::InfoBatch(c) => {
                let a = c.anneal_start();
                (0..e as u64).map(|i| i == 0 || i >= a).collect()
            }
            PolicyConfig::El2n(c) | PolicyConfig::Grand(c) | PolicyConfig::Forgetting(c) => {
                first(c.effective_score_epochs())
            }
            PolicyConfig::Influence(c) => first(c.effective_score_epochs()),
        }
    }

    /// Under a `budget`, the number of samples each epoch keeps (`schedule`), fixed before
    /// training: index e is epoch e; epochs past the run repeat the last count.
    pub fn budget_schedule(&self, n: usize) -> Option<Vec<usize>> {
        let (b, e) = (self.budget()?, self.epochs()?);
        Some(schedule(n, b, e, &self.full_epochs(e)))
    }

    /// The number of samples each of the run's `epochs()` epochs keeps, when it is known
    /// before training: under a `budget`, and for `full` and `random` (whose counts never
    /// depend on feedback). `None` otherwise.
    pub fn planned_counts(&self, n: usize) -> Option<Vec<usize>> {
        if let Some(k) = self.budget_schedule(n) {
            return Some(k);
        }
        let e = self.epochs()? as usize;
        match self {
            PolicyConfig::Full(_) => Some(vec![n; e]),
            PolicyConfig::Random(c) => Some(vec![budget(n, c.prune); e]),
            _ => None,
        }
    }

    /// The ScoreBook's EMA momentum (key `momentum` where the policy has it; 0.8 otherwise).
    pub fn momentum(&self) -> f32 {
        match self {
            PolicyConfig::EpsilonGreedy(c) => c.momentum as f32,
            PolicyConfig::Ucb(c) => c.momentum as f32,
            _ => 0.8,
        }
    }

    /// Longest gradient embedding stored as is (key `sketch_dim` of influence; 512 otherwise).
    pub fn sketch_dim(&self) -> usize {
        match self {
            PolicyConfig::Influence(c) => c.sketch_dim,
            _ => 512,
        }
    }

    /// Score files whose averaged scores seed the ScoreBook (static policies' `scores_from`).
    pub fn scores_from(&self) -> &[std::path::PathBuf] {
        match self {
            PolicyConfig::El2n(c) | PolicyConfig::Grand(c) | PolicyConfig::Forgetting(c) => {
                &c.scores_from
            }
            _ => &[],
        }
    }

    /// The policy object for a dataset of `n` samples.
    pub fn build(&self, n: usize) -> Box<dyn Policy> {
        let policy = self.build_unbudgeted(n);
        match self.budget_schedule(n) {
            Some(counts) => Box::new(Budgeted::new(policy, counts)),
            None => policy,
        }
    }

    fn build_unbudgeted(&self, n: usize) -> Box<dyn Policy> {
        match self {
            PolicyConfig::Full(_) => Box::new(Full::new(n)),
            PolicyConfig::Random(c) => Box::new(Random::new(c.clone(), n)),
            PolicyConfig::EpsilonGreedy(c) => Box::new(EpsilonGreedy::new(c.clone(), n)),
            PolicyConfig::Ucb(c) => Box::new(Ucb::new(c.clone(), n)),
            PolicyConfig::InfoBatch(c) => Box::new(InfoBatch::new(c.clone(), n)),
            PolicyConfig::El2n(c) => Box::new(El2n::new(c.clone(), n)),
            PolicyConfig::Grand(c) => Box::new(Grand::new(c.clone(), n)),
            PolicyConfig::Forgetting(c) => Box::new(Forgetting::new(c.clone(), n)),
            PolicyConfig::Influence(c) => Box::new(Influence::new(c.clone(), n)),
        }
    }
}

/// Checks a prune fraction: 0 ≤ p ≤ 0.9 (the cap of docs/policies.md).
pub(crate) fn check_prune(key: &str, p: f64) -> Result<()> {
    if !(0.0..=0.9).contains(&p) {
        return Err(Error::invalid(format!(
            "config key `{key}`: {p} is out of range 0..=0.9"
        )));
    }
    Ok(())
}

/// Checks a period: ≥ 1.
pub(crate) fn check_period(key: &str, period: u64) -> Result<()> {
    if period == 0 {
        return Err(Error::invalid(format!("config key `{key}`: must be ≥ 1")));
    }
    Ok(())
}

/// Checks an EMA momentum: 0 < m ≤ 1 (m = 0 would freeze the EMA at its first value).
pub(crate) fn check_momentum(key: &str, m: f64) -> Result<()> {
    if !(m > 0.0 && m <= 1.0) {
        return Err(Error::invalid(format!(
            "config key `{key}`: {m} is out of range (0, 1]"
        )));
    }
    Ok(())
}

/// The noise guard is on unless the config says `"noise_guard": false`.
pub(crate) fn default_noise_guard() -> bool {
    true
}

/// Two wrong reports in a row: one can be an early, untrained epoch's guess.
pub(crate) fn default_guard_window() -> u8 {
    2
}

/// Whether `id` looks unlearnable: wrong at each of its last `window` correctness reports.
/// Always false in a book without streaks (no STREAK field, or no correctness reported).
pub fn looks_unlearnable(book: &ScoreBook, id: usize, window: u8) -> bool {
    book.wrong_streak().get(id).is_some_and(|&s| s >= window)
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

/// `partition_judged` without the unseen list, which the greedy policies only count: leaves
/// the judged ids in `seen` (ascending) and returns the number of the others.
///
/// Once every id is judged (every epoch after the first few), `seen` is 0..n, and a `seen` left
/// by the previous call that already holds it is kept rather than rewritten: a counting pass
/// replaces a pass that stores n ids.
pub(crate) fn judged_ids(scores: &ScoreBook, window: u32, seen: &mut Vec<u64>) -> usize {
    let need = window.max(1);
    let counts = scores.seen();
    let n = counts.len();
    let unseen = counts.iter().filter(|&&c| c < need).count();
    // Ascending distinct ids, n of them, the last n − 1: exactly 0..n.
    if unseen == 0 && seen.len() == n && seen.last() == n.checked_sub(1).map(|l| l as u64).as_ref()
    {
        return 0;
    }
    seen.clear();
    extend_where(seen, n, |id| counts[id] >= need);
    unseen
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

/// The ScoreBook's default EMA momentum, that of the configs with a `momentum` key.
pub(crate) fn default_momentum() -> f64 {
    0.8
}

/// K = round((1 - p) · N), the per-epoch budget.
pub fn budget(n: usize, prune: f64) -> usize {
    (((1.0 - prune) * n as f64).round() as usize).min(n)
}

/// The budget left for seen samples once every never-seen sample is kept (the guard shared by
/// the score-based policies): K − |unseen|, at least 0. Keeping the epoch at K samples whenever
/// possible keeps the promised cost; when more than K samples are unseen, all of them are kept
/// and no seen sample is.
pub fn seen_budget(n: usize, prune: f64, unseen: usize) -> usize {
    budget(n, prune).saturating_sub(unseen)
}

/// Splits 0..N into never-seen and seen ids (ascending), reusing the vectors.
pub fn partition_seen(scores: &ScoreBook, unseen: &mut Vec<u64>, seen: &mut Vec<u64>) {
    unseen.clear();
    seen.clear();
    for id in 0..scores.len() {
        if scores.is_seen(id) {
            seen.push(id as u64);
        } else {
            unseen.push(id as u64);
        }
    }
}

/// Moves the `k` ids with the highest `score` to the front of `ids` (in unspecified order), in
/// O(len) with `select_nth_unstable`. Ties break by the smaller id, so the result is a pure
/// function of the scores. NaN scores rank lowest.
///
/// The ranking is packed into one u64 per id (score bits ordered so that ascending integers are
/// descending scores, then the id), so the selection compares integers in one sequential array
/// instead of looking two scores up by id, at random, per comparison: the same order, hence
/// the same set, with no cache miss per comparison on large N.
pub fn top_k_front(ids: &mut [u64], k: usize, score: impl Fn(u64) -> f32) {
    if k == 0 || k >= ids.len() {
        return;
    }
    let key = |id: u64| {
        let s = score(id);
        if s.is_nan() {
            f32::NEG_INFINITY
        } else {
            s
        }
    };
    if ids.iter().all(|&id| id <= u32::MAX as u64) {
        // Packed in place (no buffer of N keys to allocate and page-fault each epoch), then
        // unpacked back to the ids.
        for slot in ids.iter_mut() {
            *slot |= (!ascending_bits(key(*slot)) as u64) << 32;
        }
        ids.select_nth_unstable(k - 1);
        for slot in ids.iter_mut() {
            *slot &= 0xffff_ffff;
        }
        return;
    }
    ids.select_nth_unstable_by(k - 1, |&a, &b| key(b).total_cmp(&key(a)).then(a.cmp(&b)));
}

/// Sets `mark[id]` for the `k` ids of `ids` that `top_k_front` would move to the front (highest
/// `score`, ties by the smaller id, NaN lowest), without moving `ids`. Every id must be below
/// `mark.len()` and every `mark[id]` of `ids` false on entry; `band` is scratch.
///
/// Rather than selecting over every id, a sample of the packed keys (strided, so deterministic)
/// brackets the k-th key; one pass then marks the ids certainly above the bracket and gathers
/// those inside it, and only that band (a few % of the ids) goes through `select_nth_unstable`.
/// Keys are unique (they hold the id), so the marked set is the same whatever the bracket; when
/// the sample misjudges it (the count does not fall inside), the marks are undone and every key
/// is selected, as `top_k_front` does.
pub fn mark_top_k(
    ids: &[u64],
    k: usize,
    score: impl Fn(u64) -> f32,
    mark: &mut [bool],
    band: &mut Vec<u64>,
) {
    let m = ids.len();
    let k = k.min(m);
    if k == 0 {
        return;
    }
    if k == m {
        ids.iter().for_each(|&id| mark[id as usize] = true);
        return;
    }
    // Every id indexes `mark` (ids below `mark.len()` is this function's contract), so a mark
    // of at most 2³² entries bounds them all: no pass over the ids to check that they fit the
    // packed keys' low half.
    debug_assert!(ids.iter().all(|&id| id < mark.len() as u64));
    if mark.len() > 1 << 32 {
        band.clear();
        band.extend_from_slice(ids);
        top_k_front(band, k, score);
        band[..k].iter().for_each(|&id| mark[id as usize] = true);
        return;
    }
    let packed = |id: u64| {
        let s = score(id);
        let s = if s.is_nan() { f32::NEG_INFINITY } else { s };
        ((!ascending_bits(s) as u64) << 32) | id
    };
    const SAMPLE: usize = 1 << 14;
    if m >= 4 * SAMPLE {
        let mut sample: Vec<u64> = (0..SAMPLE).map(|j| packed(ids[j * m / SAMPLE])).collect();
        sample.sort_unstable();
        // k-th of m falls near rank k·S/m of the sample; ±4 standard deviations of that rank.
        let r = (k as f64 / m as f64 * SAMPLE as f64) as usize;
        let margin = 4 * (SAMPLE as f64 * 0.25).sqrt() as usize + 16;
        let lo = match r.checked_sub(margin) {
            Some(i) => sample[i],
            None => 0,
        };
        let hi = sample.get(r + margin).copied().unwrap_or(u64::MAX);
        band.clear();
        band.reserve(m);
        let spare = &mut band.spare_capacity_mut()[..m];
        let (mut below, mut inside) = (0usize, 0usize);
        for &id in ids {
            let key = packed(id);
            let is_below = key < lo;
            // Marks and appends without branching on the key (a coin flip near the bracket).
            mark[id as usize] |= is_below;
            spare[inside].write(key);
            inside += usize::from(!is_below & (key <= hi));
            below += usize::from(is_below);
        }
        // SAFETY: the first `inside` slots were written above (each append writes its slot
        // before `inside` passes it) and the capacity holds m ≥ inside.
        unsafe { band.set_len(inside) };
        if below <= k && below + inside >= k {
            let need = k - below;
            if need > 0 {
                if need < inside {
                    band.select_nth_unstable(need - 1);
                }
                band[..need]
                    .iter()
                    .for_each(|&p| mark[(p & 0xffff_ffff) as usize] = true);
            }
            return;
        }
        ids.iter().for_each(|&id| mark[id as usize] = false);
    }
    band.clear();
    band.extend(ids.iter().map(|&id| packed(id)));
    band.select_nth_unstable(k - 1);
    band[..k]
        .iter()
        .for_each(|&p| mark[(p & 0xffff_ffff) as usize] = true);
}

/// The bits of `x` as a u32 whose unsigned order is `f32::total_cmp`'s order.
pub(crate) fn ascending_bits(x: f32) -> u32 {
    let b = x.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// Appends to `out`, ascending, the ids in 0..n for which `keep(id)` holds, with no branch on
/// `keep`: the predicates the policies filter by (below the mean, kept by a random draw) are
/// coin flips the branch predictor misses half the time, which cost more than an unconditional
/// store per id.
pub(crate) fn extend_where(out: &mut Vec<u64>, n: usize, keep: impl Fn(usize) -> bool) {
    out.reserve(n);
    let start = out.len();
    let spare = &mut out.spare_capacity_mut()[..n];
    let mut k = 0;
    for id in 0..n {
        // k ≤ id < n: every slot below the final k is written before k passes it.
        spare[k].write(id as u64);
        k += usize::from(keep(id));
    }
    // SAFETY: slots start..start + k were initialised above (see the loop), and the capacity
    // holds start + n ≥ start + k elements.
    unsafe { out.set_len(start + k) };
}

/// Checkpoint bytes of a fixed subset (static and influence policies): empty until it is
/// chosen, else `tag` and the kept ids. The tag keeps one policy from loading another's state.
pub(crate) fn save_subset(tag: u8, kept: Option<&[u64]>, extra: &[f64]) -> Vec<u8> {
    let Some(kept) = kept else {
        return Vec::new();
    };
    let mut w = crate::codec::Writer::default();
    w.u8(tag);
    w.u64s(kept);
    w.u64(extra.len() as u64);
    extra.iter().for_each(|&x| w.f64(x));
    w.buf
}

/// Parses `save_subset`'s bytes for a dataset of `n`: `Some(None)` for no subset yet,
/// `Some(Some((ids, extra)))`, or `None` when the bytes do not fit.
#[allow(clippy::type_complexity)]
pub(crate) fn load_subset(bytes: &[u8], tag: u8, n: usize) -> Option<Option<(Vec<u64>, Vec<f64>)>> {
    if bytes.is_empty() {
        return Some(None);
    }
    let mut r = crate::codec::Reader::new(bytes, 0);
    if r.u8()? != tag {
        return None;
    }
    // Ascending and below n: at most n of them, refused beyond before being read.
    let ids = r.u64s_max(n)?;
    let count = r.u64()?;
    let extra = (0..count.min(16))
        .map(|_| r.f64())
        .collect::<Option<Vec<_>>>()?;
    let valid = ids.windows(2).all(|w| w[0] < w[1]) && ids.last().is_none_or(|&i| i < n as u64);
    (r.done() && valid).then_some(Some((ids, extra)))
}

/// Mean and (population) standard deviation of `values`; NaN for none.
pub fn mean_std(values: impl Iterator<Item = f32>) -> (f64, f64) {
    let (mut n, mut sum, mut sq) = (0usize, 0f64, 0f64);
    for v in values {
        n += 1;
        sum += v as f64;
        sq += (v as f64) * (v as f64);
    }
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = sum / n as f64;
    (mean, (sq / n as f64 - mean * mean).max(0.0).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_breaks_ties_by_id_and_ranks_nan_last() {
        let scores = [1.0, 5.0, f32::NAN, 5.0, 3.0, 5.0];
        let mut ids: Vec<u64> = (0..6).collect();
        top_k_front(&mut ids, 2, |i| scores[i as usize]);
        let mut top = ids[..2].to_vec();
        top.sort_unstable();
        assert_eq!(top, vec![1, 3]);
        let mut ids: Vec<u64> = (0..6).collect();
        top_k_front(&mut ids, 5, |i| scores[i as usize]);
        assert!(!ids[..5].contains(&2));
    }

    #[test]
    fn packed_top_k_equals_the_comparison_sort() {
        // Ties, NaN, ±0 and ±∞, over several k: the same set as a full sort by
        // (score desc with NaN lowest, id asc).
        let pool = [
            1.0,
            -0.0,
            0.0,
            f32::NAN,
            3.5,
            -2.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ];
        let scores: Vec<f32> = (0..500)
            .map(|i| pool[(i * 7 + i / 3) % pool.len()])
            .collect();
        let key = |i: u64| {
            let s = scores[i as usize];
            if s.is_nan() {
                f32::NEG_INFINITY
            } else {
                s
            }
        };
        for k in [1, 2, 63, 250, 499] {
            let mut ids: Vec<u64> = (0..500).rev().collect();
            top_k_front(&mut ids, k, |i| scores[i as usize]);
            let mut got = ids[..k].to_vec();
            got.sort_unstable();
            let mut all: Vec<u64> = (0..500).collect();
            all.sort_by(|&a, &b| key(b).total_cmp(&key(a)).then(a.cmp(&b)));
            let mut want = all[..k].to_vec();
            want.sort_unstable();
            assert_eq!(got, want, "k = {k}");
            let mut every = ids.clone();
            every.sort_unstable();
            assert_eq!(every, (0..500).collect::<Vec<u64>>());
        }
    }

    #[test]
    fn mark_top_k_marks_the_set_top_k_front_moves() {
        // Large enough for the sampled bracket (and small ones for the plain path), with ties,
        // NaN and a skew; ids in scrambled order, some ids absent.
        let n = 200_000usize;
        let scores: Vec<f32> = (0..n)
            .map(|i| match i % 97 {
                0 => f32::NAN,
                1..=9 => 2.5,
                _ => ((i * 7919) % 10_007) as f32 * if i % 5 == 0 { 0.001 } else { 1.0 },
            })
            .collect();
        let score = |i: u64| scores[i as usize];
        for m in [0usize, 1, 10, 5000, 150_000] {
            let ids: Vec<u64> = (0..m as u64).map(|i| (i * 131_071) % n as u64).collect();
            for k in [0, 1, m / 3, m.saturating_sub(1), m] {
                let k = k.min(m);
                let mut front = ids.clone();
                top_k_front(&mut front, k, score);
                let mut want = vec![false; n];
                front[..k].iter().for_each(|&id| want[id as usize] = true);
                let mut got = vec![false; n];
                let mut band = Vec::new();
                mark_top_k(&ids, k, score, &mut got, &mut band);
                assert!(got == want, "m = {m}, k = {k}");
            }
        }
        // A bracket the sample misjudges (the sampled positions all score high, the rest
        // low): undone, and the plain selection gives the same set.
        let m = 100_000usize;
        let mut odd: Vec<f32> = (0..m).map(|i| (i % 13) as f32).collect();
        for j in 0..1 << 14 {
            odd[j * m / (1 << 14)] = 100.0;
        }
        let ids: Vec<u64> = (0..m as u64).collect();
        for k in [10, 5000, 50_000] {
            let mut front = ids.clone();
            top_k_front(&mut front, k, |i| odd[i as usize]);
            let mut want = vec![false; m];
            front[..k].iter().for_each(|&id| want[id as usize] = true);
            let mut got = vec![false; m];
            mark_top_k(&ids, k, |i| odd[i as usize], &mut got, &mut Vec::new());
            assert!(got == want, "k = {k}");
        }
    }

    #[test]
    fn extend_where_keeps_matching_ids_in_order() {
        let mut out = vec![99];
        extend_where(&mut out, 10, |i| i % 3 == 1);
        assert_eq!(out, vec![99, 1, 4, 7]);
        extend_where(&mut out, 0, |_| true);
        assert_eq!(out, vec![99, 1, 4, 7]);
    }

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
    fn judged_ids_lists_the_judged_and_counts_the_rest() {
        let mut book = ScoreBook::new(5, ScoreFields::LOSS_EMA);
        let mut seen = vec![7, 8];
        book.seen.copy_from_slice(&[2, 1, 0, 3, 2]);
        assert_eq!(judged_ids(&book, 2, &mut seen), 2);
        assert_eq!(seen, vec![0, 3, 4]);
        // All judged: 0..n, whether `seen` is rewritten or kept from the last call.
        book.seen.copy_from_slice(&[2, 2, 2, 3, 2]);
        for _ in 0..2 {
            assert_eq!(judged_ids(&book, 2, &mut seen), 0);
            assert_eq!(seen, vec![0, 1, 2, 3, 4]);
        }
        // Back to some unjudged (a window of 3): the kept list is not reused.
        assert_eq!(judged_ids(&book, 3, &mut seen), 4);
        assert_eq!(seen, vec![3]);
    }

    #[test]
    fn budgets() {
        assert_eq!(budget(10, 0.25), 8); // round(7.5) = 8
        assert_eq!(budget(90, 0.9), 9);
        assert_eq!(seen_budget(100, 0.3, 20), 50);
        assert_eq!(seen_budget(100, 0.3, 80), 0);
    }
}
