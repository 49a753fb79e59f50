//! The Loader: what a trainer holds. It is a Planner plus one of two engines:
//!
//! - `pipeline`: thresher loads — a source, a transform and worker threads that fill pooled
//!   batches in plan order (`workers.rs`, with the skip log of `on_error: "skip"` in
//!   `skips.rs`; what a sample becomes in a batch and the memory check in `data_path.rs`; the
//!   dataset fingerprint a checkpoint records in `fingerprint.rs`);
//! - `index`: the user's pipeline loads — source `{"kind": "index", "len": N}`, no threads, and
//!   batches of ids, loss weights and padding only.
//!
//! Every pruning question (plans, feedback, reports, digests, checkpoints, score files) is the
//! Planner's, asked the same way for both engines.

mod data_path;
mod fingerprint;
mod inbox;
mod index;
mod pipeline;
mod readahead;
mod skips;
mod workers;

pub use skips::SkippedSample;

use std::mem::ManuallyDrop;
use std::path::Path;
use std::sync::Arc;

use parking_lot::MutexGuard;

use crate::batch::Batch;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::planner::{Digest, EpochInfo, EpochPlan, EpochReport, Planner};
use crate::scores::{Feedback, ScoreBook};
use crate::source::{Source, SourceConfig};
use index::IndexEngine;
use pipeline::Pipeline;

pub struct Loader {
    /// Dropped by hand (see `Drop`): never in a process forked from the one that made it.
    engine: ManuallyDrop<Engine>,
    /// The process that made the loader. A child made by fork() inherits the memory but not
    /// the worker threads, and any lock a worker held at the fork stays locked for good, so
    /// the child must not use the loader, nor stop its threads (joining one that does not
    /// exist in the child would wait forever).
    pid: u32,
}

enum Engine {
    Pipeline(Pipeline),
    // Boxed: the Planner is large and the pipeline variant is two pointers.
    Index(Box<IndexEngine>),
}

impl Loader {
    /// A loader over the source named in `config.source`; in index mode for
    /// `{"kind": "index", "len": N}`.
    pub fn new(config: Config) -> Result<Loader> {
        config.validate()?;
        let engine = match &config.source {
            Some(SourceConfig::Index(c)) => Engine::Index(Box::new(IndexEngine::new(
                Planner::new(&config, c.checked_len()?)?,
            ))),
            Some(s) => Engine::Pipeline(Pipeline::new(&config, s.open()?)?),
            None => {
                return Err(Error::invalid(
                    "config key `source`: missing (give {\"kind\": \"idx\", ...}, or \
                     {\"kind\": \"index\", \"len\": N} for your own pipeline)",
                ))
            }
        };
        Ok(Loader::of(engine))
    }

    fn of(engine: Engine) -> Loader {
        Loader {
            engine: ManuallyDrop::new(engine),
            pid: std::process::id(),
        }
    }

    /// An error (STATE) when called in another process than the one that made the loader: a
    /// child made by fork() cannot use its parent's loader (its workers did not survive the
    /// fork, and locks held at the fork are held for good). Every call of the C ABI checks it.
    pub fn check_process(&self) -> Result<()> {
        let here = std::process::id();
        if here == self.pid {
            return Ok(());
        }
        Err(Error::state(format!(
            "this loader was created in process {} and cannot be used in process {here}, a \
             child made by fork(): its worker threads and locks did not survive the fork; \
             create a new loader in the child",
            self.pid
        )))
    }

    /// A loader over any `Source` (e.g. an in-memory `ArraySource`); `config.source` is ignored.
    pub fn with_source(config: Config, source: Arc<dyn Source>) -> Result<Loader> {
        config.validate()?;
        Ok(Loader::of(Engine::Pipeline(Pipeline::new(
            &config, source,
        )?)))
    }

    /// Whether this loader runs in index mode: batches without data or labels.
    pub fn is_index(&self) -> bool {
        matches!(*self.engine, Engine::Index(_))
    }

