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
//! Epochs: the Planner decides when each plan is made (see `planner`): with `plan_ahead` k,
//! the `next` call that hands out the k-th batch from the end of epoch e fixes e+1's plan and
//! leaves it pending (`plan_due`); the next worker to look for work makes it before claiming
//! another batch (`make_due_plan`, holding the Planner but not the window), or any use of the
//! Planner before that does (`planner_settled`). Meanwhile the trainer's `next` and `feedback`
//! calls do not wait for the Planner: they are held in the `inbox` and booked right after the
//! plan is made, so the plan sees the ScoreBook as it was when it fell due. The plan becomes
//! the `ahead` job, and workers fill it once e has nothing left to claim (within the same
//! `prefetch` bound: e's outstanding batches count against it). Without `plan_ahead` the plan
//! is made at the first `next`/`epoch_info` call after `next` reported the end of e, and
//! workers wait at the boundary. Either way a worker only ever fills a plan the Planner has
//! made, so batches depend on the feedback sequence only.
//!
//! Locks: `state` (the window, shared with the workers) before `planner` (the pruning core,
//! shared with `feedback`) before `inbox`, never the other way round (a caller that finds the
//! inbox not holding releases it before taking the Planner).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::data_path::{check_batch_memory, DataPath};
use super::fingerprint::dataset_fingerprint;
use super::inbox::{Inbox, Offer};
use super::readahead::ReadAhead;
use super::skips::{SkipLog, SkippedSample};
use crate::batch::{Batch, BatchBuf, Pool};
use crate::config::{Config, OnError};
use crate::error::{Error, ErrorKind, Result};
use crate::plan::Plan;
use crate::planner::{EpochInfo, EpochReport, Planner};
use crate::scores::Feedback;
use crate::source::Source;

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
    /// The trainer's calls held while a plan made ahead is due (`inbox.rs`).
    pub(super) inbox: Mutex<Inbox>,
    /// Worker and I/O threads still running, and the signal that one has returned (see
    /// `Drop`).
    pub(super) running: Mutex<usize>,
    pub(super) exited: Condvar,
    /// The I/O threads' place in the plan (config `io_depth`, `readahead.rs`).
    pub(super) readahead: ReadAhead,
}

/// How long dropping the loader waits for its workers to return. A worker checks the shutdown
/// flag between samples, so one that is still busy after this is stuck in a read or a decode
/// (a hung network mount, a huge image): it is left to finish on its own and exits then.
pub(super) const SHUTDOWN_WAIT: Duration = Duration::from_secs(1);

