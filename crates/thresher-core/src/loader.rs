//! The loader: a pool of worker threads that fill pooled batch buffers in plan order, a bounded
//! window of ready batches (`prefetch`), and the epoch boundaries. It knows nothing of formats
//! or policies: it asks the `Source` for samples, the `Transform` to lay them out and the
//! `Policy` (through `plan`) which ids to deliver.
//!
//! Ordering: workers claim batch indices in increasing order and may finish in any order; the
//! consumer takes batch k only when k is ready, so delivery is in plan order whatever the
//! thread count. A worker may only claim k < delivered + prefetch, which bounds memory.
//!
//! Epochs: the plan of epoch e is made at creation (e = 0) or at the first `next`/`epoch_info`
//! call after `next` reported the end of epoch e−1, from the ScoreBook at that moment. Workers
//! never run ahead across the boundary (that is what makes plans depend on feedback only).

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::batch::{Batch, BatchBuf, Pool};
use crate::checkpoint::{self, Fingerprint, SavedJob, Snapshot};
use crate::config::{Config, OnError};
use crate::error::{Error, ErrorKind, Result};
use crate::plan::{Plan, PlanOptions};
use crate::policy::{PlanContext, Policy, Selection};
use crate::scores::{Feedback, ScoreBook};
use crate::source::{self, Source};
use crate::transform::{Dtype, Out, Transform, Workspace};

/// What `epoch_info` reports: the current epoch's plan (or the next one's, made on the spot,
/// when the previous epoch has ended).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochInfo {
    pub epoch: u64,
    pub batches: u64,
    pub samples: u64,
    pub dataset_len: u64,
    /// 1 − samples / dataset_len.
    pub prune_fraction: f64,
    /// Batches of this epoch already delivered.
    pub delivered: u64,
    /// Time the consumer has spent waiting for a batch in this epoch.
    pub consumer_wait: Duration,
}

/// The epoch report (ALGORITHMS.md "What to report each epoch"): the plan's numbers and what
/// the epoch cost. Appended as one JSON line per epoch to the config's `report` file.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct EpochReport {
    pub epoch: u64,
    /// Samples kept (delivered) this epoch.
    pub samples: u64,
    pub dataset_len: u64,
    /// Realised fraction pruned this epoch: 1 − samples / N.
    pub prune_fraction: f64,
    /// Cumulative fraction of sample-visits saved against full data over epochs 0..=epoch.
    pub saved_fraction: f64,
    /// Mean loss weight of the kept samples.
    pub mean_weight: f64,
    /// Mean and standard deviation of the policy's score over seen samples (NaN/null when the
    /// policy has none).
    pub score_mean: f64,
    pub score_std: f64,
    pub batches: u64,
    pub delivered: u64,
    /// Seconds the consumer waited for batches this epoch.
    pub consumer_wait_s: f64,
    /// Seconds the workers spent filling batches this epoch (summed over workers).
    pub worker_busy_s: f64,
    /// Samples dropped this epoch under `on_error: "skip"` (counted as workers meet them, so
    /// mid-epoch it includes prefetched batches). `Loader::skipped_samples` lists them.
    pub skipped: u64,
}

/// What `Loader::digest` returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest {
    /// The epoch of the plan digested.
    pub epoch: u64,
    /// FNV-1a 64 of the epoch and the global order with its weights.
    pub plan: u64,
    /// FNV-1a 64 of the ScoreBook and the policy's state.
    pub scores: u64,
}

/// A sample dropped under `on_error: "skip"`: which, where from, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedSample {
    pub epoch: u64,
    pub id: u64,
    /// The file (or `shard.tar:member`) it comes from; `None` for in-memory sources.
    pub location: Option<String>,
    /// The error that made it skip.
    pub reason: String,
}

/// At most this many skipped samples are kept per epoch for `skipped_samples` (the count in the
/// report is exact).
const MAX_SKIP_RECORDS: usize = 1000;

