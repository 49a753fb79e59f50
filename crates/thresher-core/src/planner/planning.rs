//! Making an epoch's plan from the ScoreBook as it stands (`make_plan`: the policy's selection,
//! laid out as a `Plan`, with the plan's part of the epoch report), and making the next one
//! ahead when the k-th batch from the end is handed out (`plan_ahead`), at once or deferred to
//! `settle`.

use std::sync::Arc;

use super::{Current, EpochReport, Planner};
use crate::plan::Plan;
use crate::policy::PlanContext;

impl Planner {
    /// With `plan_ahead` k: makes the next epoch's plan once the epoch under way has handed out
    /// its k-th batch from the end (an epoch of no batches hands out none: its successor is
    /// planned by `begin_epoch`, as without `plan_ahead`).
    pub(super) fn plan_ahead_if_done(&mut self) {
        let due = self
            .current
            .as_ref()
            .is_some_and(|c| self.plan_ahead.due(c.delivered, c.plan.batches()));
        if due && self.ahead.is_none() && !self.pending {
            if self.defer {
                self.pending = true;
            } else {
                self.make_plan_ahead();
            }
        }
    }

    fn make_plan_ahead(&mut self) {
        let epoch = self.current.as_ref().expect("checked").plan.epoch + 1;
        self.ahead = Some(self.make_plan(epoch));
    }

    /// Leaves the plan made ahead (`plan_ahead`) pending when it is due, for `settle` to make:
    /// for a loader whose workers can make it while the trainer is on the epoch's last
    /// batches. The caller must `settle` before every other use of the Planner.
    pub(crate) fn defer_plans_ahead(&mut self) {
        self.defer = true;
    }

    /// Whether a plan ahead is due and not made yet (see `defer_plans_ahead`).
    pub(crate) fn plan_pending(&self) -> bool {
        self.pending
    }

    /// Makes the pending plan ahead, if any: from the ScoreBook as it stood when the batch that
    /// made it due was handed out, since every access settles first.
    pub(crate) fn settle(&mut self) {
        if std::mem::take(&mut self.pending) {
            self.make_plan_ahead();
        }
    }

    /// The fraction of `ids` that look unlearnable by the policy's window; NaN when the
    /// policy tracks no streaks or nothing reported correctness.
    fn unlearnable_fraction(&self, ids: &[u64]) -> f64 {
        match self.unlearnable_window {
            Some(w) if self.scores.streak_reported() => {
                crate::policy::unlearnable_fraction(&self.scores, ids, w)
            }
            _ => f64::NAN,
        }
    }

    /// Makes the plan of `epoch` from the ScoreBook as it stands (it becomes the epoch that
    /// feedback is booked under), and returns it for the caller to place.
    pub(super) fn make_plan(&mut self, epoch: u64) -> Current {
        // The last plan's arrays, when nothing holds it any more, become this selection's:
        // reusing them spares page-faulting ~12 bytes per kept id every epoch (`digest` between
        // epochs has had its chance to read the last plan).
        if let Some(Ok(last)) = self.last_plan.take().map(Arc::try_unwrap) {
            if self.selection.ids.capacity() < last.ids.capacity() {
                self.selection.ids = last.ids;
                self.selection.weights = last.weights;
            }
        }
        self.selection.clear();
        self.selection.reserve(self.scores.len());
        let ctx = PlanContext {
            epoch,
            seed: self.options.seed,
            scores: &self.scores,
        };
        self.policy.select(&ctx, &mut self.selection);
        self.scores.mark_kept(&self.selection.ids);
        let sel = &self.selection;
        let weight_sum: f64 = sel.weights.iter().map(|&w| w as f64).sum();
        let mean_weight = if sel.is_empty() {
            f64::NAN
        } else {
            weight_sum / sel.len() as f64
        };
        let (score_mean, score_std) = (sel.score_mean, sel.score_std);
        let unlearnable_fraction = self.unlearnable_fraction(&sel.ids);
        // The selection's buffers move into the plan: one allocation per epoch, none per batch.
        let sel = std::mem::take(&mut self.selection);
        let plan = Plan::new(epoch, sel, &self.options, self.scores.len());
        self.epoch = epoch;
        // Samples after drop_last: the saved fraction counts what is actually delivered.
        self.total_samples += plan.samples() as u64;
        let n = plan.dataset_len as f64;
        let report = EpochReport {
            epoch,
            samples: plan.samples() as u64,
            dataset_len: plan.dataset_len as u64,
            prune_fraction: plan.prune_fraction(),
            saved_fraction: 1.0 - self.total_samples as f64 / ((epoch + 1) as f64 * n),
            mean_weight,
            score_mean,
            score_std,
            unlearnable_fraction,
            batches: plan.batches() as u64,
            ..EpochReport::default()
        };
        Current {
            plan: Arc::new(plan),
            delivered: 0,
            report,
        }
    }
}
