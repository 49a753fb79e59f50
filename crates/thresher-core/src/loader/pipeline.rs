//! The loading engine behind `Loader` for sources with data: a Planner plus the data path — a
//! source, a transform, worker threads that fill pooled batch buffers in plan order, and a
//! bounded window of ready batches (`prefetch`). It knows nothing of formats or policies: the
//! `Source` reads samples, the `Transform` lays them out, and the `Planner` decides which ids
//! each epoch delivers, takes the feedback, reports, digests and checkpoints.
//!
//! Ordering: workers claim batch indices in increasing order and may finish in any order; the
//! consumer takes batch k only when k is ready, so delivery is in plan order whatever the
//! thread count. A worker may only claim k < delivered + prefetch, which bounds memory.
//!
//! Epochs: the Planner makes the plan of epoch e at creation (e = 0) or at the first
//! `next`/`epoch_info` call after `next` reported the end of epoch e−1, from the ScoreBook at
//! that moment. Workers never run ahead across the boundary (that is what makes plans depend on
//! feedback only).
//!
//! Locks: `state` (the window, shared with the workers) before `planner` (the pruning core,
//! shared with `feedback`), never the other way round.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::skips::{SkipLog, SkippedSample};
use crate::batch::{Batch, BatchBuf, Pool};
use crate::config::{Config, OnError};
use crate::error::{Error, ErrorKind, Result};
use crate::plan::Plan;
use crate::planner::{EpochInfo, EpochReport, Planner};
use crate::source::SampleSpec;
use crate::source::Source;
use crate::transform::{Transform, TransformConfig};

pub(super) struct Pipeline {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

pub(super) struct Shared {
    pub(super) source: Arc<dyn Source>,
    pub(super) path: DataPath,
    pub(super) on_error: OnError,
    pub(super) skips: Mutex<SkipLog>,
    pub(super) pool: Arc<Pool>,
    pub(super) prefetch: usize,
    pub(super) state: Mutex<State>,
    /// Workers wait here for a batch to claim.
    pub(super) work: Condvar,
    /// The consumer waits here for the next batch.
    pub(super) ready: Condvar,
    /// Set once, at drop; workers also check it between samples so shutdown is prompt.
    pub(super) shutdown: AtomicBool,
    pub(super) planner: Mutex<Planner>,
    /// Nanoseconds workers spent in `fill` during the current epoch.
    pub(super) busy_ns: AtomicU64,
}

/// How workers turn a source's sample into batch memory.
pub(super) enum DataPath {
    /// Images through the transform, with the source's typed targets when it has any.
    Image(Transform, Option<crate::source::TensorSpec>),
    /// Typed tensors copied as they are (npy and tokens sources without a `transform`).
    Tensors(SampleSpec),
}

impl DataPath {
    /// The tensor path when the source has tensors and the config no `transform` section;
    /// otherwise the image path, which needs a source of images (the error names the key).
    fn new(config: &Config, source: &dyn Source) -> Result<DataPath> {
        match (&config.transform, source.tensors()) {
            (None, Some(spec)) => Ok(DataPath::Tensors(spec.clone())),
            (t, spec) => {
                let is_image = source.sample_shape().is_some() || source.channels() > 0;
                if let (Some(spec), false) = (spec, is_image) {
                    return Err(Error::invalid(format!(
                        "config key `transform`: the samples are {} [{}], not images (u8 \
                         [H, W] or [H, W, C]); remove `transform` to receive them as they are",
                        spec.data.dtype,
                        spec.data
                            .shape
                            .iter()
                            .map(|d| d.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                let default = TransformConfig::default();
                let t = t.as_ref().unwrap_or(&default);
                // A variable-size source (image files) has no shape; the transform must then
                // fix the output size, and says so when it does not.
                Ok(DataPath::Image(
                    Transform::new(t, source.sample_shape(), source.channels())?
                        .with_seed(config.seed),
                    source.image_targets().cloned(),
                ))
            }
        }
    }
}

pub(super) struct State {
    /// The epoch being loaded; `None` after `next` reported the end of an epoch, until the
    /// Planner makes the next plan.
    pub(super) job: Option<Job>,
}

/// The loading side of the epoch under way.
pub(super) struct Job {
    pub(super) plan: Arc<Plan>,
    /// Next batch index a worker may claim.
    pub(super) claimed: usize,
    /// Batches handed to the consumer: the index of the window's front. Mirrors the Planner's
    /// count, which `next` advances under both locks.
    pub(super) delivered: usize,
    /// Results for batches delivered.. in order; `None` while a worker is filling it.
    pub(super) window: VecDeque<Option<Result<BatchBuf>>>,
    pub(super) consumer_wait: Duration,
    /// Whether the end-of-epoch report has been written.
    pub(super) reported: bool,
}

impl Pipeline {
    /// The engine over `source`; `config` is validated and its `source` key ignored.
    pub(super) fn new(config: &Config, source: Arc<dyn Source>) -> Result<Pipeline> {
        if source.is_empty() {
            return Err(Error::invalid("source: the dataset is empty"));
        }
        let path = DataPath::new(config, &*source)?;
        let planner = Planner::new(config, source.len())?;
        let job = planner
            .plan()
            .map(|plan| Job::new(plan, planner.delivered()));
        let shared = Arc::new(Shared {
            source,
            path,
            on_error: config.on_error,
            skips: Mutex::new(SkipLog::for_epoch(planner.epoch())),
            // Enough for everything in flight plus a few batches the consumer holds.
            pool: Pool::new(config.prefetch + config.workers + 4),
            prefetch: config.prefetch,
            state: Mutex::new(State { job }),
            work: Condvar::new(),
            ready: Condvar::new(),
            shutdown: AtomicBool::new(false),
            planner: Mutex::new(planner),
            busy_ns: AtomicU64::new(0),
        });
        let mut threads = Vec::with_capacity(config.workers);
        for i in 0..config.workers {
            let s = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("thresher-worker-{i}"))
                .spawn(move || s.worker());
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    drop(Pipeline { shared, threads });
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!("could not start worker thread {i}: {e}"),
                    ));
                }
            }
        }
        Ok(Pipeline { shared, threads })
    }