/// The skipped samples of the current epoch.
#[derive(Default)]
struct SkipLog {
    epoch: u64,
    count: u64,
    samples: Vec<SkippedSample>,
}

/// What a worker reuses from sample to sample: the source's read buffers and the transform's.
#[derive(Default)]
struct WorkerScratch {
    read: source::Scratch,
    transform: Workspace,
}

pub struct Loader {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

struct Shared {
    source: Arc<dyn Source>,
    transform: Transform,
    on_error: OnError,
    skips: Mutex<SkipLog>,
    pool: Arc<Pool>,
    prefetch: usize,
    state: Mutex<State>,
    /// Workers wait here for a batch to claim.
    work: Condvar,
    /// The consumer waits here for the next batch.
    ready: Condvar,
    /// Set once, at drop; workers also check it between samples so shutdown is prompt.
    shutdown: AtomicBool,
    scores: Mutex<ScoreBook>,
    planner: Mutex<Planner>,
    /// Epoch of the most recent plan: the epoch feedback is booked under.
    current_epoch: AtomicU64,
    /// Nanoseconds workers spent in `fill` during the current epoch.
    busy_ns: AtomicU64,
    /// The `report` file, opened (append) at creation so a bad path fails early.
    report_file: Option<Mutex<std::fs::File>>,
    report_path: Option<std::path::PathBuf>,
    fingerprint: Fingerprint,
}

struct Planner {
    policy: Box<dyn Policy>,
    options: PlanOptions,
    /// Reused from epoch to epoch.
    selection: Selection,
}

struct State {
    /// `None` after `next` reported the end of `epoch`, until the next plan is made.
    job: Option<Job>,
    /// The epoch of `job`, or of the last job once it ended.
    epoch: u64,
    /// Samples planned over every epoch begun so far (for the saved fraction).
    total_samples: u64,
    /// The report of the last epoch that ended.
    last_report: Option<EpochReport>,
    /// The plan of the last epoch that ended (for `digest` between epochs).
    last_plan: Option<Arc<Plan>>,
}

struct Job {
    plan: Arc<Plan>,
    /// Next batch index a worker may claim.
    claimed: usize,
    /// Batches handed to the consumer.
    delivered: usize,
    /// Results for batches delivered.. in order; `None` while a worker is filling it.
    window: VecDeque<Option<Result<BatchBuf>>>,
    consumer_wait: Duration,
    /// The plan's part of the report, filled when the epoch begins.
    report: EpochReport,
    /// Whether the end-of-epoch report has been written.
    reported: bool,
}

impl Loader {
    /// A loader over the source named in `config.source`.
    pub fn new(config: Config) -> Result<Loader> {
        let source = match &config.source {
            Some(s) => s.open()?,
            None => {
                return Err(Error::invalid(
                    "config key `source`: missing (give {\"kind\": \"idx\", ...})",
                ))
            }
        };
        Self::with_source(config, source)
    }