pub(super) struct State {
    /// The epoch being loaded; `None` after `next` reported the end of an epoch, until the
    /// next one begins.
    pub(super) job: Option<Job>,
    /// The next epoch, its plan made ahead (`plan_ahead`) when `job` handed out its last
    /// batch: workers fill it once `job` has nothing left to claim; it becomes `job` when the
    /// next epoch begins.
    pub(super) ahead: Option<Job>,
    /// `job` handed out the batch that makes the Planner's plan ahead due, and it is pending:
    /// the next worker to look for work makes it (`Planner::settle`) and sets `ahead`.
    pub(super) plan_due: bool,
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
    /// Time workers spent filling this epoch's batches, summed over workers.
    pub(super) busy: Duration,
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
        let (per_sample, shape) = path.sample_bytes();
        check_batch_memory(config, per_sample, &shape)?;
        let mut planner =
            Planner::for_dataset(config, source.len(), dataset_fingerprint(&*source))?;
        // The plan made ahead is made by a worker while the trainer is on the last batches.
        planner.defer_plans_ahead();
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
            state: Mutex::new(State {
                job,
                ahead: planner.next_plan().map(|plan| Job::new(plan, 0)),
                plan_due: false,
            }),
            work: Condvar::new(),
            ready: Condvar::new(),
            shutdown: AtomicBool::new(false),
            planner: Mutex::new(planner),
            inbox: Mutex::new(Inbox::new()),
            running: Mutex::new(0),
            exited: Condvar::new(),
            readahead: ReadAhead::default(),
        });
        // Read-ahead only where a hint can save the workers a wait (files, tar shards).
        let io = if shared.source.reads_ahead() {
            config.io_depth
        } else {
            0
        };
        let mut threads = Vec::with_capacity(config.workers + io);
        for i in 0..config.workers + io {
            let s = Arc::clone(&shared);
            *shared.running.lock() += 1;
            let (name, body): (_, fn(&Shared)) = if i < config.workers {
                (format!("thresher-worker-{i}"), Shared::worker)
            } else {
                (
                    format!("thresher-io-{}", i - config.workers),
                    Shared::read_ahead,
                )
            };
            let spawned = std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || {
                    let _exit = Exited(&s);
                    body(&s)
                });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    *shared.running.lock() -= 1;
                    drop(Pipeline { shared, threads });
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!("could not start thread {name}: {e}"),
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
        'outer: loop {
            let job = state.job.as_mut().expect("begin_epoch sets the job");
            if job.delivered == job.plan.batches() {
                // A failed report write is returned once (the job stays); the next call
                // reports the end.
                s.close_epoch(job, &mut s.planner_settled())?;
                state.job = None;
                // Another caller waiting for a batch of this epoch learns that it has ended.
                s.ready.notify_all();
                if state.ahead.is_some() {
                    // Every worker may fill the next epoch now (one was woken at its plan).
                    s.work.notify_all();
                }
                return Ok(None);
            }
            let epoch = job.plan.epoch;
            let start = Instant::now();
            let mut waited = false;
            loop {
                match state.job.as_ref() {
                    // Ended (or ended and the next begun) by another thread while this call
                    // waited: for this caller the epoch it waited in is over.
                    None => return Ok(None),
                    Some(j) if j.plan.epoch != epoch => return Ok(None),
                    Some(j) if matches!(j.window.front(), Some(Some(_))) => break,
                    // Another caller took the last batch: report the end as above.
                    Some(j) if j.delivered == j.plan.batches() => continue 'outer,
                    Some(_) => {}
                }
                waited = true;
                s.ready.wait(&mut state);
            }
            let job = state.job.as_mut().expect("the job outlives the wait");
            if waited {
                job.consumer_wait += start.elapsed();
            }
            let result = job.window.pop_front().flatten().expect("checked above");
            job.delivered += 1;
            if job.delivered == job.plan.batches() {
                // Any other caller waiting in this epoch now has no batch to wait for.
                s.ready.notify_all();
            } else if matches!(job.window.front(), Some(Some(_))) {
                // Workers wake a caller only for the head batch (see `worker`): the next head
                // was filled before it became the head, so another waiting caller is woken here.
                s.ready.notify_one();
            }
            // While the plan ahead is due the Planner may be busy making it: the hand-out is
            // held with the feedback and counted once the plan is made.
            let held = s.inbox.lock().advance();
            if !held {
                let mut planner = s.planner_settled();
                planner.advance();
                if state.ahead.is_none() && planner.plan_pending() {
                    // The next plan fell due at this batch (`plan_ahead`): the next worker to
                    // look for work makes it, while the trainer goes on with this epoch's last
                    // batches; what the trainer says meanwhile is held until it is made.
                    state.plan_due = true;
                    s.inbox.lock().hold(&planner);
                }
            }
            // One more batch may now be claimed, and read ahead.
            s.work.notify_one();
            s.readahead.wake();
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
            ..s.planner_settled().epoch_info()
        }
    }

    /// The report of the current epoch so far, or of the last one when it has just ended (this
    /// call never begins an epoch). Thread-safe.
    pub(super) fn report(&self) -> EpochReport {
        let s = &*self.shared;
        let state = s.state.lock();
        let planner = s.planner_settled();
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

    /// The Planner (checkpoints, digests and score files need nothing else).
    pub(super) fn planner(&self) -> MutexGuard<'_, Planner> {
        self.shared.planner_settled()
    }

    /// Books per-sample feedback: held (checked now, booked after the plan) while a plan made
    /// ahead is due, so the trainer never waits for a worker making it; directly otherwise.
    pub(super) fn feedback(&self, fb: &Feedback<'_>) -> Result<()> {
        let offer = self.shared.inbox.lock().offer(fb);
        match offer {
            Offer::Held(result) => result,
            Offer::Direct => self.shared.planner_settled().feedback(fb),
        }
    }

    /// Ends the epoch under way now (see `Loader::end_epoch`): the batches still in the
    /// window go back to the pool, workers filling the old plan have their results dropped.
    pub(super) fn end_epoch(&self) -> Result<()> {
        let s = &*self.shared;
        let mut state = s.state.lock();
        let Some(job) = state.job.as_mut() else {
            return Ok(());
        };
        let mut planner = s.planner_settled();
        // Only an epoch still under way in the Planner has a rest to abandon (a retried call
        // after a failed report write must not count it twice).
        let _ = planner.abandon_rest();
        let written = s.close_epoch(job, &mut planner);
        for buf in job.window.drain(..).flatten().flatten() {
            s.pool.put(buf);
        }
        // Ended either way, as the header says; a failed report write is returned.
        state.job = None;
        // A caller waiting in `next` for a batch of this epoch gets its end instead.
        s.ready.notify_all();
        written
    }

    /// This rank's whole epoch under way (begun now when the last one has ended).
    pub(super) fn epoch_plan(&self) -> crate::planner::EpochPlan {
        let s = &*self.shared;
        let mut state = s.state.lock();
        if state.job.is_none() {
            s.begin_epoch(&mut state);
        }
        s.planner_settled().epoch_plan()
    }
}

