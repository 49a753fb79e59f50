//! Resuming a Planner from a checkpoint (config `resume_from`): the ScoreBook, the policy's
//! state, the epoch, and the global plan under way laid out anew for this rank, batch size
//! and world size from the position the saving run had consumed.

use std::path::Path;
use std::sync::Arc;

use super::checkpoint;
use super::{Current, EpochReport, Planner};
use crate::error::{Error, Result};
use crate::plan::{Plan, PlanOptions};

impl Planner {
    /// Replaces the fresh state with a checkpoint's; on error the Planner is not used.
    pub(super) fn resume(&mut self, path: &Path) -> Result<()> {
        let r = checkpoint::restore(
            path,
            &self.fingerprint,
            self.max_state_bytes(),
            &mut self.scores,
        )?;
        if !self.policy.load_state(&r.policy_state) {
            return Err(Error::format(format!(
                "{}: not a usable checkpoint: the policy state does not fit policy `{}`",
                path.display(),
                self.fingerprint.policy
            )));
        }
        self.epoch = r.epoch;
        self.total_samples = r.total_samples;
        let ahead = r
            .ahead
            .map(|a| (a.position, self.restore_job(a, r.total_samples)));
        // The epoch before counted its samples when its plan was made, before the next one's.
        let before = r
            .total_samples
            .saturating_sub(ahead.as_ref().map_or(0, |(_, a)| a.plan.samples() as u64));
        self.current = r.job.map(|j| self.restore_job(j, before));
        if let Some((position, a)) = ahead {
            // Made ahead in the epoch before: that epoch (when stored) must have handed out at
            // least its batch that made the plan due (`plan_ahead` batches from its end, as laid
            // out by the saving run: another world size or batch size may count them
            // differently, so only the last-batch rule is checked exactly), and the next plan
            // begins at its batch 0.
            let early = self.current.as_ref().is_some_and(|c| {
                c.delivered < c.plan.batches() && (self.plan_ahead.get() <= 1 || c.delivered == 0)
            });
            if early || position != 0 || !self.plan_ahead.is_on() {
                return Err(Error::format(format!(
                    "{}: not a usable checkpoint: inconsistent plan",
                    path.display()
                )));
            }
            self.ahead = Some(a);
        }
        Ok(())
    }
}

impl Planner {
    /// A stored plan laid out for this rank, batch size and world size, with its report.
    fn restore_job(&self, j: checkpoint::SavedJob, total_samples: u64) -> Current {
        let (plan, delivered) = resume_layout(
            j.epoch,
            j.ids,
            j.weights,
            j.position,
            &self.options,
            self.scores.len(),
        );
        let report = EpochReport {
            epoch: plan.epoch,
            samples: plan.samples() as u64,
            dataset_len: plan.dataset_len as u64,
            prune_fraction: plan.prune_fraction(),
            saved_fraction: 1.0
                - total_samples as f64 / ((plan.epoch + 1) as f64 * plan.dataset_len as f64),
            mean_weight: j.mean_weight,
            score_mean: j.score_mean,
            score_std: j.score_std,
            unlearnable_fraction: j.unlearnable_fraction,
            batches: plan.batches() as u64,
            ..EpochReport::default()
        };
        Current {
            plan: Arc::new(plan),
            delivered,
            report,
        }
    }

    /// The most bytes a checkpoint of this Planner can take: the plan (12 bytes an id), the
    /// ScoreBook (every field, and an embedding of at most `sketch_dim` floats a sample), the
    /// policy's state (a subset and figures, 16 bytes a sample), and 1 MiB of headers.
    fn max_state_bytes(&self) -> u64 {
        let n = self.scores.len() as u64;
        let per_sample = 12 + 64 + 4 * self.sketch_dim as u64 + 16;
        (1 << 20) + n.saturating_mul(per_sample)
    }
}

/// The layout of a checkpoint's global plan for this rank: where batch 0 begins and how many
/// batches count as delivered. When the consumed position falls on a step boundary of this
/// world size, the layout starts at 0 with that many steps delivered (the same numbering as the
/// uninterrupted run when the world size is unchanged); otherwise it starts at the position.
fn resume_layout(
    epoch: u64,
    ids: Vec<u64>,
    weights: Vec<f32>,
    position: u64,
    options: &PlanOptions,
    dataset_len: usize,
) -> (Plan, usize) {
    let plan = Plan::from_global(epoch, ids, weights, options, dataset_len, 0);
    let step = (options.world_size * options.batch_size) as u64;
    if position >= plan.samples() as u64 {
        // Everything was delivered: the next call reports the end of the epoch.
        let batches = plan.batches();
        (plan, batches)
    } else if position.is_multiple_of(step) {
        let delivered = (position / step) as usize;
        (plan, delivered)
    } else {
        let start = position as usize;
        let Plan { ids, weights, .. } = plan;
        (
            Plan::from_global(epoch, ids, weights, options, dataset_len, start),
            0,
        )
    }
}