    /// A loader over any `Source` (e.g. an in-memory `ArraySource`); `config.source` is ignored.
    pub fn with_source(config: Config, source: Arc<dyn Source>) -> Result<Loader> {
        config.validate()?;
        let n = source.len();
        if n == 0 {
            return Err(Error::invalid("source: the dataset is empty"));
        }
        // A variable-size source (image files) has no shape; the transform must then fix the
        // output size, and says so when it does not.
        let transform =
            Transform::new(&config.transform, source.sample_shape(), source.channels())?
                .with_seed(config.seed);
        let policy = config.policy.build(n);
        let mut scores = ScoreBook::with_options(
            n,
            policy.needs(),
            config.policy.momentum(),
            config.policy.sketch_dim(),
            config.seed,
        );
        seed_from_files(config.policy.scores_from(), &mut scores)?;
        let report_file = match &config.report {
            Some(path) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| Error::io(path, &e).context("config key `report`"))?,
            )),
            None => None,
        };
        let options = PlanOptions {
            seed: config.seed,
            shuffle: config.shuffle,
            batch_size: config.batch_size,
            drop_last: config.drop_last,
            rank: config.rank,
            world_size: config.world_size,
        };
        let shared = Arc::new(Shared {
            source,
            transform,
            on_error: config.on_error,
            skips: Mutex::new(SkipLog::default()),
            // Enough for everything in flight plus a few batches the consumer holds.
            pool: Pool::new(config.prefetch + config.workers + 4),
            prefetch: config.prefetch,
            state: Mutex::new(State {
                job: None,
                epoch: 0,
                total_samples: 0,
                last_report: None,
                last_plan: None,
            }),
            work: Condvar::new(),
            ready: Condvar::new(),
            shutdown: AtomicBool::new(false),
            scores: Mutex::new(scores),
            planner: Mutex::new(Planner {
                policy,
                options,
                selection: Selection::default(),
            }),
            current_epoch: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            report_file,
            report_path: config.report.clone(),
            fingerprint: Fingerprint {
                n: n as u64,
                seed: config.seed,
                shuffle: config.shuffle,
                drop_last: config.drop_last,
                policy: config.policy.kind().to_string(),
            },
        });
        match &config.resume_from {
            None => shared.begin_epoch(&mut shared.state.lock(), 0),
            Some(path) => shared.resume(path)?,
        }
        let mut threads = Vec::with_capacity(config.workers);
        for i in 0..config.workers {
            let s = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("thresher-worker-{i}"))
                .spawn(move || s.worker());
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    let loader = Loader { shared, threads };
                    drop(loader);
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!("could not start worker thread {i}: {e}"),
                    ));
                }
            }
        }
        Ok(Loader { shared, threads })
    }

    /// The next batch of the current epoch, in plan order; `Ok(None)` at the end of the epoch
    /// (the call after that begins the next epoch). A sample that failed to load makes this call
    /// return its error (naming the sample id); the next call continues with the following batch.
    /// Under `on_error: "skip"` the sample is left out of its batch instead (see `fill`), and a
    /// batch left with no sample is passed over.
    pub fn next(&self) -> Result<Option<Batch>> {
        let s = &*self.shared;
        let mut state = s.state.lock();
        if state.job.is_none() {
            let next = state.epoch + 1;
            s.begin_epoch(&mut state, next);
        }
        loop {
            let st = &mut *state;
            let job = st.job.as_mut().expect("begin_epoch sets the job");
            if job.delivered == job.plan.batches() {
                let report = s.report_of(job);
                st.last_report = Some(report);
                if !job.reported {
                    job.reported = true;
                    // A failed report write is returned once; the next call reports the end.
                    s.write_report(&report)?;
                }
                state.last_plan = state.job.take().map(|j| j.plan);
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
            // One more batch may now be claimed.
            s.work.notify_one();
            match result {
                // Every sample of this batch was skipped (on_error "skip"): deliver the next
                // one instead of an empty batch.
                Ok(buf) if buf.ids.is_empty() => s.pool.put(buf),
                result => {
                    drop(state);
                    let buf = result?;
                    return Ok(Some(Batch::new(
                        buf,
                        Arc::clone(&s.pool),
                        s.transform.dtype(),
                        s.transform.out_shape(),
                    )));
                }
            }
        }
    }

    /// Applies per-sample feedback to the ScoreBook; validated whole first, so a rejected call
    /// changes nothing. Callable from any thread, concurrently with `next`.
    pub fn feedback(&self, fb: &Feedback<'_>) -> Result<()> {
        let epoch = self.shared.current_epoch.load(Ordering::Acquire);
        self.shared.scores.lock().feedback(fb, epoch)
    }

    /// The current epoch's plan; when `next` has just reported the end of an epoch, the next
    /// epoch's plan is made now (so its length is known before its first batch).
    pub fn epoch_info(&self) -> EpochInfo {
        let s = &*self.shared;
        let mut state = s.state.lock();
        if state.job.is_none() {
            let next = state.epoch + 1;
            s.begin_epoch(&mut state, next);
        }
        let job = state.job.as_ref().expect("begin_epoch sets the job");
        let p = &job.plan;
        EpochInfo {
            epoch: p.epoch,
            batches: p.batches() as u64,
            samples: p.samples() as u64,
            dataset_len: p.dataset_len as u64,
            prune_fraction: p.prune_fraction(),
            delivered: job.delivered as u64,
            consumer_wait: job.consumer_wait,
        }
    }

    /// The report of the current epoch so far, or of the last one when it has just ended (this
    /// call never begins an epoch). Thread-safe.
    pub fn report(&self) -> EpochReport {
        let s = &*self.shared;
        let state = s.state.lock();
        match state.job.as_ref() {
            Some(job) => s.report_of(job),
            None => state.last_report.unwrap_or_default(),
        }
    }

    /// The samples skipped (config `on_error: "skip"`) in the current epoch, or in the one that
    /// has just ended, sorted by id: at most the first 1000 the workers met; the report's
    /// `skipped` has the exact count. Thread-safe.
    pub fn skipped_samples(&self) -> Vec<SkippedSample> {
        let mut v = self.shared.skips.lock().samples.clone();
        v.sort_by_key(|s| s.id);
        v
    }

    /// Writes the ScoreBook's scores to `path` (atomically) for `scores_from` or the CLI.
    pub fn save_scores(&self, path: &std::path::Path) -> Result<()> {
        let file = self.with_scores(crate::scorefile::ScoreFile::from_book);
        file.write(path)
    }

    /// Writes a checkpoint to `path` (atomically): continuing from it with config key
    /// `resume_from` yields exactly the batches this loader would yield next. Thread-safe.
    pub fn save_state(&self, path: &std::path::Path) -> Result<()> {
        let s = &*self.shared;
        // Lock order as in begin_epoch: state, planner, scores.
        let state = s.state.lock();
        let planner = s.planner.lock();
        let scores = s.scores.lock();
        let job = state.job.as_ref().map(|j| SavedJob {
            epoch: j.plan.epoch,
            ids: j.plan.ids.clone(),
            weights: j.plan.weights.clone(),
            position: j.plan.position_after(j.delivered) as u64,
            mean_weight: j.report.mean_weight,
            score_mean: j.report.score_mean,
            score_std: j.report.score_std,
        });
        let bytes = checkpoint::encode(&Snapshot {
            fingerprint: s.fingerprint.clone(),
            epoch: state.epoch,
            total_samples: state.total_samples,
            job,
            scores: &scores,
            policy_state: planner.policy.save_state(),
        });
        drop((scores, planner, state));
        crate::util::write_atomic(path, &bytes)
    }

    /// Digests that say whether ranks agree: the current epoch's global plan (or the last
    /// one's, between epochs; never begins an epoch) and the ScoreBook with the policy's state.
    /// Ranks fed the same feedback have equal digests whatever their rank. Thread-safe; it
    /// hashes the whole ScoreBook, so call it per epoch, not per step.
    pub fn digest(&self) -> Digest {
        let s = &*self.shared;
        let state = s.state.lock();
        let plan = state
            .job
            .as_ref()
            .map(|j| &j.plan)
            .or(state.last_plan.as_ref());
        let (epoch, plan) = plan.map_or((state.epoch, 0), |p| (p.epoch, p.digest()));
        let planner = s.planner.lock();
        let scores = s.scores.lock();
        let mut w = crate::codec::Writer::default();
        scores.encode(&mut w);
        w.u8s(&planner.policy.save_state());
        drop((scores, planner, state));
        let mut h = crate::util::Fnv::default();
        h.write(&w.buf);
        Digest {
            epoch,
            plan,
            scores: h.0,
        }
    }

    /// Number of samples in the dataset.
    pub fn dataset_len(&self) -> usize {
        self.shared.source.len()
    }

    /// Runs `f` with the ScoreBook locked (for inspection and tests).
    pub fn with_scores<R>(&self, f: impl FnOnce(&ScoreBook) -> R) -> R {
        f(&self.shared.scores.lock())
    }
}

