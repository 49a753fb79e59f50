//! The Planner: the pruning core. It owns the ScoreBook, the policy, the current epoch's plan
//! (with this rank's share of it and how many of its batches were delivered), the epoch report,
//! the digests and the checkpoint state. It starts no threads and does no I/O besides its own
//! files (checkpoints, score files, the report). The `Loader` is a Planner plus workers, a
//! source and a transform; a pipeline that reads its own data drives a Planner directly.
//!
//! Epochs: the plan of epoch 0 is made when the Planner is created (or the checkpoint's plans
//! are restored). With `plan_ahead` (the default: 1 batch) the plan of epoch e+1 is made when
//! the k-th batch from the end of epoch e is handed out (`hand_out`, `advance`, `advance_by`
//! reaching it; `PlanAhead::due`), from the ScoreBook at that moment, and held as the next plan
//! until `begin_epoch`; so a loader's workers can fill e+1 while the trainer is still on e's
//! last k batches, and the rule lives here once for both engines. Without it, or after an epoch that handed out no batch or was left
//! early, `begin_epoch` makes the plan after `finish_epoch` closed epoch e. Feedback is booked
//! under the epoch of the most recent plan.
//!
//! Files: this one holds the Planner, its construction and the epoch's life (begin, report,
//! finish, feedback, digest); `planning` makes an epoch's plan (now or ahead); `hand_out` hands
//! out batches and the whole-epoch view (`IndexBatch`, `EpochPlan`); `report` the epoch report
//! and digests; `save` writes checkpoints and score files, `checkpoint` is their format and
//! `resume` restores one.

mod checkpoint;
mod hand_out;
mod planning;
mod report;
mod resume;
mod save;

pub use hand_out::{EpochPlan, IndexBatch};
pub(crate) use report::ReportFile;
pub use report::{Digest, EpochInfo, EpochReport};

use std::sync::Arc;

use crate::config::{Config, PlanAhead};
use crate::error::{Error, Result};
use crate::plan::{Plan, PlanOptions};
use crate::policy::{Policy, Selection};
use crate::scorefile::ScoreFile;
use crate::scores::{Feedback, ScoreBook};
use checkpoint::Fingerprint;

/// Bytes a sample may take in a policy's arrays and an epoch's plan together (ids, weights,
/// scratch), for the check made before they are allocated.
const POLICY_AND_PLAN_BYTES: usize = 64;

/// The error for a dataset whose per-sample state does not fit in memory.
fn out_of_memory(n: usize, what: &str) -> Error {
    Error::invalid(format!(
        "source: a dataset of {n} samples is too large for this process: {what} cannot be \
         allocated (for an index source, config key `source.len`)"
    ))
}

pub struct Planner {
    policy: Box<dyn Policy>,
    options: PlanOptions,
    scores: ScoreBook,
    /// Reused from epoch to epoch (the last plan's arrays come back into it).
    selection: Selection,
    fingerprint: Fingerprint,
    /// The epoch of `current`, or of the last plan once it ended.
    epoch: u64,
    /// Samples planned over every epoch begun so far (for the saved fraction).
    total_samples: u64,
    current: Option<Current>,
    /// The plan of the last epoch that ended (for `digest` between epochs).
    last_plan: Option<Arc<Plan>>,
    /// The report of the last epoch that ended, and how many of its batches were handed out.
    last_report: Option<EpochReport>,
    last_delivered: usize,
    report_file: Option<ReportFile>,
    /// The policy's embedding length bound (`sketch_dim`): sizes what a checkpoint may hold.
    sketch_dim: usize,
    /// Samples of each epoch of the run when known before training (`budget`, or `full` and
    /// `random` with `epochs`).
    planned_counts: Option<Vec<usize>>,
    /// The streak that counts as unlearnable in the report (`None`: not tracked).
    unlearnable_window: Option<u8>,
    /// Config `plan_ahead`: make the next epoch's plan when the k-th batch from the end is
    /// handed out (`PlanAhead::due`).
    plan_ahead: PlanAhead,
    /// The next epoch's plan, made ahead; `begin_epoch` makes it the epoch under way.
    ahead: Option<Current>,
    /// Set by a loader with worker threads (`defer_plans_ahead`): the plan made ahead is left
    /// pending when it is due and made by `settle`, which a worker calls at once and every
    /// other access calls first. Nothing changes the ScoreBook in between (the loader holds
    /// feedback that arrives meanwhile until the plan is made), so the plan is the one the
    /// handing-out call would have made, without that call paying for it.
    defer: bool,
    /// A plan ahead is due and not made yet (only with `defer`).
    pending: bool,
}

