//! Pruning policies: each turns (epoch, seed, ScoreBook) into the epoch's kept ids and their loss
//! weights. One module per policy (`static_window` serves el2n, grand and forgetting); the rules
//! are those of docs/policies.md, one section per policy. Policies do no I/O and start no
//! threads; shuffling, batching and sharding happen afterwards in `plan`. This file owns the
//! trait and the selection type; the config object is in `config.rs`, and the helpers the
//! policies share are in `select.rs` (budget, top-k, filters), `guard.rs` (the noise guard and
//! the judged test) and `subset_state.rs` (checkpoint bytes of a fixed subset).

mod budget;
mod config;
mod epsilon_greedy;
mod finite_stats;
mod full;
mod greedy_share;
mod guard;
mod influence;
mod infobatch;
mod kept_stats;
mod lane_sums;
mod marked;
mod period_cache;
mod random;
mod select;
mod share_draw;
mod static_window;
mod subset_state;
mod top_k_wide;
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

pub use config::PolicyConfig;
pub(crate) use config::{check_momentum, check_period, check_prune, default_momentum};
pub(crate) use finite_stats::{mean_std_finite, stats_and_guard};
pub(crate) use guard::{
    default_explore, default_guard_window, default_noise_guard, flagged_streaks, unjudged_into,
};
pub use guard::{
    judged_mask, looks_unlearnable, partition_judged, unlearnable_fraction, UNLEARNABLE_WARNING,
};
pub(crate) use marked::{extend_marked, extend_true};
pub(crate) use select::{
    ascending_bits, extend_by_class, extend_where, fits_u32, flagged_key, id_lists,
    mark_top_k_scores, split_where, ListedId,
};
pub use select::{budget, mark_top_k, partition_seen, seen_budget, top_k_front};
pub(crate) use subset_state::{load_with_pool, save_subset, save_with_pool};

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

/// Entries a wide pass may store past the last it appends to a `Selection` (a register of 16
/// f32 weights), which `Selection::reserve` leaves room for.
const STORE_SLACK: usize = 16;

impl Selection {
    pub fn clear(&mut self) {
        self.ids.clear();
        self.weights.clear();
        self.score_mean = f64::NAN;
        self.score_std = f64::NAN;
    }
    /// Room for `n` ids and weights, and `STORE_SLACK` more: the policies' AVX-512 passes
    /// store whole registers past the last id they append, and reserve that room themselves;
    /// without it here a buffer of exactly `n` would be reallocated (a fresh, page-faulting
    /// allocation) at every plan. An empty selection's buffers that are too small are replaced
    /// by ones advised for huge pages: the plan shuffles them at random positions.
    pub fn reserve(&mut self, n: usize) {
        let n = n + STORE_SLACK;
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

/// Mean and (population) standard deviation of `values`; NaN for none.
pub fn mean_std(values: impl Iterator<Item = f32>) -> (f64, f64) {
    let (mut n, mut sum, mut sq) = (0usize, 0f64, 0f64);
    for v in values {
        n += 1;
        sum += v as f64;
        sq += (v as f64) * (v as f64);
    }
    mean_std_of(n, sum, sq)
}

/// `mean_std` from its running sums: `n` values, their sum and their sum of squares.
pub(crate) fn mean_std_of(n: usize, sum: f64, sq: f64) -> (f64, f64) {
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = sum / n as f64;
    (mean, (sq / n as f64 - mean * mean).max(0.0).sqrt())
}
