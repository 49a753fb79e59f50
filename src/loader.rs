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
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::plan::{Plan, PlanOptions};
use crate::policy::{PlanContext, Policy, Selection};
use crate::scores::{Feedback, ScoreBook};
use crate::source::Source;
use crate::transform::{Dtype, Out, Transform};

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

pub struct Loader {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

struct Shared {
    source: Arc<dyn Source>,
    transform: Transform,
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
        let shape = source.sample_shape().ok_or_else(|| {
            Error::invalid("source: samples vary in size; the transform must fix the output size")
        })?;
        let transform = Transform::new(&config.transform, shape)?;
        let policy = config.policy.build(n);
        let scores = ScoreBook::new(n, policy.needs());
        let options = PlanOptions {
            seed: config.seed,
            shuffle: config.shuffle,
            batch_size: config.batch_size,
            drop_last: config.drop_last,
        };
        let shared = Arc::new(Shared {
            source,
            transform,
            // Enough for everything in flight plus a few batches the consumer holds.
            pool: Pool::new(config.prefetch + config.workers + 4),
            prefetch: config.prefetch,
            state: Mutex::new(State {
                job: None,
                epoch: 0,
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
        });
        shared.begin_epoch(&mut shared.state.lock(), 0);
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
    pub fn next(&self) -> Result<Option<Batch>> {
        let s = &*self.shared;
        let mut state = s.state.lock();
        if state.job.is_none() {
            let next = state.epoch + 1;
            s.begin_epoch(&mut state, next);
        }
        let job = state.job.as_mut().expect("begin_epoch sets the job");
        if job.delivered == job.plan.batches() {
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
        drop(state);
        // One more batch may now be claimed.
        s.work.notify_one();
        let buf = result?;
        Ok(Some(Batch::new(
            buf,
            Arc::clone(&s.pool),
            s.transform.dtype(),
            s.transform.out_shape(),
        )))
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
        let mut planner = self.planner.lock();
        let planner = &mut *planner;
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
            // The selection's buffers move into the plan: one allocation per epoch, none per
            // batch.
            let sel = std::mem::take(&mut planner.selection);
            Plan::new(epoch, sel, &planner.options, scores.len())
        };
        self.current_epoch.store(epoch, Ordering::Release);
        state.epoch = epoch;
        state.job = Some(Job {
            plan: Arc::new(plan),
            claimed: 0,
            delivered: 0,
            window: VecDeque::with_capacity(self.prefetch),
            consumer_wait: Duration::ZERO,
        });
        self.work.notify_all();
    }

    fn worker(&self) {
        let mut scratch = Vec::new();
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

    /// Reads and transforms the samples of batch `k` into `buf`.
    fn fill(&self, plan: &Plan, k: usize, buf: &mut BatchBuf, scratch: &mut Vec<u8>) -> Result<()> {
        let range = plan.batch_range(k);
        buf.epoch = plan.epoch;
        buf.index = k;
        buf.ids.clear();
        buf.ids.extend_from_slice(&plan.ids[range.clone()]);
        buf.weights.clear();
        buf.weights.extend_from_slice(&plan.weights[range]);
        buf.labels.clear();
        let per = self.transform.sample_bytes();
        buf.data.set_len(per * buf.ids.len());
        let dtype = self.transform.dtype();
        for (j, &id) in buf.ids.iter().enumerate() {
            if self.shutdown.load(Ordering::Relaxed) {
                return Err(Error::state("the loader is shutting down"));
            }
            let id_us = id as usize;
            let view = self
                .source
                .read(id_us, scratch)
                .map_err(|e| e.context(format!("sample {id}")))?;
            buf.labels.push(self.source.label(id_us));
            let out = match dtype {
                Dtype::U8 => Out::U8(&mut buf.data.as_bytes_mut()[j * per..(j + 1) * per]),
                Dtype::F32 => {
                    let n = per / 4;
                    Out::F32(&mut buf.data.as_f32_mut()[j * n..(j + 1) * n])
                }
            };
            self.transform
                .apply(&view, out)
                .map_err(|e| e.context(format!("sample {id}")))?;
        }
        Ok(())
    }
}