/// The epoch under way.
struct Current {
    plan: Arc<Plan>,
    /// Batches of this rank handed out.
    delivered: usize,
    /// The plan's part of the report, fixed when the epoch began.
    report: EpochReport,
}

impl Planner {
    /// A Planner for a dataset of `dataset_len` samples under `config` (its planning keys:
    /// `policy`, `seed`, `shuffle`, `batch_size`, `drop_last`, `rank`, `world_size`,
    /// `resume_from`, `report`; the loading keys are the Loader's). Epoch 0's plan, or the
    /// checkpoint's epoch, is made at once.
    ///
    /// A checkpoint records the dataset by N alone here (what an index source knows); a loader
    /// with data uses `for_dataset` with a fingerprint of its source.
    pub fn new(config: &Config, dataset_len: usize) -> Result<Planner> {
        Self::for_dataset(config, dataset_len, 0)
    }

    /// `new` for a dataset whose identity beyond N is `dataset` (a fingerprint that checkpoints
    /// record and `resume_from` compares; 0 = N alone).
    pub fn for_dataset(config: &Config, dataset_len: usize, dataset: u64) -> Result<Planner> {
        config.validate()?;
        if dataset_len == 0 {
            return Err(Error::invalid("source: the dataset is empty"));
        }
        let needs = config.policy.build(1).needs();
        let mut scores = ScoreBook::try_with_options(
            dataset_len,
            needs,
            config.policy.momentum(),
            config.policy.sketch_dim(),
            config.seed,
        )
        .ok_or_else(|| out_of_memory(dataset_len, "its ScoreBook"))?;
        // The policy's and the plan's per-sample arrays are allocated infallibly as they are
        // made: check first that they fit (a reservation of address space, freed at once).
        let mut probe: Vec<u8> = Vec::new();
        if dataset_len
            .checked_mul(POLICY_AND_PLAN_BYTES)
            .is_none_or(|b| probe.try_reserve_exact(b).is_err())
        {
            return Err(out_of_memory(dataset_len, "the policy's and plan's arrays"));
        }
        drop(probe);
        let policy = config.policy.build(dataset_len);
        seed_from_files(config.policy.scores_from(), &mut scores)?;
        let report_file = config.report.as_deref().map(ReportFile::open).transpose()?;
        let mut planner = Planner {
            policy,
            options: PlanOptions {
                seed: config.seed,
                shuffle: config.shuffle,
                batch_size: config.batch_size,
                drop_last: config.drop_last,
                rank: config.rank,
                world_size: config.world_size,
            },
            scores,
            selection: Selection::default(),
            fingerprint: Fingerprint {
                n: dataset_len as u64,
                seed: config.seed,
                shuffle: config.shuffle,
                drop_last: config.drop_last,
                plan_ahead: config.plan_ahead,
                policy: config.policy.kind().to_string(),
                dataset,
                policy_config: serde_json::Value::Object(config.policy.canonical()).to_string(),
            },
            epoch: 0,
            total_samples: 0,
            current: None,
            last_plan: None,
            last_report: None,
            last_delivered: 0,
            report_file,
            sketch_dim: config.policy.sketch_dim(),
            planned_counts: config.policy.planned_counts(dataset_len),
            unlearnable_window: config.policy.unlearnable_window(),
            plan_ahead: config.plan_ahead,
            ahead: None,
            defer: false,
            pending: false,
        };
        match &config.resume_from {
            None => planner.current = Some(planner.make_plan(0)),
            Some(path) => planner.resume(path)?,
        }
        Ok(planner)
    }