    /// The Planner, ready for use (a loader with workers first makes a pending plan ahead).
    fn planner(&self) -> MutexGuard<'_, Planner> {
        match &*self.engine {
            Engine::Pipeline(p) => p.planner(),
            Engine::Index(i) => i.planner().lock(),
        }
    }

    /// The next batch of the current epoch, in plan order; `Ok(None)` at the end of the epoch
    /// (the call after that begins the next epoch). A sample that failed to load makes this call
    /// return its error (naming the sample id); the next call continues with the following batch.
    /// Under `on_error: "skip"` the sample is left out of its batch instead, and a batch left
    /// with no sample is passed over. In index mode the batch has ids, weights and padding only.
    pub fn next(&self) -> Result<Option<Batch>> {
        match &*self.engine {
            Engine::Pipeline(p) => p.next(),
            Engine::Index(i) => i.next(),
        }
    }

    /// Applies per-sample feedback to the ScoreBook; validated whole first, so a rejected call
    /// changes nothing. Callable from any thread, concurrently with `next`.
    pub fn feedback(&self, fb: &Feedback<'_>) -> Result<()> {
        match &*self.engine {
            Engine::Pipeline(p) => p.feedback(fb),
            Engine::Index(i) => i.planner().lock().feedback(fb),
        }
    }

    /// The current epoch's plan; when `next` has just reported the end of an epoch, the next
    /// epoch's (so its length is known before its first batch): made when the last batch was
    /// handed out (`plan_ahead`), or made now.
    pub fn epoch_info(&self) -> EpochInfo {
        match &*self.engine {
            Engine::Pipeline(p) => p.epoch_info(),
            Engine::Index(i) => i.planner().lock().epoch_info(),
        }
    }

    /// This rank's whole epoch under way in one piece (made now when the last one has ended):
    /// for readers that schedule their own reads. It does not move the position: `next` still
    /// hands out the same batches, and `end_epoch` closes the epoch when the reader is done.
    pub fn epoch_plan(&self) -> EpochPlan {
        match &*self.engine {
            Engine::Pipeline(p) => p.epoch_plan(),
            Engine::Index(i) => i.planner().lock().epoch_plan(),
        }
    }

    /// Index mode: counts `batches` more batches of the epoch under way as handed out, for a
    /// reader that consumed them from `epoch_plan` (see `Planner::advance_by`); `next` then
    /// continues after them and reports the end when none is left. A loader with data refuses
    /// it (its batches are filled by workers and taken with `next`).
    pub fn advance(&self, batches: usize) -> Result<()> {
        match &*self.engine {
            Engine::Pipeline(_) => Err(Error::state(
                "advance: only a loader in index mode (source kind `index`) can skip ahead; \
                 take batches with next",
            )),
            Engine::Index(i) => i.planner().lock().advance_by(batches),
        }
    }

    /// Ends the epoch under way now, as if `next` had reached its end: its report is written,
    /// the batches it has not handed out are abandoned (not visited: they count as saved in the
    /// report, and no feedback is expected for them), feedback already booked stays, and the
    /// next `next` begins the next epoch. A no-op between epochs. Thread-safe.
    pub fn end_epoch(&self) -> Result<()> {
        match &*self.engine {
            Engine::Pipeline(p) => p.end_epoch(),
            Engine::Index(i) => i.end_epoch(),
        }
    }

    /// The report of the current epoch so far, or of the last one when it has just ended (this
    /// call never begins an epoch). Thread-safe.
    pub fn report(&self) -> EpochReport {
        match &*self.engine {
            Engine::Pipeline(p) => p.report(),
            Engine::Index(i) => i.planner().lock().report(),
        }
    }

    /// The samples skipped (config `on_error: "skip"`) in the current epoch, or in the one that
    /// has just ended, sorted by id: at most the first 1000 the workers met; the report's
    /// `skipped` has the exact count. Always empty in index mode. Thread-safe.
    pub fn skipped_samples(&self) -> Vec<SkippedSample> {
        match &*self.engine {
            Engine::Pipeline(p) => p.skipped_samples(),
            Engine::Index(_) => Vec::new(),
        }
    }

    /// Writes the ScoreBook's scores to `path` (atomically) for `scores_from` or the CLI.
    pub fn save_scores(&self, path: &Path) -> Result<()> {
        self.planner().save_scores(path)
    }

    /// Writes a checkpoint to `path` (atomically): continuing from it with config key
    /// `resume_from` yields exactly the batches this loader would yield next. Thread-safe.
    pub fn save_state(&self, path: &Path) -> Result<()> {
        self.planner().save_state(path)
    }

    /// Writes a checkpoint as if only the first `batches` batches of the latest epoch had been
    /// handed out (see `Planner::save_state_at`): for consumers that fetch ahead of the trainer.
    pub fn save_state_at(&self, path: &Path, batches: usize) -> Result<()> {
        self.planner().save_state_at(path, batches)
    }

    /// Digests that say whether ranks agree (see `Planner::digest`). Thread-safe; it hashes the
    /// whole ScoreBook, so call it per epoch, not per step.
    pub fn digest(&self) -> Digest {
        self.planner().digest()
    }

    /// The run's total batches on this rank, known before training (see
    /// `Planner::total_batches`): exact under a `budget`, and for `full` and `random` with
    /// `epochs`; an error otherwise.
    pub fn total_batches(&self) -> Result<u64> {
        self.planner().total_batches()
    }

    /// Number of samples in the dataset.
    pub fn dataset_len(&self) -> usize {
        self.planner().dataset_len()
    }

    /// Runs `f` with the ScoreBook locked (for inspection and tests).
    pub fn with_scores<R>(&self, f: impl FnOnce(&ScoreBook) -> R) -> R {
        f(self.planner().scores())
    }
}

impl Drop for Loader {
    /// Stops the workers (see `Pipeline`'s drop: within a bounded time) and frees everything.
    /// In a child made by fork() nothing is stopped or freed: the child's copy is left as it is
    /// (joining threads that do not exist there would wait forever).
    fn drop(&mut self) {
        if std::process::id() == self.pid {
            // SAFETY: dropped once, here; the field is not used afterwards.
            unsafe { ManuallyDrop::drop(&mut self.engine) };
        }
    }
}