    /// The next batch of the current epoch, in plan order; `Ok(None)` at the end of the epoch
    /// (the call after that begins the next epoch). A sample that failed to load makes this call
    /// return its error (naming the sample id); the next call continues with the following batch.
    /// Under `on_error: "skip"` the sample is left out of its batch instead (see `fill`), and a
    /// batch left with no sample is passed over.
    pub(super) fn next(&self) -> Result<Option<Batch>> {
        let s = &*self.shared;
        let mut state = s.state.lock();
        if state.job.is_none() {
            s.begin_epoch(&mut state);
        }
        loop {
            let job = state.job.as_mut().expect("begin_epoch sets the job");
            if job.delivered == job.plan.batches() {
                // A failed report write is returned once (the job stays); the next call
                // reports the end.
                s.close_epoch(job, &mut s.planner.lock())?;
                state.job = None;
                return Ok(None);
            }
            let start = Instant::now();
            let mut waited = false;
            while !matches!(
                state.job.as_ref().and_then(|j| j.window.front()),
                Some(Some(_))
            ) {
                waited = true;
                s.ready.wait(&mut state);
            }
            let job = state.job.as_mut().expect("the job outlives the wait");
            if waited {
                job.consumer_wait += start.elapsed();
            }
            let result = job.window.pop_front().flatten().expect("checked above");
            job.delivered += 1;
            s.planner.lock().advance();
            // One more batch may now be claimed.
            s.work.notify_one();
            match result {
                // Every sample of this batch was skipped (on_error "skip"): deliver the next
                // one instead of an empty batch.
                Ok(buf) if buf.ids.is_empty() => s.pool.put(buf),
                result => {
                    drop(state);
                    let buf = result?;
                    return Ok(Some(Batch::new(buf, Arc::clone(&s.pool))));
                }
            }
        }
    }

    /// The current epoch's plan; when `next` has just reported the end of an epoch, the next
    /// epoch's plan is made now (so its length is known before its first batch).
    pub(super) fn epoch_info(&self) -> EpochInfo {
        let s = &*self.shared;
        let mut state = s.state.lock();
        if state.job.is_none() {
            s.begin_epoch(&mut state);
        }
        let job = state.job.as_ref().expect("begin_epoch sets the job");
        EpochInfo {
            consumer_wait: job.consumer_wait,
            ..s.planner.lock().epoch_info()
        }
    }