impl Drop for Loader {
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

impl Shared {
    /// Makes the plan of `epoch` from the ScoreBook as it stands and publishes it to workers.
    fn begin_epoch(&self, state: &mut State, epoch: u64) {
        let mut report;
        let mut planner = self.planner.lock();
        let planner = &mut *planner;
        // The last plan's arrays, when no worker holds it any more, become this selection's:
        // reusing them spares page-faulting ~12 bytes per kept id every epoch (the digest
        // between epochs has had its chance to read the last plan).
        if let Some(Ok(last)) = state.last_plan.take().map(Arc::try_unwrap) {
            if planner.selection.ids.capacity() < last.ids.capacity() {
                planner.selection.ids = last.ids;
                planner.selection.weights = last.weights;
            }
        }
        planner.selection.clear();
        let plan = {
            let mut scores = self.scores.lock();
            let ctx = PlanContext {
                epoch,
                seed: planner.options.seed,
                scores: &scores,
            };
            planner.policy.select(&ctx, &mut planner.selection);
            scores.mark_kept(&planner.selection.ids);
            let sel = &planner.selection;
            let weight_sum: f64 = sel.weights.iter().map(|&w| w as f64).sum();
            report = EpochReport {
                epoch,
                samples: sel.len() as u64,
                dataset_len: scores.len() as u64,
                mean_weight: if sel.is_empty() {
                    f64::NAN
                } else {
                    weight_sum / sel.len() as f64
                },
                score_mean: sel.score_mean,
                score_std: sel.score_std,
                ..EpochReport::default()
            };
            // The selection's buffers move into the plan: one allocation per epoch, none per
            // batch.
            let sel = std::mem::take(&mut planner.selection);
            Plan::new(epoch, sel, &planner.options, scores.len())
        };
        self.current_epoch.store(epoch, Ordering::Release);
        self.busy_ns.store(0, Ordering::Relaxed);
        // No worker is filling a batch now (the last epoch's batches were all delivered).
        *self.skips.lock() = SkipLog {
            epoch,
            ..SkipLog::default()
        };
        state.epoch = epoch;
        // Samples after drop_last; the saved fraction counts what is actually delivered.
        state.total_samples += plan.samples() as u64;
        let n = plan.dataset_len as f64;
        report.samples = plan.samples() as u64;
        report.batches = plan.batches() as u64;
        report.prune_fraction = plan.prune_fraction();
        report.saved_fraction = 1.0 - state.total_samples as f64 / ((epoch + 1) as f64 * n);
        state.job = Some(Job {
            plan: Arc::new(plan),
            claimed: 0,
            delivered: 0,
            window: VecDeque::with_capacity(self.prefetch),
            consumer_wait: Duration::ZERO,
            report,
            reported: false,
        });
        self.work.notify_all();
    }

