//! The Planner: the pruning core. It owns the ScoreBook, the policy, the current epoch's plan
//! (with this rank's share of it and how many of its batches were delivered), the epoch report,
//! the digests and the checkpoint state. It starts no threads and does no I/O besides its own
//! files (checkpoints, score files, the report). The `Loader` is a Planner plus workers, a
//! source and a transform; a pipeline that reads its own data drives a Planner directly.
//!
//! Epochs: the plan of epoch 0 is made when the Planner is created (or the checkpoint's plans
//! are restored). With `plan_ahead` (the default) the plan of epoch e+1 is made when the last
//! batch of epoch e is handed out (`hand_out`, `advance`, `advance_by` reaching the end), from
//! the ScoreBook at that moment, and held as the next plan until `begin_epoch`; so a loader's
//! workers can fill e+1 while the trainer is still on e's last batch, and the rule lives here
//! once for both engines. Without it, or after an epoch that handed out no batch or was left
//! early, `begin_epoch` makes the plan after `finish_epoch` closed epoch e. Feedback is booked
//! under the epoch of the most recent plan.

mod checkpoint;
mod report;
mod resume;

pub(crate) use report::ReportFile;
pub use report::{Digest, EpochInfo, EpochReport};

use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::plan::{Plan, PlanOptions};
use crate::policy::{PlanContext, Policy, Selection};
use crate::scorefile::ScoreFile;
use crate::scores::{Feedback, ScoreBook};
use checkpoint::{Fingerprint, SavedJob, Snapshot};

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
    /// Config `plan_ahead`: make the next epoch's plan when the last batch is handed out.
    plan_ahead: bool,
    /// The next epoch's plan, made ahead; `begin_epoch` makes it the epoch under way.
    ahead: Option<Current>,
    /// Set by a loader with worker threads (`defer_plans_ahead`): the plan made ahead is left
    /// pending at the last batch and made by `settle`, which a worker calls at once and every
    /// other access calls first. Nothing changes the ScoreBook in between, so the plan is the
    /// one the last batch's call would have made, without that call paying for it.
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

/// This rank's whole epoch in one piece, for readers that schedule their own reads (DALI's
/// external source, FFCV's traversal order, a C++ reader with its own threads): the ids and
/// weights of batches 0.. in delivery order, padding (weight 0) last.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpochPlan {
    pub epoch: u64,
    /// Batches on this rank; `batch_size` consecutive entries make one (the last may be short).
    pub batches: usize,
    pub batch_size: usize,
    pub ids: Vec<u64>,
    pub weights: Vec<f32>,
    /// Trailing entries that are padding.
    pub padding: usize,
}

