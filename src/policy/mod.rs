//! Pruning policies: each turns (epoch, seed, ScoreBook) into the epoch's kept ids and their
//! loss weights. One file per policy; the rules are those of ALGORITHMS.md. Policies do no I/O
//! and start no threads; shuffling, batching and sharding happen afterwards in `plan`.

mod full;
mod random;

pub use full::{Full, FullConfig};
pub use random::{Random, RandomConfig};

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
/// weight of each. Buffers are reused from epoch to epoch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    pub ids: Vec<u64>,
    pub weights: Vec<f32>,
}

impl Selection {
    pub fn clear(&mut self) {
        self.ids.clear();
        self.weights.clear();
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
}

/// The `policy` config object: `{"kind": NAME, ...}`. A key the named policy does not use is
/// refused and named.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PolicyConfig {
    Full(FullConfig),
    Random(RandomConfig),
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig::Full(FullConfig {})
    }
}

impl PolicyConfig {
    pub fn validate(&self) -> Result<()> {
        match self {
            PolicyConfig::Full(_) => Ok(()),
            PolicyConfig::Random(c) => c.validate(),
        }
    }

    /// The policy object for a dataset of `n` samples.
    pub fn build(&self, n: usize) -> Box<dyn Policy> {
        match self {
            PolicyConfig::Full(_) => Box::new(Full::new(n)),
            PolicyConfig::Random(c) => Box::new(Random::new(c.clone(), n)),
        }
    }
}

/// Checks a prune fraction: 0 ≤ p ≤ 0.9 (ALGORITHMS.md caps p at 0.9).
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

/// K = round((1 - p) · N), the per-epoch budget.
pub fn budget(n: usize, prune: f64) -> usize {
    (((1.0 - prune) * n as f64).round() as usize).min(n)
}