    /// The report of the current epoch so far, or of the last one when it has just ended (this
    /// call never begins an epoch). Thread-safe.
    pub(super) fn report(&self) -> EpochReport {
        let s = &*self.shared;
        let state = s.state.lock();
        let planner = s.planner.lock();
        match state.job.as_ref() {
            Some(job) => s.report_of(job, &planner),
            None => planner.report(),
        }
    }

    /// The samples skipped (config `on_error: "skip"`) in the current epoch, or in the one that
    /// has just ended, sorted by id: at most the first 1000 the workers met; the report's
    /// `skipped` has the exact count. Thread-safe.
    pub(super) fn skipped_samples(&self) -> Vec<SkippedSample> {
        self.shared.skips.lock().sorted()
    }

    /// The Planner (feedback, checkpoints, digests and score files need nothing else).
    pub(super) fn planner(&self) -> &Mutex<Planner> {
        &self.shared.planner
    }

    /// Ends the epoch under way now (see `Loader::end_epoch`): the batches still in the
    /// window go back to the pool, workers filling the old plan have their results dropped.
    pub(super) fn end_epoch(&self) -> Result<()> {
        let s = &*self.shared;
        let mut state = s.state.lock();
        let Some(job) = state.job.as_mut() else {
            return Ok(());
        };
        let mut planner = s.planner.lock();
        // Only an epoch still under way in the Planner has a rest to abandon (a retried call
        // after a failed report write must not count it twice).
        let _ = planner.abandon_rest();
        let written = s.close_epoch(job, &mut planner);
        for buf in job.window.drain(..).flatten().flatten() {
            s.pool.put(buf);
        }
        // Ended either way, as the header says; a failed report write is returned.
        state.job = None;
        written
    }

    /// This rank's whole epoch under way (begun now when the last one has ended).
    pub(super) fn epoch_plan(&self) -> crate::planner::EpochPlan {
        let s = &*self.shared;
        let mut state = s.state.lock();
        if state.job.is_none() {
            s.begin_epoch(&mut state);
        }
        s.planner.lock().epoch_plan()
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        {
            // Taking the lock orders the flag before any worker's next check-then-wait.
            let _state = self.shared.state.lock();
            self.shared.work.notify_all();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Job {
    fn new(plan: &Arc<Plan>, delivered: usize) -> Job {
        Job {
            plan: Arc::clone(plan),
            claimed: delivered,
            delivered,
            window: VecDeque::new(),
            consumer_wait: Duration::ZERO,
            reported: false,
        }
    }
}

impl Shared {
    /// Has the Planner make the next epoch's plan and publishes it to the workers.
    fn begin_epoch(&self, state: &mut State) {
        let mut planner = self.planner.lock();
        let plan = Arc::clone(planner.begin_epoch());
        self.busy_ns.store(0, Ordering::Relaxed);
        // No worker is filling a batch now (the last epoch's batches were all delivered).
        *self.skips.lock() = SkipLog::for_epoch(plan.epoch);
        let mut job = Job::new(&plan, 0);
        job.window.reserve(self.prefetch);
        state.job = Some(job);
        self.work.notify_all();
    }

    /// Closes the epoch of `job` in the Planner (a no-op when it is closed already) and writes
    /// its report line once, whether it ended at its last batch or early.
    fn close_epoch(&self, job: &mut Job, planner: &mut Planner) -> Result<()> {
        let report = self.report_of(job, planner);
        planner.finish_epoch(report);
        if job.reported {
            return Ok(());
        }
        job.reported = true;
        let extra = self.skips.lock().report_value(report.epoch);
        planner.write_report(&report, extra.map(|v| ("skipped_samples", v)))
    }

    /// The Planner's report of the epoch under way with what loading it cost.
    fn report_of(&self, job: &Job, planner: &Planner) -> EpochReport {
        EpochReport {
            skipped: self.skips.lock().count(job.plan.epoch),
            consumer_wait_s: job.consumer_wait.as_secs_f64(),
            worker_busy_s: self.busy_ns.load(Ordering::Relaxed) as f64 * 1e-9,
            ..planner.report()
        }
    }
}