/// One batch of a Planner driven on its own: ids, loss weights, and how many trailing entries
/// are padding (weight 0, repeated ids that make every rank's batch count equal).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IndexBatch {
    pub epoch: u64,
    /// This batch's index in the epoch, on this rank.
    pub index: usize,
    pub ids: Vec<u64>,
    pub weights: Vec<f32>,
    pub padding: usize,
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

    /// With `plan_ahead`: makes the next epoch's plan once the epoch under way has handed out
    /// its last batch (an epoch of no batches hands out none: its successor is planned by
    /// `begin_epoch`, as without `plan_ahead`).
    fn plan_ahead_if_done(&mut self) {
        let done = self
            .current
            .as_ref()
            .is_some_and(|c| c.plan.batches() > 0 && c.delivered == c.plan.batches());
        if self.plan_ahead && done && self.ahead.is_none() {
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

    /// Leaves the plan made ahead (`plan_ahead`) pending when the last batch is handed out,
    /// for `settle` to make: for a loader whose idle workers can make it while the trainer is
    /// on that batch. The caller must `settle` before every other use of the Planner.
    pub(crate) fn defer_plans_ahead(&mut self) {
        self.defer = true;
    }

    /// Whether a plan ahead is due and not made yet (see `defer_plans_ahead`).
    pub(crate) fn plan_pending(&self) -> bool {
        self.pending
    }

    /// Makes the pending plan ahead, if any: from the ScoreBook as it stood when the last batch
    /// was handed out, since every access settles first.
    pub(crate) fn settle(&mut self) {
        if std::mem::take(&mut self.pending) {
            self.make_plan_ahead();
        }
    }

    /// Counts one more batch of the epoch under way as handed out (making the next epoch's plan
    /// when it was the last, with `plan_ahead`).
    pub fn advance(&mut self) {
        if let Some(c) = self.current.as_mut() {
            debug_assert!(c.delivered < c.plan.batches());
            c.delivered += 1;
        }
        self.plan_ahead_if_done();
    }

    /// Counts `batches` more batches of the epoch under way as handed out without building
    /// them: for a reader of the whole-epoch view, which consumed them from `epoch_plan`, so
    /// that reports, `saved_fraction` and checkpoints see its real position. Begins the next
    /// epoch first when the last one has ended. Refused (changing nothing) past the epoch's end.
    pub fn advance_by(&mut self, batches: usize) -> Result<()> {
        self.begin_epoch();
        let c = self.current.as_mut().expect("begin_epoch sets it");
        let left = c.plan.batches() - c.delivered;
        if batches > left {
            return Err(Error::invalid(format!(
                "advance: batches = {batches} but epoch {} has {left} of its {} batches left",
                c.plan.epoch,
                c.plan.batches()
            )));
        }
        c.delivered += batches;
        self.plan_ahead_if_done();
        Ok(())
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

    /// The next batch of a Planner driven on its own (no loader): begins the next epoch when
    /// the last one has ended, and returns `None` once at the end of each epoch (writing its
    /// report line), like `Loader::next`.
    pub fn next_batch(&mut self) -> Result<Option<IndexBatch>> {
        let mut batch = IndexBatch::default();
        Ok(self
            .hand_out(&mut batch.ids, &mut batch.weights)?
            .map(|(epoch, index, padding)| IndexBatch {
                epoch,
                index,
                padding,
                ..batch
            }))
    }

    /// `next_batch` into caller-owned arrays (cleared first, reused from batch to batch):
    /// `Some((epoch, index, padding))`, or `None` at the end of the epoch. A failed report
    /// write is returned once; the epoch is closed first, so the next call begins the next one.
    pub(crate) fn hand_out(
        &mut self,
        ids: &mut Vec<u64>,
        weights: &mut Vec<f32>,
    ) -> Result<Option<(u64, usize, usize)>> {
        ids.clear();
        weights.clear();
        self.begin_epoch();
        if self.epoch_done() {
            let report = self.report();
            self.finish_epoch(report);
            self.write_report(&report, None)?;
            return Ok(None);
        }
        let c = self.current.as_mut().expect("begin_epoch sets it");
        let k = c.delivered;
        let mut padding = 0;
        for j in 0..c.plan.batch_len(k) {
            let (id, w, pad) = c.plan.entry(k, j);
            ids.push(id);
            weights.push(w);
            padding += pad as usize;
        }
        c.delivered += 1;
        let epoch = c.plan.epoch;
        self.plan_ahead_if_done();
        Ok(Some((epoch, k, padding)))
    }

    /// This rank's whole epoch under way (made now when the last one has ended), from its batch
    /// 0: what `next_batch` hands out batch by batch. It does not move the cursor.
    pub fn epoch_plan(&mut self) -> EpochPlan {
        let plan = Arc::clone(self.begin_epoch());
        let batches = plan.batches();
        let total = plan.local_samples();
        let mut out = EpochPlan {
            epoch: plan.epoch,
            batches,
            batch_size: plan.batch_size,
            ids: Vec::with_capacity(total),
            weights: Vec::with_capacity(total),
            padding: 0,
        };
        if plan.world_size == 1 {
            // One rank: its share is a contiguous run of the global order, never padded.
            let run = plan.start..plan.start + total;
            out.ids.extend_from_slice(&plan.ids[run.clone()]);
            out.weights.extend_from_slice(&plan.weights[run]);
            return out;
        }
        for k in 0..batches {
            for j in 0..plan.batch_len(k) {
                let (id, w, pad) = plan.entry(k, j);
                out.ids.push(id);
                out.weights.push(w);
                out.padding += pad as usize;
            }
        }
        out
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
        let saved = 1.0 - self.total_samples as f64 / ((c.plan.epoch + 1) as f64 * n);
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
    /// When the next epoch's plan was made ahead (at the last batch) and `batches` is less than
    /// all, it is not stored: the resumed run hands out the rest of the epoch again and makes
    /// the next plan at its last batch (with the policy's state as saved).
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
        if batches == handed {
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
    fn make_plan(&mut self, epoch: u64) -> Current {
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
