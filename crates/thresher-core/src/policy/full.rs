//! `full`: every id, weight 1 — the baseline (docs/policies.md, section "full").

use serde::Deserialize;

use super::{PlanContext, Policy, Selection};
use crate::scores::ScoreFields;

#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FullConfig {
    /// The run's total sample-visits as a share of `epochs`·N (docs/policies.md, "A budget
    /// fixed in advance"); replaces `prune`.
    #[serde(default)]
    pub budget: Option<f64>,
    /// The run's epochs; needed by `budget`.
    #[serde(default)]
    pub epochs: Option<u64>,
}

pub struct Full {
    n: usize,
}

impl Full {
    pub fn new(n: usize) -> Self {
        Full { n }
    }
}

impl Policy for Full {
    fn needs(&self) -> ScoreFields {
        ScoreFields::NONE
    }

    fn select(&mut self, _ctx: &PlanContext<'_>, out: &mut Selection) {
        out.ids.extend(0..self.n as u64);
        out.weights.resize(self.n, 1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scores::ScoreBook;

    #[test]
    fn keeps_everything_with_weight_one() {
        let book = ScoreBook::new(5, ScoreFields::NONE);
        let mut out = Selection::default();
        let ctx = PlanContext {
            epoch: 3,
            seed: 1,
            scores: &book,
        };
        Full::new(5).select(&ctx, &mut out);
        assert_eq!(out.ids, vec![0, 1, 2, 3, 4]);
        assert_eq!(out.weights, vec![1.0; 5]);
    }
}
