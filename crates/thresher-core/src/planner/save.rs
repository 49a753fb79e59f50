//! Writing a Planner's state: the ScoreBook's scores as a score file (`save_scores`) and
//! checkpoints (`save_state`, `save_state_at`) in the format of `checkpoint`.

use std::path::Path;

use super::checkpoint::{self, SavedJob, Snapshot};
use super::{EpochReport, Planner};
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::scorefile::ScoreFile;

impl Planner {
    /// Writes the ScoreBook's scores to `path` (atomically) for `scores_from` or the CLI.
    pub fn save_scores(&self, path: &Path) -> Result<()> {
        ScoreFile::from_book(&self.scores).write(path)
    }

    /// Writes a checkpoint to `path` (atomically): a Planner (or Loader) made with the same
    /// config plus `resume_from` continues exactly where this one is.
    pub fn save_state(&self, path: &Path) -> Result<()> {
        let job = self
            .current
            .as_ref()
            .map(|c| saved_job(&c.plan, c.delivered, &c.report));
        let ahead = self
            .ahead
            .as_ref()
            .map(|c| saved_job(&c.plan, 0, &c.report));
        self.write_state(path, job, ahead)
    }

    /// Writes a checkpoint as if only the first `batches` batches of this rank's latest epoch
    /// had been handed out: for consumers that fetch ahead (a DataLoader prefetching from a
    /// sampler, a DALI pipeline), whose trainer has consumed fewer batches than the Planner
    /// gave out. The latest epoch is the one under way or, between epochs, the one that just
    /// ended. Fails (changing nothing) when `batches` exceeds what was handed out.
    ///
    /// When the next epoch's plan was made ahead and `batches` is before the batch that made it
    /// due (`plan_ahead`), it is not stored: the resumed run hands out the rest of the epoch
    /// again and makes the next plan when that batch is handed out again (with the ScoreBook
    /// and the policy's state as saved). From that batch on it is stored.
    pub fn save_state_at(&self, path: &Path, batches: usize) -> Result<()> {
        let (plan, handed, report) = match (&self.current, &self.last_plan) {
            (Some(c), _) => (&c.plan, c.delivered, &c.report),
            (None, Some(p)) if p.epoch == self.epoch() => (
                p,
                self.last_delivered,
                self.last_report.as_ref().expect("set with the last plan"),
            ),
            _ => {
                return Err(Error::state(
                    "save_state_at: no epoch has begun whose position could be saved",
                ))
            }
        };
        if batches > handed {
            return Err(Error::invalid(format!(
                "save_state_at: batches = {batches} but only {handed} of epoch {} were handed out",
                plan.epoch
            )));
        }
        let job = saved_job(plan, batches, report);
        if batches == handed || self.plan_ahead.due(batches, plan.batches()) {
            let ahead = self
                .ahead
                .as_ref()
                .map(|c| saved_job(&c.plan, 0, &c.report));
            return self.write_state(path, Some(job), ahead);
        }
        match &self.ahead {
            // As if the next plan had not been made yet: the epoch and samples it added go.
            Some(a) => self.write_snapshot(
                path,
                plan.epoch,
                self.total_samples - a.plan.samples() as u64,
                Some(job),
                None,
            ),
            None => self.write_state(path, Some(job), None),
        }
    }

    fn write_state(
        &self,
        path: &Path,
        job: Option<SavedJob>,
        ahead: Option<SavedJob>,
    ) -> Result<()> {
        self.write_snapshot(path, self.epoch, self.total_samples, job, ahead)
    }

    fn write_snapshot(
        &self,
        path: &Path,
        epoch: u64,
        total_samples: u64,
        job: Option<SavedJob>,
        ahead: Option<SavedJob>,
    ) -> Result<()> {
        let bytes = checkpoint::encode(&Snapshot {
            fingerprint: self.fingerprint.clone(),
            epoch,
            total_samples,
            job,
            ahead,
            scores: &self.scores,
            policy_state: self.policy.save_state(),
        });
        crate::util::write_atomic(path, &bytes)
    }
}

/// The checkpoint's record of `plan` with `delivered` of this rank's batches handed out.
fn saved_job(plan: &Plan, delivered: usize, report: &EpochReport) -> SavedJob {
    SavedJob {
        epoch: plan.epoch,
        ids: plan.ids.clone(),
        weights: plan.weights.clone(),
        position: plan.position_after(delivered) as u64,
        mean_weight: report.mean_weight,
        score_mean: report.score_mean,
        score_std: report.score_std,
        unlearnable_fraction: report.unlearnable_fraction,
    }
}