    fn worker(&self) {
        let mut scratch = WorkerScratch::default();
        loop {
            let (plan, k) = {
                let mut state = self.state.lock();
                loop {
                    if self.shutdown.load(Ordering::Acquire) {
                        return;
                    }
                    if let Some(job) = state.job.as_mut() {
                        let limit = job.plan.batches().min(job.delivered + self.prefetch);
                        if job.claimed < limit {
                            let k = job.claimed;
                            job.claimed += 1;
                            job.window.push_back(None);
                            break (Arc::clone(&job.plan), k);
                        }
                    }
                    self.work.wait(&mut state);
                }
            };
            let mut buf = self.pool.take();
            let started = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(|| {
                self.fill(&plan, k, &mut buf, &mut scratch)
            }))
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(Error::new(
                    ErrorKind::Panic,
                    format!(
                        "worker panicked filling batch {k} of epoch {}: {what}",
                        plan.epoch
                    ),
                ))
            });
            self.busy_ns
                .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            let result = match result {
                Ok(()) => Ok(buf),
                Err(e) => {
                    self.pool.put(buf);
                    Err(e)
                }
            };
            let mut state = self.state.lock();
            if let Some(job) = state.job.as_mut() {
                if job.plan.epoch == plan.epoch && k >= job.delivered {
                    job.window[k - job.delivered] = Some(result);
                    self.ready.notify_one();
                }
            }
        }
    }

    /// Replaces the fresh state with a checkpoint's (before any worker has work).
    fn resume(&self, path: &std::path::Path) -> Result<()> {
        let mut state = self.state.lock();
        let mut planner = self.planner.lock();
        let mut scores = self.scores.lock();
        let r = checkpoint::restore(path, &self.fingerprint, &mut scores)?;
        if !planner.policy.load_state(&r.policy_state) {
            return Err(Error::format(format!(
                "{}: not a usable checkpoint: the policy state does not fit policy `{}`",
                path.display(),
                self.fingerprint.policy
            )));
        }
        state.epoch = r.epoch;
        state.total_samples = r.total_samples;
        *self.skips.lock() = SkipLog {
            epoch: r.epoch,
            ..SkipLog::default()
        };
        self.current_epoch.store(r.epoch, Ordering::Release);
        let options = planner.options;
        state.job = r.job.map(|j| {
            let (plan, delivered) = resume_layout(
                j.epoch,
                j.ids,
                j.weights,
                j.position,
                &options,
                self.source.len(),
            );
            let report = EpochReport {
                epoch: plan.epoch,
                samples: plan.samples() as u64,
                dataset_len: plan.dataset_len as u64,
                prune_fraction: plan.prune_fraction(),
                saved_fraction: 1.0
                    - r.total_samples as f64 / ((plan.epoch + 1) as f64 * plan.dataset_len as f64),
                mean_weight: j.mean_weight,
                score_mean: j.score_mean,
                score_std: j.score_std,
                batches: plan.batches() as u64,
                ..EpochReport::default()
            };
            Job {
                plan: Arc::new(plan),
                claimed: delivered,
                delivered,
                window: VecDeque::with_capacity(self.prefetch),
                consumer_wait: Duration::ZERO,
                report,
                reported: false,
            }
        });
        self.work.notify_all();
        Ok(())
    }

    fn report_of(&self, job: &Job) -> EpochReport {
        let skips = self.skips.lock();
        EpochReport {
            skipped: if skips.epoch == job.plan.epoch {
                skips.count
            } else {
                0
            },
            delivered: job.delivered as u64,
            consumer_wait_s: job.consumer_wait.as_secs_f64(),
            worker_busy_s: self.busy_ns.load(Ordering::Relaxed) as f64 * 1e-9,
            ..job.report
        }
    }

    fn write_report(&self, report: &EpochReport) -> Result<()> {
        use std::io::Write;
        if let (Some(file), Some(path)) = (&self.report_file, &self.report_path) {
            let mut value = serde_json::to_value(report).expect("a report serialises");
            // The skipped samples (on_error "skip") go into the line too, id and file each.
            let skips = self.skips.lock();
            if skips.epoch == report.epoch && !skips.samples.is_empty() {
                let mut list = skips.samples.clone();
                list.sort_by_key(|s| s.id);
                value["skipped_samples"] = list
                    .iter()
                    .map(|s| serde_json::json!({"id": s.id, "location": s.location, "reason": s.reason}))
                    .collect();
            }
            drop(skips);
            let mut line = value.to_string();
            line.push('\n');
            file.lock()
                .write_all(line.as_bytes())
                .map_err(|e| Error::io(path, &e))?;
        }
        Ok(())
    }

    /// Reads and transforms the samples of batch `k` into `buf`. Under `on_error: "skip"` a
    /// sample that fails is left out and the batch is that much shorter: it is not refilled
    /// from later in the plan, which would change every later batch's composition (and make
    /// batches depend on which samples failed). A batch left empty is passed over by `next`.
    fn fill(
        &self,
        plan: &Plan,
        k: usize,
        buf: &mut BatchBuf,
        scratch: &mut WorkerScratch,
    ) -> Result<()> {
        let len = plan.batch_len(k);
        buf.epoch = plan.epoch;
        buf.index = k;
        buf.padding = 0;
        buf.ids.clear();
        buf.weights.clear();
        buf.labels.clear();
        let per = self.transform.sample_bytes();
        buf.data.set_len(per * len);
        for j in 0..len {
            let (id, weight, padding) = plan.entry(k, j);
            if self.shutdown.load(Ordering::Relaxed) {
                return Err(Error::state("the loader is shutting down"));
            }
            let slot = buf.ids.len();
            // A panic in a decoder is this sample's error, not the whole batch's.
            let loaded = catch_unwind(AssertUnwindSafe(|| {
                self.load(plan.epoch, id, slot, per, buf, scratch)
            }))
            .unwrap_or_else(|panic| {
                Err(Error::new(
                    ErrorKind::Panic,
                    format!("panicked: {}", crate::util::panic_text(&*panic)),
                ))
            });
            match loaded {
                Ok(()) => {
                    buf.padding += padding as usize;
                    buf.ids.push(id);
                    buf.weights.push(weight);
                    buf.labels.push(self.source.label(id as usize));
                }
                Err(e) if self.on_error == OnError::Skip => {
                    let mut log = self.skips.lock();
                    if log.epoch == plan.epoch {
                        log.count += 1;
                        if log.samples.len() < MAX_SKIP_RECORDS {
                            log.samples.push(SkippedSample {
                                epoch: plan.epoch,
                                id,
                                location: self.source.location(id as usize),
                                reason: e.message().to_string(),
                            });
                        }
                    }
                }
                Err(e) => {
                    let location = self.source.location(id as usize);
                    return Err(match location {
                        // Source errors name their file already; transform errors do not.
                        Some(loc) if !e.message().contains(loc.as_str()) => {
                            e.context(format!("sample {id} ({loc})"))
                        }
                        _ => e.context(format!("sample {id}")),
                    });
                }
            }
        }
        buf.data.set_len(per * buf.ids.len());
        Ok(())
    }

    /// Reads sample `id` and writes it, transformed, into slot `slot` of `buf`.
    fn load(
        &self,
        epoch: u64,
        id: u64,
        slot: usize,
        per: usize,
        buf: &mut BatchBuf,
        scratch: &mut WorkerScratch,
    ) -> Result<()> {
        let view = self.source.read(id as usize, &mut scratch.read)?;
        let out = match self.transform.dtype() {
            Dtype::U8 => Out::U8(&mut buf.data.as_bytes_mut()[slot * per..(slot + 1) * per]),
            Dtype::F32 => {
                let n = per / 4;
                Out::F32(&mut buf.data.as_f32_mut()[slot * n..(slot + 1) * n])
            }
        };
        self.transform
            .apply(&view, epoch, id, &mut scratch.transform, out)
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

/// Seeds the ScoreBook with the average of the score files (`scores_from`).
fn seed_from_files(paths: &[std::path::PathBuf], scores: &mut ScoreBook) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let files = paths
        .iter()
        .map(|p| crate::scorefile::ScoreFile::read(p).map(|f| (p.clone(), f)))
        .collect::<Result<Vec<_>>>()
        .map_err(|e| e.context("config key `policy.scores_from`"))?;
    let merged = crate::scorefile::ScoreFile::merge(&files)
        .map_err(|e| e.context("config key `policy.scores_from`"))?;
    merged.seed_book(&paths[0], scores)
}