    /// The run's total batches on this rank (every rank delivers as many), known before
    /// training starts: the sum over epochs 0 … `epochs`−1 of each epoch's batch count, from
    /// the per-epoch sample counts a `budget` fixes in advance (or those of `full` and
    /// `random`, which never depend on feedback). An error naming `policy.budget` when the
    /// counts depend on feedback. Counts the whole run also on a resumed Planner.
    pub fn total_batches(&self) -> Result<u64> {
        let counts = self.planned_counts.as_ref().ok_or_else(|| {
            Error::state(
                "total_batches: the run's batch count depends on feedback under this policy; \
                 give `policy.epochs` (and, but for `full` and `random`, `policy.budget`) to fix it in advance",
            )
        })?;
        Ok(counts
            .iter()
            .map(|&k| self.options.batches_for(k) as u64)
            .sum())
    }

    /// The samples each epoch of the run keeps when fixed in advance (see `total_batches`).
    pub fn planned_counts(&self) -> Option<&[usize]> {
        self.planned_counts.as_deref()
    }

    /// N, the number of samples in the dataset.
    pub fn dataset_len(&self) -> usize {
        self.scores.len()
    }

    /// The epoch under way, or the last one once it has ended (also when the next one's plan
    /// is already made).
    pub fn epoch(&self) -> u64 {
        match (&self.current, &self.ahead) {
            (Some(c), _) => c.plan.epoch,
            (None, Some(a)) => a.plan.epoch - 1,
            (None, None) => self.epoch,
        }
    }

    /// The plan of the epoch under way; `None` between `finish_epoch` and `begin_epoch`.
    pub fn plan(&self) -> Option<&Arc<Plan>> {
        self.current.as_ref().map(|c| &c.plan)
    }

    /// The next epoch's plan when it is already made (`plan_ahead`: the epoch under way, or the
    /// one that just ended, has handed out its last batch); `begin_epoch` begins it.
    pub fn next_plan(&self) -> Option<&Arc<Plan>> {
        self.ahead.as_ref().map(|c| &c.plan)
    }

    /// Batches of the epoch under way handed out so far on this rank (0 between epochs).
    pub fn delivered(&self) -> usize {
        self.current.as_ref().map_or(0, |c| c.delivered)
    }

    /// Whether the epoch under way has handed out all its batches (true between epochs too).
    pub fn epoch_done(&self) -> bool {
        self.current
            .as_ref()
            .is_none_or(|c| c.delivered >= c.plan.batches())
    }

    /// When the last one has ended, begins the next epoch — its plan made ahead, or made now
    /// from the ScoreBook as it stands — and returns the plan under way.
    pub fn begin_epoch(&mut self) -> &Arc<Plan> {
        if self.current.is_none() {
            let next = match self.ahead.take() {
                Some(next) => next,
                None => self.make_plan(self.epoch + 1),
            };
            self.current = Some(next);
        }
        &self.current.as_ref().expect("set above").plan
    }

    /// The report of the epoch under way so far (the plan's part; the loader adds what the
    /// epoch cost), or of the last one once it has ended. Never begins an epoch.
    pub fn report(&self) -> EpochReport {
        match &self.current {
            Some(c) => EpochReport {
                delivered: c.delivered as u64,
                ..c.report
            },
            None => self.last_report.unwrap_or_default(),
        }
    }

    /// Appends `report` to the config's `report` file (if any), with `extra` merged into the
    /// line. Called once per epoch, when it ends.
    pub(crate) fn write_report(
        &self,
        report: &EpochReport,
        extra: Option<(&str, serde_json::Value)>,
    ) -> Result<()> {
        match &self.report_file {
            Some(f) => f.append(report, extra),
            None => Ok(()),
        }
    }