/// Counts a worker out when its thread ends, also by a panic.
struct Exited<'a>(&'a Shared);

impl Drop for Exited<'_> {
    fn drop(&mut self) {
        *self.0.running.lock() -= 1;
        self.0.exited.notify_all();
    }
}

impl Drop for Pipeline {
    /// Stops the workers and returns within `SHUTDOWN_WAIT` whatever they are doing: the
    /// workers that have returned by then are joined; one still inside a read or a decode is
    /// detached. It holds its own reference to what it uses (source, pool, Planner), so that
    /// stays valid until it returns, sees the shutdown flag and exits; nothing it produces is
    /// delivered.
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        {
            // Taking the lock orders the flag before any worker's next check-then-wait.
            let _state = self.shared.state.lock();
            self.shared.work.notify_all();
        }
        self.shared.readahead.wake();
        let deadline = Instant::now() + SHUTDOWN_WAIT;
        let mut running = self.shared.running.lock();
        while *running > 0 {
            if self
                .shared
                .exited
                .wait_until(&mut running, deadline)
                .timed_out()
            {
                break;
            }
        }
        // Zero: every worker is past its body and only returning, so joining is prompt.
        let all_done = *running == 0;
        drop(running);
        for t in self.threads.drain(..) {
            if all_done || t.is_finished() {
                let _ = t.join();
            }
            // Otherwise dropping the handle detaches the thread.
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
            busy: Duration::ZERO,
            reported: false,
        }
    }

    /// Whether a batch just filled should wake a caller waiting in `next`: when the head of
    /// the window is filled and either the one behind it is too, or no batch behind it is
    /// being filled. Waking the caller for the head alone while another worker is about to
    /// finish the next batch costs a context switch each way per batch on a machine with as
    /// many workers as cores (the caller takes a core from a worker each time); waiting for
    /// two lets it take both in one go. It never waits for a batch nobody is filling, so a
    /// caller is always woken once its head is filled: by the worker that fills the head or
    /// the one behind it, whichever finishes last (a batch whose worker fails is filled with
    /// its error, and an epoch that ends wakes every caller).
    /// `near_boundary`: the next plan is due or made (see `worker`), when the head alone is
    /// enough, as it is for an epoch's first batch: those waits are the boundary's.
    pub(super) fn wake_consumer(&self, near_boundary: bool) -> bool {
        wake_for(&self.window, near_boundary || self.delivered == 0)
    }
}

