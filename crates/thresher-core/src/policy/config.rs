//! The `policy` config object (`PolicyConfig`): parsing, validation, the canonical form
//! checkpoints compare, the per-run quantities derived from it (budget schedule, full epochs,
//! guard settings) and `build`, plus the range checks and defaults the policies' own configs use.

use serde::Deserialize;

use super::budget::{self, schedule, Budgeted};
use super::select::budget;
use super::{
    influence, El2n, EpsilonGreedy, EpsilonGreedyConfig, Forgetting, Full, FullConfig, Grand,
    Influence, InfluenceConfig, InfoBatch, InfoBatchConfig, Policy, Random, RandomConfig,
    StaticConfig, Ucb, UcbConfig,
};
use crate::error::{Error, Result};

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
        budget::check_epochs_and_budget(self.budget(), self.epochs())?;
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

    /// The epochs of a run of `epochs` on `n` samples that the policy spends on full data
    /// whatever it is told and that a budget pays for first: InfoBatch's epoch 0 and the
    /// annealing epochs the budget can afford (`InfoBatchConfig::budget_full_epochs`), and,
    /// for the papers' rules (`noise_guard: false`), the first period of the greedy policies
    /// and the scoring epochs. None for the guarded score-based policies.
    pub fn full_epochs(&self, n: usize, epochs: u64) -> Vec<bool> {
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
            PolicyConfig::InfoBatch(c) => c.budget_full_epochs(n),
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
        Some(schedule(n, b, e, &self.full_epochs(n, e)))
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

/// The ScoreBook's default EMA momentum, that of the configs with a `momentum` key.
pub(crate) fn default_momentum() -> f64 {
    0.8
}