    /// Closes the epoch under way with its final report (`report` as completed by the caller).
    pub fn finish_epoch(&mut self, report: EpochReport) {
        if let Some(c) = self.current.take() {
            self.last_plan = Some(c.plan);
            self.last_report = Some(report);
            self.last_delivered = c.delivered;
        }
    }

    /// Ends the epoch under way now, before all its batches were handed out (a consumer that
    /// left the epoch early): the rest is abandoned — those samples count as not visited in the
    /// saved fraction, and feedback already booked stays. Returns the epoch's report (the
    /// plan's part) for the caller to complete and pass to `finish_epoch`; `None` between
    /// epochs.
    pub fn abandon_rest(&mut self) -> Option<EpochReport> {
        let c = self.current.as_ref()?;
        let planned = c.plan.samples() as u64;
        let visited = (c.plan.position_after(c.delivered) as u64).min(planned);
        self.total_samples -= planned - visited;
        let n = c.plan.dataset_len as f64;
        // A plan already made ahead (`plan_ahead` > 1) counted its samples: not this epoch's.
        let ahead = self.ahead.as_ref().map_or(0, |a| a.plan.samples() as u64);
        let saved = 1.0 - (self.total_samples - ahead) as f64 / ((c.plan.epoch + 1) as f64 * n);
        let c = self.current.as_mut().expect("checked above");
        c.report.saved_fraction = saved;
        Some(self.report())
    }

    /// Applies per-sample feedback to the ScoreBook, booked under the epoch of the most recent
    /// plan; validated whole first, so a rejected call changes nothing.
    pub fn feedback(&mut self, fb: &Feedback<'_>) -> Result<()> {
        self.scores.feedback(fb, self.epoch)
    }

    /// The plan under way; right after an epoch ended, the next epoch's (made ahead, or made
    /// now), so its length is known before its first batch.
    pub fn epoch_info(&mut self) -> EpochInfo {
        let plan = Arc::clone(self.begin_epoch());
        EpochInfo {
            epoch: plan.epoch,
            batches: plan.batches() as u64,
            samples: plan.samples() as u64,
            dataset_len: plan.dataset_len as u64,
            prune_fraction: plan.prune_fraction(),
            delivered: self.delivered() as u64,
            consumer_wait: std::time::Duration::ZERO,
        }
    }

    /// Digests that say whether ranks agree: the global plan under way (or the last one's,
    /// between epochs; never begins an epoch) and the ScoreBook with the policy's state. Ranks
    /// fed the same feedback have equal digests whatever their rank. It hashes the whole
    /// ScoreBook, so call it per epoch, not per step.
    pub fn digest(&self) -> Digest {
        let plan = self.plan().or(self.last_plan.as_ref());
        let (epoch, plan) = plan.map_or((self.epoch(), 0), |p| (p.epoch, p.digest()));
        let mut w = crate::codec::Writer::default();
        self.scores.encode(&mut w);
        w.u8s(&self.policy.save_state());
        let mut h = crate::util::Fnv::default();
        h.write(&w.buf);
        Digest {
            epoch,
            plan,
            scores: h.0,
        }
    }

    /// The ScoreBook (for inspection and tests).
    pub fn scores(&self) -> &ScoreBook {
        &self.scores
    }
}

/// Seeds the ScoreBook with the average of the score files (`scores_from`).
fn seed_from_files(paths: &[std::path::PathBuf], scores: &mut ScoreBook) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let files = paths
        .iter()
        .map(|p| ScoreFile::read_for(p, Some(scores.len())).map(|f| (p.clone(), f)))
        .collect::<Result<Vec<_>>>()
        .map_err(|e| e.context("config key `policy.scores_from`"))?;
    let merged =
        ScoreFile::merge(&files).map_err(|e| e.context("config key `policy.scores_from`"))?;
    merged.seed_book(&paths[0], scores)
}