impl Shared {
    /// Begins the next epoch in the Planner (its plan made ahead, or made now) and publishes
    /// it to the workers; a plan made ahead keeps what workers already filled of it.
    /// The Planner, its plan ahead made first if it is pending (`Planner::defer_plans_ahead`)
    /// and the calls held meanwhile booked after it: every use of the Planner goes through
    /// here, so a pending plan always sees the ScoreBook as it stood when it fell due.
    pub(super) fn planner_settled(&self) -> MutexGuard<'_, Planner> {
        let mut planner = self.planner.lock();
        planner.settle();
        self.inbox.lock().book_into(&mut planner);
        planner
    }

    /// A worker makes the plan that fell due (`plan_due`) and sets it as the next job. The
    /// window is released while the plan is made, so the trainer and the other workers go on
    /// with the epoch under way.
    pub(super) fn make_due_plan(&self, state: &mut MutexGuard<'_, State>) {
        state.plan_due = false;
        MutexGuard::unlocked(state, || drop(self.planner_settled()));
        // Begun meanwhile by the trainer (`begin_epoch`), it is no longer the Planner's next.
        let planner = self.planner.lock();
        if state.ahead.is_none() {
            if let Some(plan) = planner.next_plan() {
                let mut ahead = Job::new(plan, 0);
                ahead.window.reserve(self.prefetch);
                state.ahead = Some(ahead);
                self.readahead.wake();
            }
        }
    }

    fn begin_epoch(&self, state: &mut State) {
        let mut planner = self.planner_settled();
        state.plan_due = false;
        let plan = Arc::clone(planner.begin_epoch());
        // No worker is filling a batch of the last epoch now (its batches were all delivered).
        self.skips.lock().begin(plan.epoch);
        let job = match state.ahead.take() {
            Some(job) if Arc::ptr_eq(&job.plan, &plan) => job,
            _ => {
                let mut job = Job::new(&plan, 0);
                job.window.reserve(self.prefetch);
                job
            }
        };
        state.job = Some(job);
        self.work.notify_all();
        self.readahead.wake();
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
            worker_busy_s: job.busy.as_secs_f64(),
            ..planner.report()
        }
    }
}

/// `Job::wake_consumer`'s rule on a window (results in plan order, `None` while being filled).
/// `alone`: the head wakes the caller on its own.
fn wake_for<T>(window: &VecDeque<Option<T>>, alone: bool) -> bool {
    match (window.front(), window.get(1)) {
        (Some(Some(_)), None | Some(Some(_))) => true,
        (Some(Some(_)), Some(None)) => alone,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_caller_is_woken_for_a_filled_head_unless_the_next_is_on_its_way() {
        let window = |slots: &[bool]| slots.iter().map(|&f| f.then_some(())).collect();
        let w = |slots: &[bool]| wake_for(&window(slots), false);
        assert!(!w(&[]));
        assert!(!w(&[false]));
        assert!(!w(&[false, true]));
        // The head alone, nothing behind it being filled: wake at once.
        assert!(w(&[true]));
        // The head and the next filled (whatever follows): wake.
        assert!(w(&[true, true]));
        assert!(w(&[true, true, false]));
        // The next batch is being filled: its worker wakes the caller when it is done.
        assert!(!w(&[true, false]));
        assert!(!w(&[true, false, true]));
        // Except near an epoch's boundary: at once.
        assert!(wake_for(&window(&[true, false]), true));
        assert!(!wake_for(&window(&[false, true]), true));
    }
}
